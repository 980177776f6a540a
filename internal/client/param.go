package client

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/drover-dev/drover/internal/api"
)

func paramPath(role, name string) string {
	p := "/v1/params/" + url.PathEscape(role)
	if name != "" {
		p += "/" + url.PathEscape(name)
	}
	return p
}

// ListParams lists a role's parameters, secret values redacted.
func (c *Client) ListParams(ctx context.Context, role string) ([]api.Param, error) {
	var out []api.Param
	return out, c.getJSON(ctx, paramPath(role, ""), &out)
}

// GetParam reads one parameter. A secret's value is redacted unless
// reveal is true (which needs the permission param:reveal:ROLE).
func (c *Client) GetParam(ctx context.Context, role, name string, reveal bool) (api.Param, error) {
	p := paramPath(role, name)
	if reveal {
		p += "?reveal=true"
	}
	var out api.Param
	return out, c.getJSON(ctx, p, &out)
}

// PutParam sets a parameter.
func (c *Client) PutParam(ctx context.Context, role, name string, req api.ParamRequest) (api.Param, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return api.Param{}, err
	}
	var out api.Param
	_, err = c.do(ctx, http.MethodPut, paramPath(role, name), nil, bytes.NewReader(b), &out)
	return out, err
}

// DeleteParam deletes a parameter.
func (c *Client) DeleteParam(ctx context.Context, role, name string) error {
	_, err := c.do(ctx, http.MethodDelete, paramPath(role, name), nil, nil, &map[string]string{})
	return err
}
