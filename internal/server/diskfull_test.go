package server_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/drover-dev/drover/internal/agent"
	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/auth"
	"github.com/drover-dev/drover/internal/client"
	"github.com/drover-dev/drover/internal/scheduler"
	"github.com/drover-dev/drover/internal/server"
	"github.com/drover-dev/drover/internal/store"
	"github.com/drover-dev/drover/internal/store/sqlite"
)

// TestDiskFull is G9 for real: the server's data dir (SQLite store and task
// logs) on a small tmpfs that is then filled to the last block. Writes are
// refused with 507 and a clear message, never 500 and never 2xx; reads and
// the web page keep working; the agent's failing syncs back off instead of
// spinning; when space returns the server takes writes again without a
// restart, and the file is intact with every accepted job in it.
func TestDiskFull(t *testing.T) {
	dir := mountTmpfs(t, "16m")
	ctx := t.Context()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "drover.db"))
	require.NoError(t, err)
	var closeOnce sync.Once
	closeDB := func() { closeOnce.Do(func() { require.NoError(t, db.Close()) }) }
	t.Cleanup(closeDB)
	sched, err := scheduler.New(scheduler.Config{Store: db})
	require.NoError(t, err)
	sched.Start(context.WithoutCancel(ctx))
	t.Cleanup(func() { require.NoError(t, sched.Stop(context.Background())) })
	srv, err := server.New(server.Config{Store: db, Scheduler: sched, DataDir: dir, Version: "test"})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, srv.Close()) })
	rec := &answerLog{}
	hs := httptest.NewServer(rec.wrap(srv))
	t.Cleanup(hs.Close)
	t.Cleanup(hs.CloseClientConnections)
	_, err = srv.Bootstrap(ctx)
	require.NoError(t, err)
	_, adminTok, err := srv.CreateToken(ctx, auth.APIToken, "admin", "test", nil, 0)
	require.NoError(t, err)
	_, agentTok, err := srv.CreateToken(ctx, auth.AgentToken, "", "agents", nil, 0)
	require.NoError(t, err)
	b := &bundle{ctx: ctx, url: hs.URL, admin: adminTok, agent: agentTok}
	c, err := client.New(hs.URL, nil)
	require.NoError(t, err)
	c = c.WithToken(agentTok)

	// A real agent; its sandboxes are on the ordinary disk, so only the
	// server's disk fills up.
	ag, err := agent.New(agent.Config{Client: c, DataDir: filepath.Join(t.TempDir(), "agent"), Name: "node-1",
		CPU: 2000, Memory: 1 << 30, SyncWait: time.Second, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	actx, stopAgent := context.WithCancel(context.WithoutCancel(ctx))
	agentDone := make(chan error, 1)
	go func() { agentDone <- ag.Run(actx) }()
	var stopOnce sync.Once
	stop := func() {
		stopOnce.Do(func() {
			stopAgent()
			require.NoError(t, <-agentDone)
		})
	}
	t.Cleanup(stop)

	// Before: a job runs to the end, so there are tasks, logs and events.
	first := submitDoc(t, b, jobDoc("disk/dev/before"), http.StatusCreated)
	waitEnd(t, c.WithToken(adminTok), "disk/dev/before", "SUCCEEDED")

	filler := fill(t, dir)
	rec.reset()

	// Writes: 507 with a message that says what happened, every time, with
	// and without an idempotency key; nothing is acknowledged.
	for i := range 3 {
		for _, key := range []string{"", fmt.Sprintf("full-%d", i)} {
			resp, body := b.do(t, "POST", "/v1/jobs", jobDoc("disk/dev/refused"), map[string]string{"Idempotency-Key": key})
			require.Equal(t, http.StatusInsufficientStorage, resp.StatusCode, "%s", body)
			require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			var e api.Error
			require.NoError(t, json.Unmarshal(body, &e), "%s", body)
			require.Contains(t, e.Error, "disk is full")
			require.Contains(t, e.Error, "nothing was accepted")
			if i == 0 && key == "" {
				t.Logf("507: %s", e.Error)
			}
		}
	}
	// A log upload that cannot be stored is 507 as well, not 500.
	chunk := api.LogChunk{TaskID: first.Tasks[0], Stream: "stderr", Data: []byte(strings.Repeat("x", 256<<10))}
	resp, body := b.do(t, "POST", "/v1/agent/logs", mustJSON(t, chunk), nil)
	require.Equal(t, http.StatusInsufficientStorage, resp.StatusCode, "%s", body)
	require.Contains(t, string(body), "disk is full")

	// Reads and the web page keep working.
	jobs := call[[]api.Job](t, b, "GET", "/v1/jobs", "", http.StatusOK)
	require.Len(t, jobs, 1)
	require.Equal(t, "disk/dev/before", jobs[0].Key)
	j := call[api.Job](t, b, "GET", "/v1/jobs/disk/dev/before", "", http.StatusOK)
	require.Equal(t, "SUCCEEDED", j.State)
	call[[]api.Node](t, b, "GET", "/v1/nodes", "", http.StatusOK)
	resp, body = b.do(t, "GET", "/v1/tasks/"+first.Tasks[0]+"/logs/stdout", "", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "before\n", string(body))
	for _, path := range []string{"/", "/ui/jobs/disk/dev/before", "/ui/tasks/" + first.Tasks[0]} {
		resp, body = b.do(t, "GET", path, "", nil)
		require.Equal(t, http.StatusOK, resp.StatusCode, "GET %s: %s", path, body)
		require.Contains(t, string(body), "disk/dev/before", "GET %s", path)
	}
	resp, body = b.do(t, "GET", "/health", "", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "OK\n", string(body))

	// The agent's syncs commit its heartbeat, so they fail with 507 too;
	// the agent backs off. Its sleeps before the 2nd..5th try are at
	// least 50, 100, 200 and 400ms (jittered doubling from 100ms), so
	// five failed syncs span at least 750ms; a hot loop would do them in
	// a few milliseconds.
	fails := rec.waitSyncs(t, http.StatusInsufficientStorage, 5, 30*time.Second)
	span := fails[4].Sub(fails[0])
	t.Logf("agent: 5 failed syncs over %s; gaps %s", span, gaps(fails[:5]))
	require.GreaterOrEqual(t, span, 750*time.Millisecond, "the agent retries failed syncs without backing off")
	select {
	case err := <-agentDone:
		t.Fatalf("the agent stopped while the disk was full: %v", err)
	default:
	}
	require.Empty(t, rec.codes(http.StatusInternalServerError), "no answer may be a 500 while the disk is full")
	require.Empty(t, rec.writes2xx(), "no write may be acknowledged while the disk is full")

	// Space returns: the server takes writes again, without a restart,
	// and the agent's next sync works and runs the new job.
	require.NoError(t, os.Remove(filler))
	submitDoc(t, b, jobDoc("disk/dev/after"), http.StatusCreated)
	waitEnd(t, c.WithToken(adminTok), "disk/dev/after", "SUCCEEDED")
	resp, body = b.do(t, "POST", "/v1/agent/logs", mustJSON(t, chunk), nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	require.Empty(t, rec.codes(http.StatusInternalServerError))

	// Nothing is corrupt: reopened, the file passes SQLite's integrity
	// check and holds exactly the jobs that were acknowledged.
	stop()
	hs.CloseClientConnections()
	hs.Close()
	require.NoError(t, sched.Stop(context.Background()))
	closeDB()
	raw, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "drover.db"))
	require.NoError(t, err)
	var check string
	require.NoError(t, raw.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&check))
	require.NoError(t, raw.Close())
	require.Equal(t, "ok", check)
	again, err := sqlite.Open(ctx, filepath.Join(dir, "drover.db"))
	require.NoError(t, err)
	defer again.Close()
	var keys []string
	require.NoError(t, again.View(ctx, func(r store.Reader) error {
		js, err := r.ListJobs(ctx)
		for _, j := range js {
			keys = append(keys, j.Key.String()+" "+string(j.State))
		}
		return err
	}))
	require.ElementsMatch(t, []string{"disk/dev/before SUCCEEDED", "disk/dev/after SUCCEEDED"}, keys)
}

// jobDoc is a one-instance job that prints the last part of its key.
func jobDoc(key string) string {
	return fmt.Sprintf("job: %s\ntask:\n  command: [echo, %s]\n", key, key[strings.LastIndexByte(key, '/')+1:])
}

func submitDoc(t *testing.T, b *bundle, doc string, want int) api.SubmitResponse {
	t.Helper()
	return call[api.SubmitResponse](t, b, "POST", "/v1/jobs", doc, want)
}

// waitEnd waits (bounded) for a job to end and requires its state.
func waitEnd(t *testing.T, c *client.Client, key, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for {
		j, err := c.WaitJobEnd(ctx, key, 10*time.Second)
		require.NoError(t, err, "job %s did not end", key)
		if j.State != "RUNNING" {
			require.Equal(t, want, j.State, "job %s: %+v", key, j.Tasks)
			return
		}
	}
}

// answerLog records the status of every answer the server gives.
type answerLog struct {
	mu      sync.Mutex
	answers []answer
	changed chan struct{}
}

type answer struct {
	method, path string
	code         int
	at           time.Time
}

func (l *answerLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		h.ServeHTTP(sw, r)
		l.mu.Lock()
		l.answers = append(l.answers, answer{method: r.Method, path: r.URL.Path, code: sw.code, at: time.Now()})
		if l.changed != nil {
			close(l.changed)
			l.changed = nil
		}
		l.mu.Unlock()
	})
}

func (l *answerLog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.answers = nil
}

// codes returns the answers with status code.
func (l *answerLog) codes(code int) []answer {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []answer
	for _, a := range l.answers {
		if a.code == code {
			out = append(out, a)
		}
	}
	return out
}

// writes2xx returns the successful answers to writes other than agent
// syncs and log uploads.
func (l *answerLog) writes2xx() []answer {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []answer
	for _, a := range l.answers {
		if a.method == http.MethodPost && !strings.HasPrefix(a.path, "/v1/agent/") && a.code/100 == 2 {
			out = append(out, a)
		}
	}
	return out
}

// waitSyncs waits until n agent syncs were answered with code, and returns
// when each was answered.
func (l *answerLog) waitSyncs(t *testing.T, code, n int, within time.Duration) []time.Time {
	t.Helper()
	deadline := time.After(within)
	for {
		l.mu.Lock()
		var at []time.Time
		for _, a := range l.answers {
			if a.path == "/v1/agent/sync" && a.code == code {
				at = append(at, a.at)
			}
		}
		if len(at) >= n {
			l.mu.Unlock()
			return at
		}
		if l.changed == nil {
			l.changed = make(chan struct{})
		}
		changed := l.changed
		l.mu.Unlock()
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("only %d agent syncs answered %d within %s", len(at), code, within)
		}
	}
}

func gaps(at []time.Time) string {
	var b strings.Builder
	for i := 1; i < len(at); i++ {
		fmt.Fprintf(&b, " %s", at[i].Sub(at[i-1]).Round(time.Millisecond))
	}
	return strings.TrimSpace(b.String())
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// mountTmpfs mounts a tmpfs of size on a fresh directory and unmounts it
// when the test ends. It needs root; without it, or where mounting fails,
// the test is skipped and says so on stderr too, where go test without -v
// shows it.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	skip := func(format string, args ...any) {
		msg := fmt.Sprintf("%s NOT RUN: ", t.Name()) + fmt.Sprintf(format, args...)
		fmt.Fprintln(os.Stderr, "WARNING: "+msg)
		t.Skip(msg)
	}
	if os.Geteuid() != 0 {
		skip("needs root to mount a tmpfs (running as uid %d); CI runs it as root", os.Geteuid())
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		skip("mount -t tmpfs -o size=%s on %s: %v", size, dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			// Something still has a file open there; detach it so the
			// space goes once that is closed.
			t.Logf("umount %s: %v; detaching it", dir, err)
			_ = unix.Unmount(dir, unix.MNT_DETACH)
		}
	})
	return dir
}

// fill takes every free block of the filesystem holding dir with one file,
// and returns its path: delete it to free the space again.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	require.NoError(t, err)
	defer f.Close()
	var st unix.Statfs_t
	require.NoError(t, unix.Statfs(dir, &st))
	// fallocate takes most of it at once; writes take the rest, down to
	// the last block (fallocate may stop short of it).
	if free := int64(st.Bfree) * st.Bsize; free > 0 {
		_ = unix.Fallocate(int(f.Fd()), 0, 0, free)
	}
	buf := make([]byte, 64<<10)
	for {
		_, err := f.Write(buf)
		if err != nil {
			require.True(t, errors.Is(err, unix.ENOSPC), "fill %s: %v", dir, err)
			break
		}
	}
	require.NoError(t, unix.Statfs(dir, &st))
	require.Zero(t, st.Bfree, "blocks free after filling %s", dir)
	return path
}
