// Package client is the Go client of drover's /v1 HTTP API, used by the CLI
// and the agent, and usable by programs. Each call takes a context; errors
// from the server are *[Error] values carrying the status and the field at
// fault.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/secret"
)

// Client talks to one drover server.
type Client struct {
	base  string
	http  *http.Client
	token secret.String
}

// WithToken returns a copy of the client that sends token as its bearer
// credentials.
func (c *Client) WithToken(token secret.String) *Client {
	cc := *c
	cc.token = token
	return &cc
}

// New returns a client of the server at addr ("http://127.0.0.1:7070", or
// https:// for a server with TLS). A nil httpClient means
// NewHTTPClient(nil): the system's roots verify an https server.
func New(addr string, httpClient *http.Client) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(addr, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server address %q: must be a URL such as http://127.0.0.1:7070", addr)
	}
	if httpClient == nil {
		httpClient = NewHTTPClient(nil)
	}
	return &Client{base: u.String(), http: httpClient}, nil
}

// NewHTTPClient returns an HTTP client fit for [New]: it has no total
// timeout, since some calls are held open by the server on purpose, and
// verifies https servers with tlsConf (nil: the system's roots). Either
// way it speaks TLS 1.2 or later only.
func NewHTTPClient(tlsConf *tls.Config) *http.Client {
	if tlsConf == nil {
		tlsConf = &tls.Config{}
	} else {
		tlsConf = tlsConf.Clone()
	}
	if tlsConf.MinVersion < tls.VersionTLS12 {
		tlsConf.MinVersion = tls.VersionTLS12
	}
	return &http.Client{Transport: &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		TLSClientConfig:     tlsConf,
		TLSHandshakeTimeout: 10 * time.Second,
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
	}}
}

// TLSConfig returns the TLS settings of a client that trusts only the CA
// certificates in the PEM file caFile, for a server whose certificate a
// private CA signed; an empty caFile means the system's roots.
func TLSConfig(caFile string) (*tls.Config, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return conf, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("read CA bundle: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA bundle %s: no PEM certificate in it", caFile)
	}
	conf.RootCAs = pool
	return conf, nil
}

// Addr returns the server's address.
func (c *Client) Addr() string { return c.base }

// Error is a non-2xx answer.
type Error struct {
	Status int
	Body   api.Error
}

func (e *Error) Error() string {
	if len(e.Body.Errors) > 1 {
		var b strings.Builder
		b.WriteString(strconv.Itoa(len(e.Body.Errors)) + " problems:")
		for _, fe := range e.Body.Errors {
			b.WriteString("\n  " + fe.Field + ": " + fe.Message)
		}
		return b.String()
	}
	return e.Body.Error
}

// IsNotFound reports whether err is a 404 from the server.
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}

func (c *Client) do(ctx context.Context, method, path string, header http.Header, body io.Reader, out any) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if !c.token.IsZero() {
		req.Header.Set("Authorization", "Bearer "+c.token.Reveal())
	}
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return nil, fmt.Errorf("cannot reach the drover server at %s (is it running? set --addr or DROVER_ADDR): %w", c.base, err)
		}
		var cv *tls.CertificateVerificationError
		if errors.As(err, &cv) {
			return nil, fmt.Errorf("cannot verify the certificate of the drover server at %s (give --ca FILE if a private CA signed it; it must also name the host in the address): %w", c.base, err)
		}
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		e := &Error{Status: resp.StatusCode}
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if json.Unmarshal(raw, &e.Body) != nil || e.Body.Error == "" {
			e.Body.Error = fmt.Sprintf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(raw)))
		}
		return nil, e
	}
	if out == nil {
		return resp, nil
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return nil, fmt.Errorf("decode answer of %s %s: %w", method, path, err)
	}
	return resp, nil
}

func (c *Client) getJSON(ctx context.Context, path string, out any) error {
	_, err := c.do(ctx, http.MethodGet, path, nil, nil, out)
	return err
}

func (c *Client) postJSON(ctx context.Context, path string, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	resp, err := c.do(ctx, http.MethodPost, path, nil, bytes.NewReader(b), out)
	if err == nil && out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return err
}

// SubmitJob submits one job document (JSON or YAML). The idempotency key, if
// not empty, makes a retry of the same submission return the first result.
func (c *Client) SubmitJob(ctx context.Context, doc []byte, idempotencyKey string) (api.SubmitResponse, error) {
	h := http.Header{}
	if idempotencyKey != "" {
		h.Set("Idempotency-Key", idempotencyKey)
	}
	var out api.SubmitResponse
	_, err := c.do(ctx, http.MethodPost, "/v1/jobs", h, bytes.NewReader(doc), &out)
	return out, err
}

// SubmitJobWithRetry submits like [Client.SubmitJob] and retries network
// errors and 5xx answers with backoff until ctx ends; 4xx answers are final.
// The idempotency key makes the retries safe.
func (c *Client) SubmitJobWithRetry(ctx context.Context, doc []byte, idempotencyKey string) (api.SubmitResponse, error) {
	delay := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		out, err := c.SubmitJob(ctx, doc, idempotencyKey)
		var e *Error
		if err == nil || (errors.As(err, &e) && e.Status < 500) || attempt == 6 {
			return out, err
		}
		select {
		case <-ctx.Done():
			return out, err
		case <-time.After(delay):
		}
		delay *= 2
	}
}

func jobPath(key string) (string, error) {
	parts := strings.Split(key, "/")
	if len(parts) != 3 {
		return "", fmt.Errorf("job key %q: must be ROLE/ENV/NAME", key)
	}
	for i := range parts {
		parts[i] = url.PathEscape(parts[i])
	}
	return "/v1/jobs/" + strings.Join(parts, "/"), nil
}

// ListJobs lists every job.
func (c *Client) ListJobs(ctx context.Context) ([]api.Job, error) {
	var out []api.Job
	return out, c.getJSON(ctx, "/v1/jobs", &out)
}

// GetJob returns a job with its current version's tasks.
func (c *Client) GetJob(ctx context.Context, key string) (api.Job, error) {
	return c.WaitJob(ctx, key, 0, 0)
}

// WaitJob returns a job with its newest run once it has an event newer
// than index, or after wait passes, whichever is first.
func (c *Client) WaitJob(ctx context.Context, key string, index int64, wait time.Duration) (api.Job, error) {
	return c.WaitRun(ctx, key, 0, index, wait)
}

// WaitRun is WaitJob showing run (0: the newest).
func (c *Client) WaitRun(ctx context.Context, key string, run int, index int64, wait time.Duration) (api.Job, error) {
	p, err := jobPath(key)
	if err != nil {
		return api.Job{}, err
	}
	q := url.Values{}
	if run > 0 {
		q.Set("run", strconv.Itoa(run))
	}
	if wait > 0 {
		q.Set("index", strconv.FormatInt(index, 10))
		q.Set("wait", wait.String())
	}
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	var out api.Job
	return out, c.getJSON(ctx, p, &out)
}

// ListRuns lists a job's runs, newest first, at most limit (0: the
// server's default).
func (c *Client) ListRuns(ctx context.Context, key string, limit int) ([]api.Run, error) {
	p, err := jobPath(key)
	if err != nil {
		return nil, err
	}
	p += "/runs"
	if limit > 0 {
		p += "?limit=" + strconv.Itoa(limit)
	}
	var out []api.Run
	return out, c.getJSON(ctx, p, &out)
}

// GetRun returns one run of a job with its tasks.
func (c *Client) GetRun(ctx context.Context, key string, run int) (api.Run, error) {
	p, err := jobPath(key)
	if err != nil {
		return api.Run{}, err
	}
	var out api.Run
	return out, c.getJSON(ctx, fmt.Sprintf("%s/runs/%d", p, run), &out)
}

// Rerun runs an ended run of a job again as a new run.
func (c *Client) Rerun(ctx context.Context, key string, req api.RerunRequest) (api.SubmitResponse, error) {
	p, err := jobPath(key)
	if err != nil {
		return api.SubmitResponse{}, err
	}
	var out api.SubmitResponse
	return out, c.postJSON(ctx, p+"/rerun", req, &out)
}

// ListSchedules lists the schedules of the jobs the caller may read.
func (c *Client) ListSchedules(ctx context.Context) ([]api.Schedule, error) {
	var out []api.Schedule
	return out, c.getJSON(ctx, "/v1/schedules", &out)
}

// GetSchedule returns a job's schedule; IsNotFound when it has none.
func (c *Client) GetSchedule(ctx context.Context, key string) (api.Schedule, error) {
	p, err := jobPath(key)
	if err != nil {
		return api.Schedule{}, err
	}
	var out api.Schedule
	return out, c.getJSON(ctx, p+"/schedule", &out)
}

// FireSchedule fires a job's schedule now, as its overlap policy allows.
func (c *Client) FireSchedule(ctx context.Context, key string) (api.SubmitResponse, error) {
	p, err := jobPath(key)
	if err != nil {
		return api.SubmitResponse{}, err
	}
	var out api.SubmitResponse
	return out, c.postJSON(ctx, p+"/schedule/run", nil, &out)
}

// PauseSchedule pauses (or, with pause false, resumes) a job's schedule.
func (c *Client) PauseSchedule(ctx context.Context, key string, pause bool) (api.Schedule, error) {
	p, err := jobPath(key)
	if err != nil {
		return api.Schedule{}, err
	}
	verb := "/schedule/pause"
	if !pause {
		verb = "/schedule/resume"
	}
	var out api.Schedule
	return out, c.postJSON(ctx, p+verb, nil, &out)
}

// DeleteSchedule removes a job's schedule.
func (c *Client) DeleteSchedule(ctx context.Context, key string) error {
	p, err := jobPath(key)
	if err != nil {
		return err
	}
	_, err = c.do(ctx, http.MethodDelete, p+"/schedule", nil, nil, &map[string]string{})
	return err
}

// KillJob asks a job's tasks (all, or those of the given instances) to stop.
func (c *Client) KillJob(ctx context.Context, key string, instances []int) (api.KillResponse, error) {
	p, err := jobPath(key)
	if err != nil {
		return api.KillResponse{}, err
	}
	var out api.KillResponse
	return out, c.postJSON(ctx, p+"/kill", api.KillRequest{Instances: instances}, &out)
}

// JobEvents lists a job's events, oldest first.
func (c *Client) JobEvents(ctx context.Context, key string) ([]api.Event, error) {
	p, err := jobPath(key)
	if err != nil {
		return nil, err
	}
	var out []api.Event
	return out, c.getJSON(ctx, p+"/events?limit=10000", &out)
}

// GetTask returns one task.
func (c *Client) GetTask(ctx context.Context, id string) (api.Task, error) {
	var out api.Task
	return out, c.getJSON(ctx, "/v1/tasks/"+url.PathEscape(id), &out)
}

// TaskLogs opens a stream ("stdout" or "stderr") of a task's output from
// offset (negative: from the end). With follow, the body stays open until
// the task has ended and all its output was sent. The caller closes it.
func (c *Client) TaskLogs(ctx context.Context, id, stream string, offset int64, follow bool) (io.ReadCloser, error) {
	p := fmt.Sprintf("/v1/tasks/%s/logs/%s?offset=%d", url.PathEscape(id), url.PathEscape(stream), offset)
	if follow {
		p += "&follow=true"
	}
	resp, err := c.do(ctx, http.MethodGet, p, nil, nil, nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// WaitJobEnd returns a job once it has ended, or after wait passes.
func (c *Client) WaitJobEnd(ctx context.Context, key string, wait time.Duration) (api.Job, error) {
	p, err := jobPath(key)
	if err != nil {
		return api.Job{}, err
	}
	var out api.Job
	return out, c.getJSON(ctx, fmt.Sprintf("%s?index=0&wait=%s&until=end", p, wait), &out)
}

// ListNodes lists every node.
func (c *Client) ListNodes(ctx context.Context) ([]api.Node, error) {
	var out []api.Node
	return out, c.getJSON(ctx, "/v1/nodes", &out)
}

// DrainNode stops new work going to a node (drain true) or lets it take
// work again (drain false), and returns the node.
func (c *Client) DrainNode(ctx context.Context, name string, drain bool) (api.Node, error) {
	verb := "undrain"
	if drain {
		verb = "drain"
	}
	var out api.Node
	return out, c.postJSON(ctx, "/v1/nodes/"+url.PathEscape(name)+"/"+verb, struct{}{}, &out)
}

// Sync is the agent's call; see [api.SyncRequest].
func (c *Client) Sync(ctx context.Context, req api.SyncRequest) (api.SyncResponse, error) {
	var out api.SyncResponse
	return out, c.postJSON(ctx, "/v1/agent/sync", req, &out)
}

// UploadLog sends a chunk of a task's output.
func (c *Client) UploadLog(ctx context.Context, chunk api.LogChunk) error {
	return c.postJSON(ctx, "/v1/agent/logs", chunk, nil)
}

// Health returns nil when the server answers GET /health with OK.
func (c *Client) Health(ctx context.Context) error {
	resp, err := c.do(ctx, http.MethodGet, "/health", nil, nil, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64))
	if strings.TrimSpace(string(b)) != "OK" {
		return fmt.Errorf("health: server answered %q", b)
	}
	return nil
}

// Login exchanges a user's password for an API token.
func (c *Client) Login(ctx context.Context, user string, password secret.String, ttl time.Duration) (api.Token, error) {
	var out api.Token
	return out, c.postJSON(ctx, "/v1/login", api.LoginRequest{User: user, Password: password.Reveal(), TTL: api.Duration(ttl)}, &out)
}

// WhoAmI returns who the client's token acts as.
func (c *Client) WhoAmI(ctx context.Context) (api.WhoAmI, error) {
	var out api.WhoAmI
	return out, c.getJSON(ctx, "/v1/whoami", &out)
}

// CreateToken makes a token; the answer holds its secret, once.
func (c *Client) CreateToken(ctx context.Context, req api.TokenRequest) (api.Token, error) {
	var out api.Token
	return out, c.postJSON(ctx, "/v1/tokens", req, &out)
}

// ListTokens lists the caller's tokens, or everyone's with all.
func (c *Client) ListTokens(ctx context.Context, all bool) ([]api.Token, error) {
	var out []api.Token
	p := "/v1/tokens"
	if all {
		p += "?all=true"
	}
	return out, c.getJSON(ctx, p, &out)
}

// RevokeToken revokes a token by its ID.
func (c *Client) RevokeToken(ctx context.Context, id string) (api.Token, error) {
	var out api.Token
	_, err := c.do(ctx, http.MethodDelete, "/v1/tokens/"+url.PathEscape(id), nil, nil, &out)
	return out, err
}

// CreateUser makes a user.
func (c *Client) CreateUser(ctx context.Context, req api.UserRequest) (api.User, error) {
	var out api.User
	return out, c.postJSON(ctx, "/v1/users", req, &out)
}

// ListUsers lists users.
func (c *Client) ListUsers(ctx context.Context) ([]api.User, error) {
	var out []api.User
	return out, c.getJSON(ctx, "/v1/users", &out)
}

// DeleteUser deletes a user and revokes their tokens.
func (c *Client) DeleteUser(ctx context.Context, name string) error {
	_, err := c.do(ctx, http.MethodDelete, "/v1/users/"+url.PathEscape(name), nil, nil, &map[string]string{})
	return err
}

// CreateRole makes a role.
func (c *Client) CreateRole(ctx context.Context, req api.Role) (api.Role, error) {
	var out api.Role
	return out, c.postJSON(ctx, "/v1/roles", req, &out)
}

// ListRoles lists roles.
func (c *Client) ListRoles(ctx context.Context) ([]api.Role, error) {
	var out []api.Role
	return out, c.getJSON(ctx, "/v1/roles", &out)
}

// GrantRole grants a role to a user (grant false revokes it).
func (c *Client) GrantRole(ctx context.Context, role, user string, grant bool) (api.User, error) {
	verb := "revoke"
	if grant {
		verb = "grant"
	}
	var out api.User
	return out, c.postJSON(ctx, "/v1/roles/"+url.PathEscape(role)+"/"+verb, api.GrantRequest{User: user}, &out)
}

// Events lists events of every kind; reason "audit" lists the audit trail.
func (c *Client) Events(ctx context.Context, reason string, after int64, limit int) ([]api.Event, error) {
	var out []api.Event
	p := fmt.Sprintf("/v1/events?after=%d&limit=%d", after, limit)
	if reason != "" {
		p += "&reason=" + url.QueryEscape(reason)
	}
	return out, c.getJSON(ctx, p, &out)
}

// ListJobVersions lists a job's versions, newest first, without their
// specs.
func (c *Client) ListJobVersions(ctx context.Context, key string) ([]api.JobVersion, error) {
	p, err := jobPath(key)
	if err != nil {
		return nil, err
	}
	var out []api.JobVersion
	return out, c.getJSON(ctx, p+"/versions", &out)
}

// GetJobVersion returns one version of a job with its resolved spec.
func (c *Client) GetJobVersion(ctx context.Context, key string, version int) (api.JobVersion, error) {
	p, err := jobPath(key)
	if err != nil {
		return api.JobVersion{}, err
	}
	var out api.JobVersion
	return out, c.getJSON(ctx, p+"/versions/"+strconv.Itoa(version), &out)
}
