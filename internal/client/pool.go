package client

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"

	"github.com/drover-dev/drover/internal/api"
)

// poolPath is the path of the pool name.
func poolPath(name string) string { return "/v1/pools/" + url.PathEscape(name) }

// yamlHeader marks a body as a file the server reads as YAML; JSON, being
// YAML, is sent the same way.
func yamlHeader() http.Header { return http.Header{"Content-Type": {"application/yaml"}} }

// CreatePool creates a pool from a pool file (YAML or JSON, see
// [api.PoolSpec]), sent as written. It fails (409) if the pool exists.
func (c *Client) CreatePool(ctx context.Context, doc []byte) (api.Pool, error) {
	var out api.Pool
	_, err := c.do(ctx, http.MethodPost, "/v1/pools", yamlHeader(), bytes.NewReader(doc), &out)
	return out, err
}

// UpdatePool replaces the definition of the pool name with a pool file,
// whose pool field must be name. It fails (404) unless the pool exists.
func (c *Client) UpdatePool(ctx context.Context, name string, doc []byte) (api.Pool, error) {
	var out api.Pool
	_, err := c.do(ctx, http.MethodPut, poolPath(name), yamlHeader(), bytes.NewReader(doc), &out)
	return out, err
}

// ListPools lists every pool with its size, without its machines.
func (c *Client) ListPools(ctx context.Context) ([]api.Pool, error) {
	var out []api.Pool
	return out, c.getJSON(ctx, "/v1/pools", &out)
}

// GetPool returns one pool with its state and machines.
func (c *Client) GetPool(ctx context.Context, name string) (api.Pool, error) {
	var out api.Pool
	return out, c.getJSON(ctx, poolPath(name), &out)
}

// ScalePool sets the size a fixed pool keeps.
func (c *Client) ScalePool(ctx context.Context, name string, size int) (api.Pool, error) {
	var out api.Pool
	return out, c.postJSON(ctx, poolPath(name)+"/scale", api.ScaleRequest{Size: size}, &out)
}

// DestroyPool deletes a pool and terminates its machines. Unless force is
// set, the server refuses while the pool's nodes run tasks.
func (c *Client) DestroyPool(ctx context.Context, name string, force bool) error {
	p := poolPath(name)
	if force {
		p += "?force=true"
	}
	// The answer's body, if any, says nothing the caller needs.
	resp, err := c.do(ctx, http.MethodDelete, p, nil, nil, nil)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

// ListNodesInPool lists the nodes of one pool.
func (c *Client) ListNodesInPool(ctx context.Context, pool string) ([]api.Node, error) {
	var out []api.Node
	return out, c.getJSON(ctx, "/v1/nodes?pool="+url.QueryEscape(pool), &out)
}
