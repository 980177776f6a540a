package client

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/drover-dev/drover/internal/api"
)

// templatePath is the path of the template of key ROLE/ENV/NAME.
func templatePath(key string) string {
	parts := strings.Split(key, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return "/v1/templates/" + strings.Join(parts, "/")
}

// PutTemplateMode says whether [Client.PutTemplate] may create a template,
// replace one, or either.
type PutTemplateMode int

const (
	// CreateOrUpdate stores the template whether or not one exists.
	CreateOrUpdate PutTemplateMode = iota
	// CreateOnly fails (409) if the template exists.
	CreateOnly
	// UpdateOnly fails (404) unless the template exists.
	UpdateOnly
)

// PutTemplate stores a template file under key.
func (c *Client) PutTemplate(ctx context.Context, key string, file []byte, mode PutTemplateMode) (api.Template, error) {
	h := http.Header{"Content-Type": {"application/yaml"}}
	switch mode {
	case CreateOnly:
		h.Set("If-None-Match", "*")
	case UpdateOnly:
		h.Set("If-Match", "*")
	}
	var out api.Template
	_, err := c.do(ctx, http.MethodPut, templatePath(key), h, bytes.NewReader(file), &out)
	return out, err
}

// ListTemplates lists the templates the caller may read.
func (c *Client) ListTemplates(ctx context.Context) ([]api.Template, error) {
	var out []api.Template
	return out, c.getJSON(ctx, "/v1/templates", &out)
}

// GetTemplate reads one template, its source as written.
func (c *Client) GetTemplate(ctx context.Context, key string) (api.Template, error) {
	var out api.Template
	return out, c.getJSON(ctx, templatePath(key), &out)
}

// DeleteTemplate deletes a template.
func (c *Client) DeleteTemplate(ctx context.Context, key string) error {
	_, err := c.do(ctx, http.MethodDelete, templatePath(key), nil, nil, &map[string]string{})
	return err
}

// LaunchTemplate makes a job from a template now, with the given inputs.
func (c *Client) LaunchTemplate(ctx context.Context, key string, inputs map[string]string) (api.SubmitResponse, error) {
	b, err := json.Marshal(api.LaunchRequest{Inputs: inputs})
	if err != nil {
		return api.SubmitResponse{}, err
	}
	var out api.SubmitResponse
	_, err = c.do(ctx, http.MethodPost, templatePath(key)+"/launch", nil, bytes.NewReader(b), &out)
	return out, err
}
