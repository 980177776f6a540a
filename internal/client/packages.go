package client

import (
	"context"
	"io"
	"net/http"
	"net/url"

	"github.com/drover-dev/drover/internal/api"
)

// UploadPackage ships the package (a .tar.gz read from body) to every node
// of the pool: each unpacks it into the absolute directory to, replacing
// what an earlier package put there, and nodes that join later get it when
// they start. It returns the pool; the package is named by its SHA-256,
// which the caller computes from what it sent.
func (c *Client) UploadPackage(ctx context.Context, pool, to string, body io.Reader) (api.Pool, error) {
	var out api.Pool
	h := http.Header{"Content-Type": {"application/gzip"}}
	_, err := c.do(ctx, http.MethodPut, poolPath(pool)+"/packages?to="+url.QueryEscape(to), h, body, &out)
	return out, err
}

// Package opens the package sum (its hex SHA-256) for the agent of node,
// a node of the pool the package was shipped to: the agent's call. The
// caller checks the SHA-256 of what it reads and closes the body.
func (c *Client) Package(ctx context.Context, node, sum string) (io.ReadCloser, error) {
	resp, err := c.do(ctx, http.MethodGet, "/v1/agent/packages/"+url.PathEscape(sum)+"?node="+url.QueryEscape(node), nil, nil, nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}
