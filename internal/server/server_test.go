package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/drover-dev/drover/examples"
	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/auth"
	"github.com/drover-dev/drover/internal/scheduler"
	"github.com/drover-dev/drover/internal/secret"
	"github.com/drover-dev/drover/internal/server"
	"github.com/drover-dev/drover/internal/store"
	"github.com/drover-dev/drover/internal/store/sqlite"
)

// TestMain fails the package on leaked goroutines: held-open calls must
// end, and every server, store and log file a test opens is closed.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2030, time.March, 4, 5, 6, 7, 0, time.UTC)

// fakeClock is a scheduler.Clock that moves only when a test says so.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// spyStore is the real store, with hooks run after each View and Update
// returns. A test uses them to learn that a held-open call has done its
// read or write and is waiting, instead of sleeping.
type spyStore struct {
	store.Store
	mu          sync.Mutex
	afterView   func()
	afterUpdate func()
}

func (s *spyStore) View(ctx context.Context, fn func(store.Reader) error) error {
	err := s.Store.View(ctx, fn)
	s.run(&s.afterView)
	return err
}

func (s *spyStore) Update(ctx context.Context, fn func(store.Tx) error) error {
	err := s.Store.Update(ctx, fn)
	s.run(&s.afterUpdate)
	return err
}

func (s *spyStore) run(hook *func()) {
	s.mu.Lock()
	h := *hook
	s.mu.Unlock()
	if h != nil {
		h()
	}
}

// once returns a channel closed the first time the hook runs, and sets the
// hook. Tests remove it with set(hook, nil) before they go on.
func (s *spyStore) once(hook *func()) <-chan struct{} {
	ch := make(chan struct{})
	var o sync.Once
	s.set(hook, func() { o.Do(func() { close(ch) }) })
	return ch
}

func (s *spyStore) set(hook *func(), fn func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	*hook = fn
}

// bundle is one test's server: a real scheduler over a real SQLite file
// behind an httptest server. Nothing runs in the background; tests place
// tasks with sched.PlaceOnce.
type bundle struct {
	ctx   context.Context
	clock *fakeClock
	store *spyStore
	sched *scheduler.Scheduler
	srv   *server.Server
	url   string
	// admin and agent are the tokens do sends by default: the agent's
	// on /v1/agent/ routes, the admin's on every other.
	admin, agent secret.String
}

func setup(t *testing.T) *bundle {
	t.Helper()
	dir := t.TempDir()
	db, err := sqlite.Open(t.Context(), filepath.Join(dir, "drover.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	b := &bundle{ctx: t.Context(), clock: &fakeClock{now: t0}, store: &spyStore{Store: db}}
	var n atomic.Int64
	b.sched, err = scheduler.New(scheduler.Config{
		Store: b.store, Clock: b.clock,
		NewID: func() string { return fmt.Sprintf("task%04d", n.Add(1)) },
	})
	require.NoError(t, err)
	srv, err := server.New(server.Config{Store: b.store, Scheduler: b.sched, DataDir: dir, Version: "test"})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, srv.Close()) })
	b.srv = srv
	_, err = srv.Bootstrap(t.Context())
	require.NoError(t, err)
	_, b.admin, err = srv.CreateToken(t.Context(), auth.APIToken, "admin", "test", nil, 0)
	require.NoError(t, err)
	_, b.agent, err = srv.CreateToken(t.Context(), auth.AgentToken, "", "test agents", nil, 0)
	require.NoError(t, err)
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	b.url = ts.URL
	return b
}

// helloYAML is the example job every user meets first.
func helloYAML(t *testing.T) string {
	t.Helper()
	data, err := examples.FS.ReadFile("hello.yaml")
	require.NoError(t, err)
	return string(data)
}

// do sends a request and returns the answer with its whole body.
func (b *bundle) do(t *testing.T, method, path, body string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(b.ctx, method, b.url+path, bytes.NewBufferString(body))
	require.NoError(t, err)
	if _, given := header["Authorization"]; !given {
		tok := b.admin
		if strings.HasPrefix(path, "/v1/agent/") {
			tok = b.agent
		}
		req.Header.Set("Authorization", "Bearer "+tok.Reveal())
	}
	for k, v := range header {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, data
}

// call sends a request and decodes a JSON answer of the wanted status.
func call[T any](t *testing.T, b *bundle, method, path, body string, wantCode int) T {
	t.Helper()
	resp, data := b.do(t, method, path, body, nil)
	require.Equal(t, wantCode, resp.StatusCode, "%s %s: %s", method, path, data)
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var v T
	require.NoError(t, json.Unmarshal(data, &v), "%s", data)
	return v
}

func (b *bundle) submitHello(t *testing.T) api.SubmitResponse {
	t.Helper()
	return call[api.SubmitResponse](t, b, "POST", "/v1/jobs", helloYAML(t), http.StatusCreated)
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	require.NoError(t, err)
	return string(data)
}

// nodeInfo is a linux node that fits the hello job.
func nodeInfo(name string) api.NodeInfo {
	return api.NodeInfo{Name: name, Attributes: map[string]string{"os": "linux"},
		Capacity: api.Resources{CPU: 4000, Memory: 8 << 30}, Version: "test"}
}

func (b *bundle) sync(t *testing.T, req api.SyncRequest) api.SyncResponse {
	t.Helper()
	return call[api.SyncResponse](t, b, "POST", "/v1/agent/sync", mustJSON(t, req), http.StatusOK)
}

// running submits hello, registers node n1, places the job on it and
// reports task0001 RUNNING.
func (b *bundle) running(t *testing.T) {
	t.Helper()
	b.submitHello(t)
	b.sync(t, api.SyncRequest{Node: nodeInfo("n1")})
	_, err := b.sched.PlaceOnce(b.ctx)
	require.NoError(t, err)
	b.sync(t, api.SyncRequest{Node: nodeInfo("n1"), Tasks: []api.TaskStatus{{TaskID: "task0001", State: "RUNNING"}}})
}

func TestHealth(t *testing.T) {
	t.Parallel()
	b := setup(t)
	resp, body := b.do(t, "GET", "/health", "", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "OK\n", string(body))
}

func TestNewNeedsItsParts(t *testing.T) {
	t.Parallel()
	_, err := server.New(server.Config{})
	require.Error(t, err)
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "drover.db"))
	require.NoError(t, err)
	defer db.Close()
	s, err := scheduler.New(scheduler.Config{Store: db})
	require.NoError(t, err)
	_, err = server.New(server.Config{Store: db, Scheduler: s})
	require.ErrorContains(t, err, "DataDir")
}
