package agent_test

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/drover-dev/drover/internal/agent"
	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/auth"
	"github.com/drover-dev/drover/internal/client"
	"github.com/drover-dev/drover/internal/scheduler"
	"github.com/drover-dev/drover/internal/secret"
	"github.com/drover-dev/drover/internal/server"
	"github.com/drover-dev/drover/internal/store/sqlite"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// bundle is a real server (SQLite file, scheduler, HTTP) and one real agent
// in this process, so the race detector sees the agent's code at work.
type bundle struct {
	client *client.Client
	stop   func() // stops the agent and waits for Run to return
}

func setup(t *testing.T, opts ...func(*agent.Config)) *bundle {
	t.Helper()
	dir := t.TempDir()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "drover.db"))
	require.NoError(t, err)
	sched, err := scheduler.New(scheduler.Config{Store: db})
	require.NoError(t, err)
	sched.Start(ctx)
	srv, err := server.New(server.Config{Store: db, Scheduler: sched, DataDir: dir})
	require.NoError(t, err)
	hs := httptest.NewServer(srv)
	admin, agentTok := testTokens(t, srv)
	c, err := client.New(hs.URL, nil)
	require.NoError(t, err)
	cfg := agent.Config{Client: c.WithToken(agentTok), DataDir: filepath.Join(dir, "agent"), Name: "node-1",
		CPU: 2000, Memory: 1 << 30, SyncWait: time.Second, Logger: testLogger()}
	for _, o := range opts {
		o(&cfg)
	}
	a, err := agent.New(cfg)
	require.NoError(t, err)
	actx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(actx) }()
	b := &bundle{client: c.WithToken(admin)}
	var stopped bool
	b.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		require.NoError(t, <-done)
	}
	t.Cleanup(func() {
		b.stop()
		hs.CloseClientConnections()
		hs.Close()
		require.NoError(t, sched.Stop(ctx))
		require.NoError(t, srv.Close())
		require.NoError(t, db.Close())
	})
	return b
}

func submit(t *testing.T, c *client.Client, doc string) api.SubmitResponse {
	t.Helper()
	res, err := c.SubmitJob(context.Background(), []byte(doc), "")
	require.NoError(t, err)
	return res
}

func waitEnd(t *testing.T, c *client.Client, key string) api.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		j, err := c.WaitJobEnd(ctx, key, 30*time.Second)
		require.NoError(t, err)
		if j.State != "RUNNING" {
			return j
		}
	}
}

// waitFor waits, change by change, until the job satisfies ok.
func waitFor(t *testing.T, c *client.Client, key string, ok func(api.Job) bool) api.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var index int64
	for {
		j, err := c.WaitJob(ctx, key, index, 30*time.Second)
		require.NoError(t, err)
		index = j.EventIndex
		if ok(j) {
			return j
		}
	}
}

// waitRunning waits until n tasks of the job are RUNNING.
func waitRunning(t *testing.T, c *client.Client, key string, n int) api.Job {
	t.Helper()
	return waitFor(t, c, key, func(j api.Job) bool { return j.Counts["RUNNING"] >= n })
}

func readLog(t *testing.T, c *client.Client, id, stream string) string {
	t.Helper()
	rc, err := c.TaskLogs(context.Background(), id, stream, 0, false)
	require.NoError(t, err)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	return string(b)
}

func TestAgentRunsJobAndShipsOutput(t *testing.T) {
	t.Parallel()
	b := setup(t)
	submit(t, b.client, `
job: t/dev/echo
instances: 3
task:
  command: ["sh", "-c", "echo out $DROVER_INSTANCE $DROVER_JOB; echo err $DROVER_ATTEMPT >&2"]
retry: {attempts: 0}
`)
	j := waitEnd(t, b.client, "t/dev/echo")
	require.Equal(t, "SUCCEEDED", j.State)
	require.Len(t, j.Tasks, 3)
	for _, tk := range j.Tasks {
		require.Equal(t, "node-1", tk.Node)
		require.NotNil(t, tk.ExitCode)
		require.Equal(t, 0, *tk.ExitCode)
		// The agent ships the output before it reports the end.
		require.Equal(t, "out "+strconv.Itoa(tk.Instance)+" t/dev/echo\n", readLog(t, b.client, tk.ID, "stdout"))
		require.Equal(t, "err 1\n", readLog(t, b.client, tk.ID, "stderr"))
	}
}

func TestAgentReportsFailuresWithReasons(t *testing.T) {
	t.Parallel()
	b := setup(t)
	submit(t, b.client, `
job: t/dev/fail
task: {command: ["sh", "-c", "exit 7"]}
retry: {attempts: 1, backoff: 10ms}
`)
	submit(t, b.client, `
job: t/dev/missing
task: {command: ["no-such-command-here"]}
retry: {attempts: 0}
`)
	submit(t, b.client, `
job: t/dev/slow
task: {command: ["sleep", "600"], timeout: 200ms, kill_grace: 1s}
retry: {attempts: 0}
`)
	j := waitEnd(t, b.client, "t/dev/fail")
	require.Equal(t, "FAILED", j.State)
	require.Len(t, j.Tasks, 2, "one retry")
	for _, tk := range j.Tasks {
		require.Equal(t, "FAILED", tk.State)
		require.Equal(t, 7, *tk.ExitCode)
		require.Equal(t, "exit code 7", tk.Message)
	}
	j = waitEnd(t, b.client, "t/dev/missing")
	require.Equal(t, "FAILED", j.State)
	require.Equal(t, "start_failed", j.Tasks[0].Reason)
	require.Contains(t, j.Tasks[0].Message, "no-such-command-here")
	j = waitEnd(t, b.client, "t/dev/slow")
	require.Equal(t, "FAILED", j.State)
	require.Equal(t, "timeout", j.Tasks[0].Reason)
}

func TestAgentKillsOnOrder(t *testing.T) {
	t.Parallel()
	b := setup(t)
	submit(t, b.client, `
job: t/dev/sleep
instances: 2
task: {command: ["sleep", "600"], kill_grace: 1s}
`)
	waitRunning(t, b.client, "t/dev/sleep", 2)
	_, err := b.client.KillJob(context.Background(), "t/dev/sleep", []int{1})
	require.NoError(t, err)
	j := waitFor(t, b.client, "t/dev/sleep", func(j api.Job) bool { return j.Counts["KILLED"] == 1 })
	require.Equal(t, 1, j.Counts["RUNNING"], "instance 0 keeps running")
	_, err = b.client.KillJob(context.Background(), "t/dev/sleep", nil)
	require.NoError(t, err)
	j = waitEnd(t, b.client, "t/dev/sleep")
	require.Equal(t, "KILLED", j.State)
}

func TestAgentStopKillsAndReportsTasks(t *testing.T) {
	t.Parallel()
	b := setup(t)
	submit(t, b.client, `
job: t/dev/long
task: {command: ["sleep", "600"], kill_grace: 1s}
retry: {attempts: 0}
`)
	waitRunning(t, b.client, "t/dev/long", 1)
	b.stop()
	j, err := b.client.GetJob(context.Background(), "t/dev/long")
	require.NoError(t, err)
	require.Equal(t, "KILLED", j.State)
	require.Equal(t, "killed: the agent on node node-1 stopped", j.Tasks[0].Message)
}

// atomicBool is a flag shared with a test's HTTP handler.
type atomicBool struct{ v atomic.Bool }

func (a *atomicBool) get() bool  { return a.v.Load() }
func (a *atomicBool) set(b bool) { a.v.Store(b) }

func testLogger() *slog.Logger {
	if os.Getenv("DROVER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// testTokens prepares a server's store as a first start does and returns
// an admin API token and an agent token.
func testTokens(t *testing.T, srv *server.Server) (admin, agentTok secret.String) {
	t.Helper()
	_, err := srv.Bootstrap(t.Context())
	require.NoError(t, err)
	_, admin, err = srv.CreateToken(t.Context(), auth.APIToken, "admin", "test", nil, 0)
	require.NoError(t, err)
	_, agentTok, err = srv.CreateToken(t.Context(), auth.AgentToken, "", "test agents", nil, 0)
	require.NoError(t, err)
	return admin, agentTok
}

// TestAgentRunsTasksAsTaskUser: a root agent with a task user runs tasks
// as that user, without privileges.
func TestAgentRunsTasksAsTaskUser(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("WARNING: TestAgentRunsTasksAsTaskUser NOT RUN: needs a root agent")
	}
	b := setup(t, func(c *agent.Config) {
		c.TaskUser = "nobody"
		// The task's user crosses the test's private temporary parent.
		require.NoError(t, os.Chmod(filepath.Dir(filepath.Dir(c.DataDir)), 0o711))
		require.NoError(t, os.Chmod(filepath.Dir(c.DataDir), 0o711))
	})
	submit(t, b.client, `
job: t/dev/who
task: {command: ["sh", "-c", "id -u; grep CapEff /proc/self/status"]}
retry: {attempts: 0}
`)
	j := waitEnd(t, b.client, "t/dev/who")
	require.Equal(t, "SUCCEEDED", j.State, j.Tasks[0].Message)
	require.Equal(t, "65534\nCapEff:\t0000000000000000\n", readLog(t, b.client, j.Tasks[0].ID, "stdout"))
}
