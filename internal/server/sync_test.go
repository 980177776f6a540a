package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/auth"
	"github.com/drover-dev/drover/internal/scheduler"
	"github.com/drover-dev/drover/internal/secret"
	"github.com/drover-dev/drover/internal/server"
	"github.com/drover-dev/drover/internal/store/sqlite"
)

// syncResult is what a sync sent from another goroutine got back.
type syncResult struct {
	code int
	resp api.SyncResponse
	err  error
}

// syncAsync sends req to url from a goroutine and delivers the answer.
func syncAsync(ctx context.Context, url string, token secret.String, req api.SyncRequest) <-chan syncResult {
	out := make(chan syncResult, 1)
	body, err := json.Marshal(req)
	if err != nil {
		out <- syncResult{err: err}
		return out
	}
	go func() {
		hreq, err := http.NewRequestWithContext(ctx, "POST", url+"/v1/agent/sync", strings.NewReader(string(body)))
		if err != nil {
			out <- syncResult{err: err}
			return
		}
		hreq.Header.Set("Authorization", "Bearer "+token.Reveal())
		resp, err := http.DefaultClient.Do(hreq)
		if err != nil {
			out <- syncResult{err: err}
			return
		}
		defer resp.Body.Close()
		var r syncResult
		r.code = resp.StatusCode
		r.err = json.NewDecoder(resp.Body).Decode(&r.resp)
		out <- r
	}()
	return out
}

func TestSyncRegistersAndAssigns(t *testing.T) {
	t.Parallel()
	b := setup(t)
	resp := b.sync(t, api.SyncRequest{Node: nodeInfo("n1")})
	require.Empty(t, resp.Assign)
	require.Equal(t, api.Duration(server.DefaultSyncInterval), resp.Interval)
	nodes := call[[]api.Node](t, b, "GET", "/v1/nodes", "", http.StatusOK)
	require.Len(t, nodes, 1)
	require.Equal(t, "n1", nodes[0].Name)
	require.Equal(t, "READY", nodes[0].State)

	sub := b.submitHello(t)
	_, err := b.sched.PlaceOnce(b.ctx)
	require.NoError(t, err)
	resp = b.sync(t, api.SyncRequest{Node: nodeInfo("n1")})

	require.Len(t, resp.Assign, 3)
	for i, a := range resp.Assign {
		require.Equal(t, sub.Tasks[i], a.TaskID)
		require.Equal(t, "demo/dev/hello", a.Job)
		require.Equal(t, i, a.Instance)
		require.Equal(t, 1, a.Attempt)
		require.Equal(t, []string{"sh", "-c", "echo hello from instance $DROVER_INSTANCE"}, a.Command)
		require.Equal(t, map[string]string{"GREETING": "hi"}, a.Env)
		require.Equal(t, api.Duration(30*time.Second), a.Timeout)
		require.Equal(t, api.Resources{CPU: 100, Memory: 64 << 20}, a.Resources)
	}
	nodes = call[[]api.Node](t, b, "GET", "/v1/nodes", "", http.StatusOK)
	require.Equal(t, 3, nodes[0].Tasks)
	require.Equal(t, api.Resources{CPU: 300, Memory: 3 * 64 << 20}, nodes[0].Allocated)
}

func TestSyncReportsToTheEnd(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.running(t)
	zero := 0
	statuses := []api.TaskStatus{
		{TaskID: "task0001", State: "SUCCEEDED", ExitCode: &zero, Reason: "exited"},
		{TaskID: "task0002", State: "SUCCEEDED", ExitCode: &zero, Reason: "exited"},
		{TaskID: "task0003", State: "SUCCEEDED", ExitCode: &zero, Reason: "exited"},
		{TaskID: "nosuch", State: "RUNNING"},
	}

	resp := b.sync(t, api.SyncRequest{Node: nodeInfo("n1"), Tasks: statuses})

	require.Equal(t, []string{"task0001", "task0002", "task0003"}, resp.Ack)
	require.Equal(t, []api.KillOrder{{TaskID: "nosuch", Reason: "the server has no such task on this node"}}, resp.Kill)
	j := call[api.Job](t, b, "GET", "/v1/jobs/demo/dev/hello", "", http.StatusOK)
	require.Equal(t, "SUCCEEDED", j.State)
	require.Equal(t, map[string]int{"SUCCEEDED": 3}, j.Counts)
	tk := call[api.Task](t, b, "GET", "/v1/tasks/task0001", "", http.StatusOK)
	require.Equal(t, "SUCCEEDED", tk.State)
	require.Equal(t, "n1", tk.Node)
	require.Equal(t, 0, *tk.ExitCode)
	events := call[[]api.Event](t, b, "GET", "/v1/events?task=task0001", "", http.StatusOK)
	var steps []string
	for _, e := range events {
		steps = append(steps, e.From+"→"+e.To)
	}
	require.Equal(t, []string{"→PENDING", "PENDING→ASSIGNED", "ASSIGNED→STARTING", "STARTING→RUNNING", "RUNNING→SUCCEEDED"}, steps)
}

// TestSyncLongPoll holds a sync open with nothing to do, then submits a job
// and places it: the held call answers with the assignments.
func TestSyncLongPoll(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.sync(t, api.SyncRequest{Node: nodeInfo("n1")})

	// The spy says when the held sync has committed its heartbeat. It took
	// its wake-up channel before that, so any placement after it wakes it.
	synced := b.store.once(&b.store.afterUpdate)
	held := syncAsync(b.ctx, b.url, b.agent, api.SyncRequest{Node: nodeInfo("n1"), Wait: api.Duration(5 * time.Second)})
	select {
	case <-synced:
	case r := <-held:
		t.Fatalf("the sync answered at once: %+v", r)
	}
	b.store.set(&b.store.afterUpdate, nil)

	sub := b.submitHello(t)
	select {
	case r := <-held:
		t.Fatalf("a submission alone gives the node nothing to do: %+v", r)
	default:
	}
	_, err := b.sched.PlaceOnce(b.ctx)
	require.NoError(t, err)

	r := <-held
	require.NoError(t, r.err)
	require.Equal(t, http.StatusOK, r.code)
	var ids []string
	for _, a := range r.resp.Assign {
		ids = append(ids, a.TaskID)
	}
	require.Equal(t, sub.Tasks, ids)
}

// TestSyncLongPollCarriesKill holds a sync of a node whose task runs, then
// kills the job: the held call answers with the kill order.
func TestSyncLongPollCarriesKill(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.running(t)
	report := api.SyncRequest{Node: nodeInfo("n1"), Wait: api.Duration(5 * time.Second), Tasks: []api.TaskStatus{
		{TaskID: "task0001", State: "RUNNING"}, {TaskID: "task0002", State: "STARTING"}, {TaskID: "task0003", State: "STARTING"},
	}}
	b.sync(t, api.SyncRequest{Node: report.Node, Tasks: report.Tasks})

	synced := b.store.once(&b.store.afterUpdate)
	held := syncAsync(b.ctx, b.url, b.agent, report)
	select {
	case <-synced:
	case r := <-held:
		t.Fatalf("the sync answered at once: %+v", r)
	}
	b.store.set(&b.store.afterUpdate, nil)
	call[api.KillResponse](t, b, "POST", "/v1/jobs/demo/dev/hello/kill", `{"instances": [0]}`, http.StatusOK)

	r := <-held
	require.NoError(t, r.err)
	require.Equal(t, []api.KillOrder{{TaskID: "task0001", Reason: "kill requested"}}, r.resp.Kill)
	require.Empty(t, r.resp.Assign)
}

func TestSyncShortWaitAnswersEmpty(t *testing.T) {
	t.Parallel()
	b := setup(t)
	resp := b.sync(t, api.SyncRequest{Node: nodeInfo("n1"), Wait: api.Duration(time.Millisecond)})
	require.Empty(t, resp.Assign)
	require.Empty(t, resp.Kill)
	require.Empty(t, resp.Ack)
}

// TestServeShutdownEndsHeldSync serves on a real listener, holds a sync
// open, and cancels Serve's context: the held call answers at once and Serve
// returns.
func TestServeShutdownEndsHeldSync(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db, err := sqlite.Open(t.Context(), filepath.Join(dir, "drover.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	spy := &spyStore{Store: db}
	sched, err := scheduler.New(scheduler.Config{Store: spy, Clock: &fakeClock{now: t0}})
	require.NoError(t, err)
	srv, err := server.New(server.Config{Store: spy, Scheduler: sched, DataDir: dir})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	_, agentTok, err := srv.CreateToken(t.Context(), auth.AgentToken, "", "agents", nil, 0)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln, time.Minute) }()

	synced := spy.once(&spy.afterUpdate)
	held := syncAsync(t.Context(), "http://"+ln.Addr().String(), agentTok, api.SyncRequest{Node: nodeInfo("n1"), Wait: api.Duration(time.Minute)})
	select {
	case <-synced:
	case r := <-held:
		t.Fatalf("the sync answered at once: %+v", r)
	}
	cancel()

	r := <-held
	require.NoError(t, r.err)
	require.Equal(t, http.StatusOK, r.code)
	err = <-served
	require.True(t, err == nil || errors.Is(err, http.ErrServerClosed), "Serve: %v", err)
}

// TestSyncTaskReportedTwice sends a report that names an assigned task
// twice: it is the agent's mistake, answered 400, not a conflict of the
// store that refuses the whole sync.
func TestSyncTaskReportedTwice(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.running(t) // task0002 is ASSIGNED to n1
	zero := 0
	body := mustJSON(t, api.SyncRequest{Node: nodeInfo("n1"), Tasks: []api.TaskStatus{
		{TaskID: "task0001", State: "RUNNING"},
		{TaskID: "task0002", State: "RUNNING"},
		{TaskID: "task0002", State: "SUCCEEDED", ExitCode: &zero, Reason: "exited"},
	}})

	e := call[api.Error](t, b, "POST", "/v1/agent/sync", body, http.StatusBadRequest)

	require.Equal(t, "tasks[2].task_id", e.Field)
	require.Equal(t, "ASSIGNED", call[api.Task](t, b, "GET", "/v1/tasks/task0002", "", http.StatusOK).State)
}
