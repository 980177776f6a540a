package scheduler_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/event"
	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/node"
	"github.com/drover-dev/drover/internal/scheduler"
	"github.com/drover-dev/drover/internal/store"
	"github.com/drover-dev/drover/internal/task"
)

// grace is the node grace of the schedulers made by setupWith.
const grace = 10 * time.Second

// other is a second job, for work that waits while hello runs.
var other = job.Key{Role: "demo", Env: "dev", Name: "other"}

// setupWith is setup with a scheduler configured by cfg: Store, Clock and
// NewID are filled in, and a zero NodeGrace means grace.
func setupWith(t *testing.T, cfg scheduler.Config) *bundle {
	t.Helper()
	b := &bundle{ctx: t.Context(), path: filepath.Join(t.TempDir(), "drover.db"), clock: &fakeClock{now: t0}}
	b.store = openStore(t, b.path)
	b.sched = newSchedulerWith(t, b.store, b.clock, "task", cfg)
	return b
}

// newSchedulerWith is newScheduler with cfg's liveness settings.
func newSchedulerWith(t *testing.T, st store.Store, clock scheduler.Clock, prefix string, cfg scheduler.Config) *scheduler.Scheduler {
	t.Helper()
	var n atomic.Int64
	cfg.Store, cfg.Clock = st, clock
	cfg.NewID = func() string { return fmt.Sprintf("%s%04d", prefix, n.Add(1)) }
	if cfg.NodeGrace == 0 {
		cfg.NodeGrace = grace
	}
	s, err := scheduler.New(cfg)
	require.NoError(t, err)
	return s
}

// restart closes b's store and puts a new scheduler over the same file, as
// a restarted server would; the new scheduler's task IDs begin with prefix.
func (b *bundle) restart(t *testing.T, cfg scheduler.Config, prefix string) {
	t.Helper()
	require.NoError(t, b.store.Close())
	b.store = openStore(t, b.path)
	b.sched = newSchedulerWith(t, b.store, b.clock, prefix, cfg)
}

func (b *bundle) checkOnce(t *testing.T) {
	t.Helper()
	require.NoError(t, b.sched.CheckOnce(b.ctx))
}

func (b *bundle) node(t *testing.T, name string) node.Node {
	t.Helper()
	var n node.Node
	require.NoError(t, b.store.View(b.ctx, func(r store.Reader) error {
		var err error
		n, err = r.GetNode(b.ctx, name)
		return err
	}))
	return n
}

// nodeEvents summarises a node's events as "reason: message", oldest first.
func (b *bundle) nodeEvents(t *testing.T, name string) []string {
	t.Helper()
	var out []string
	for _, e := range b.events(t, store.EventFilter{Node: name}) {
		if e.TaskID == "" {
			out = append(out, fmt.Sprintf("%s: %s", e.Reason, e.Message))
		}
	}
	return out
}

// latest returns the newest task of each instance of a job, by instance.
func (b *bundle) latest(t *testing.T, key job.Key) map[int]task.Task {
	t.Helper()
	out := map[int]task.Task{}
	for _, tk := range b.tasks(t, key) {
		if cur, ok := out[tk.Instance]; !ok || tk.Attempt > cur.Attempt {
			out[tk.Instance] = tk
		}
	}
	return out
}

// taskIDs returns the IDs of the tasks of some assignments.
func taskIDs(as []scheduler.Assignment) []string {
	var ids []string
	for _, a := range as {
		ids = append(ids, a.Task.ID)
	}
	return ids
}

func TestNodeDownOnlyAfterGrace(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		silent   time.Duration
		wantDown bool
	}{
		{name: "silent for exactly the grace", silent: grace, wantDown: false},
		{name: "silent a nanosecond past the grace", silent: grace + time.Nanosecond, wantDown: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setupWith(t, scheduler.Config{})
			b.sync(t, "n1")

			b.clock.Set(t0.Add(tt.silent))
			b.checkOnce(t)

			want := node.Ready
			if tt.wantDown {
				want = node.Down
			}
			require.Equal(t, want, b.node(t, "n1").State)
			require.Equal(t, map[bool]int64{false: 0, true: 1}[tt.wantDown], b.sched.Stats().NodesDown)
		})
	}
}

// TestNodeDownLosesTasks follows a node that dies with a task in each
// active state: every task becomes LOST with a message naming the node,
// and is rescheduled, after the job's reschedule delay, on a node that
// lives.
func TestNodeDownLosesTasks(t *testing.T) {
	t.Parallel()
	b := setupWith(t, scheduler.Config{})
	b.sync(t, "n1")
	res := b.submit(t, newSpec(func(s *job.Spec) {
		s.Instances = 3
		s.Reschedule = job.Reschedule{Attempts: 2, Delay: 7 * time.Second}
	}), "")
	b.placeOnce(t)
	assigned, starting, run := res.Tasks[0], res.Tasks[1], res.Tasks[2]
	lastSeen := b.clock.Advance(time.Second)
	b.sync(t, "n1", status(starting, task.Starting), running(run))
	b.sync(t, "n2")

	// n2 keeps syncing; n1 stays silent just past its grace.
	b.clock.Set(lastSeen.Add(grace))
	b.sync(t, "n2")
	b.checkOnce(t)
	require.Equal(t, node.Ready, b.node(t, "n1").State)
	now := b.clock.Advance(time.Nanosecond)
	b.sync(t, "n2")
	b.checkOnce(t)

	require.Equal(t, node.Down, b.node(t, "n1").State)
	require.Equal(t, node.Ready, b.node(t, "n2").State)
	evs := b.nodeEvents(t, "n1")
	require.Equal(t, "node_down: no sync for 10s (grace 10s)", evs[len(evs)-1])
	require.Equal(t, scheduler.Stats{NodesDown: 1}, b.sched.Stats())
	for _, id := range res.Tasks {
		tk := b.task(t, id)
		require.Equal(t, task.Lost, tk.State, id)
		require.Equal(t, event.NodeDown, tk.Reason)
		require.Equal(t, "node n1 is down: no sync for 10s", tk.Message)
		require.True(t, tk.FinishedAt.Equal(now))
	}
	for id, from := range map[string]string{assigned: "ASSIGNED", starting: "STARTING", run: "RUNNING"} {
		h := b.history(t, id)
		require.Equal(t, from+"→LOST node_down", h[len(h)-1])
	}

	// Each instance has a new task: one more attempt, one reschedule used,
	// no retry used, waiting out the reschedule delay.
	next := b.latest(t, hello)
	require.Len(t, next, 3)
	for i, tk := range next {
		require.NotContains(t, res.Tasks, tk.ID, "instance %d", i)
		require.Equal(t, task.Pending, tk.State)
		require.Equal(t, event.Reschedule, tk.Reason)
		require.Equal(t, 2, tk.Attempt)
		require.Equal(t, 1, tk.Reschedules)
		require.Equal(t, 0, tk.Retries)
		require.True(t, tk.NotBefore.Equal(now.Add(7*time.Second)), "NotBefore %s", tk.NotBefore)
	}
	require.Equal(t, job.Running, b.job(t, hello).State)

	require.True(t, b.placeOnce(t).Equal(now.Add(7*time.Second)), "placement waits for the delay")
	for _, tk := range b.latest(t, hello) {
		require.Equal(t, task.Pending, tk.State)
	}
	b.clock.Advance(7 * time.Second)
	b.sync(t, "n2")
	b.placeOnce(t)
	for _, tk := range b.latest(t, hello) {
		require.Equal(t, task.Assigned, tk.State)
		require.Equal(t, "n2", tk.Node)
	}

	// A node already DOWN is not counted again.
	b.checkOnce(t)
	require.Equal(t, int64(1), b.sched.Stats().NodesDown)
}

// TestReconnectWindow restarts the server an hour after its nodes last
// synced: no node is DOWN until the reconnection window has passed, and a
// node that syncs in it is never DOWN.
func TestReconnectWindow(t *testing.T) {
	t.Parallel()
	const window = 30 * time.Second
	cfg := scheduler.Config{ReconnectWindow: window}
	b := setupWith(t, cfg)
	b.sync(t, "n1")
	b.sync(t, "n2")
	id := b.submit(t, newSpec(), "").Tasks[0]
	b.placeOnce(t)
	require.Equal(t, "n1", b.task(t, id).Node)
	b.sync(t, "n1", running(id))

	start := b.clock.Advance(time.Hour)
	b.restart(t, cfg, "second")

	b.checkOnce(t)
	b.clock.Set(start.Add(5 * time.Second))
	b.sync(t, "n2")
	b.clock.Set(start.Add(25 * time.Second))
	b.sync(t, "n2")
	b.clock.Set(start.Add(window - time.Nanosecond))
	b.checkOnce(t)
	require.Equal(t, node.Ready, b.node(t, "n1").State, "n1 has until the window ends")
	require.Equal(t, task.Running, b.task(t, id).State)
	require.Zero(t, b.sched.Stats().NodesDown)

	b.clock.Set(start.Add(window))
	b.checkOnce(t)
	require.Equal(t, node.Down, b.node(t, "n1").State)
	require.Equal(t, task.Lost, b.task(t, id).State)
	require.Equal(t, "node n1 is down: no sync for 1h0m30s", b.task(t, id).Message)

	// n2 goes on syncing within its grace and is never DOWN.
	for range 10 {
		b.clock.Advance(grace - time.Second)
		b.sync(t, "n2")
		b.checkOnce(t)
	}
	require.Equal(t, node.Ready, b.node(t, "n2").State)
	for _, e := range b.events(t, store.EventFilter{Node: "n2"}) {
		require.NotEqual(t, event.NodeDown, e.Reason)
	}
	require.Equal(t, int64(1), b.sched.Stats().NodesDown)
}

// TestReturningNodeIsFenced: a node declared DOWN syncs again, still
// running the task the server gave up on. It is told to kill it, and gets
// no new work until its report no longer holds the task running.
func TestReturningNodeIsFenced(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		end  scheduler.Status // the stale task's end, as the agent reports it
	}{
		{name: "killed on order", end: status("task0001", task.Killed, func(st *scheduler.Status) { st.Reason = event.Killed })},
		{name: "lost by stop_after", end: status("task0001", task.Lost, func(st *scheduler.Status) {
			st.Reason, st.Message = event.AgentStopped, "killed: the agent lost the server for more than 1m0s (stop_after)"
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setupWith(t, scheduler.Config{})
			b.sync(t, "n1")
			b.submit(t, newSpec(func(s *job.Spec) { s.Reschedule = job.Reschedule{Attempts: 1} }), "")
			b.placeOnce(t)
			b.clock.Advance(time.Second)
			b.sync(t, "n1", running("task0001"))
			b.clock.Advance(grace + time.Nanosecond)
			b.checkOnce(t)
			require.Equal(t, node.Down, b.node(t, "n1").State)
			require.Equal(t, task.Lost, b.task(t, "task0001").State)
			require.Equal(t, task.Pending, b.task(t, "task0002").State)
			b.placeOnce(t)
			require.Equal(t, task.Pending, b.task(t, "task0002").State, "no node to go to")

			// n1 returns, still running task0001.
			b.clock.Advance(time.Second)
			orders := b.sync(t, "n1", running("task0001"))

			require.Empty(t, cmp.Diff(scheduler.Orders{Kill: []scheduler.KillOrder{{TaskID: "task0001", Reason: "the task is LOST on the server"}}},
				orders, cmpopts.EquateEmpty()))
			require.Equal(t, node.Ready, b.node(t, "n1").State)
			evs := b.nodeEvents(t, "n1")
			require.Equal(t, "node_returned: ", evs[len(evs)-1])
			lost := b.task(t, "task0001")
			require.Equal(t, task.Lost, lost.State, "a report from the stale task changes nothing")
			require.Equal(t, event.NodeDown, lost.Reason)

			// The replacement can only go to n1. While n1 still reports
			// the stale task running (its kill takes its grace), the
			// replacement is held back.
			b.placeOnce(t)
			require.Equal(t, task.Assigned, b.task(t, "task0002").State)
			require.Equal(t, "n1", b.task(t, "task0002").Node)
			orders = b.sync(t, "n1", running("task0001"))
			require.Empty(t, orders.Assign, "no work before the stale task is gone")
			require.Len(t, orders.Kill, 1)
			require.Equal(t, "task0001", orders.Kill[0].TaskID)

			// The stale task's end is acked and changes nothing; the
			// replacement goes out in the same answer.
			events := b.allEvents(t)
			orders = b.sync(t, "n1", tt.end)

			require.Equal(t, []string{"task0001"}, orders.Ack)
			require.Empty(t, orders.Kill)
			require.Equal(t, []string{"task0002"}, taskIDs(orders.Assign))
			require.Equal(t, lost, b.task(t, "task0001"))
			require.Equal(t, events, b.allEvents(t))
			require.Len(t, b.tasks(t, hello), 2, "no reschedule for a stale report")
		})
	}
}

// TestStartTimeout: a task the agent never reports as started is LOST
// after the start timeout and rescheduled; a task that started is left
// alone.
func TestStartTimeout(t *testing.T) {
	t.Parallel()
	const timeout = 30 * time.Second
	b := setupWith(t, scheduler.Config{StartTimeout: timeout, NodeGrace: time.Hour, ReconnectWindow: time.Second})
	b.sync(t, "n1")
	res := b.submit(t, newSpec(func(s *job.Spec) {
		s.Instances = 3
		s.Reschedule = job.Reschedule{Attempts: 1, Delay: time.Second}
	}), "")
	b.placeOnce(t)
	assigned, starting, run := res.Tasks[0], res.Tasks[1], res.Tasks[2]
	b.clock.Advance(time.Second)
	// The agent never reports the first task, so every sync hands it out
	// again.
	report := func() {
		t.Helper()
		orders := b.sync(t, "n1", status(starting, task.Starting), running(run))
		for _, a := range orders.Assign {
			require.Equal(t, assigned, a.Task.ID)
		}
	}
	report()

	b.clock.Set(t0.Add(timeout))
	report()
	b.checkOnce(t)
	require.Equal(t, task.Assigned, b.task(t, assigned).State, "exactly the timeout is not past it")

	now := b.clock.Advance(time.Nanosecond)
	b.checkOnce(t)
	tk := b.task(t, assigned)
	require.Equal(t, task.Lost, tk.State)
	require.Equal(t, event.StartTimeout, tk.Reason)
	require.Equal(t, "still ASSIGNED on node n1 after 30s (start timeout)", tk.Message)
	require.Equal(t, task.Starting, b.task(t, starting).State, "started a second later")
	require.Equal(t, scheduler.Stats{TimedOutTasks: 1}, b.sched.Stats())
	next := b.latest(t, hello)[0]
	require.Equal(t, task.Pending, next.State)
	require.Equal(t, 2, next.Attempt)
	require.Equal(t, 1, next.Reschedules)
	require.True(t, next.NotBefore.Equal(now.Add(time.Second)))

	b.clock.Set(t0.Add(time.Second + timeout + time.Nanosecond))
	b.checkOnce(t)
	tk = b.task(t, starting)
	require.Equal(t, task.Lost, tk.State)
	require.Equal(t, "still STARTING on node n1 after 30s (start timeout)", tk.Message)
	require.Equal(t, int64(2), b.sched.Stats().TimedOutTasks)

	// A running task is not the watchdog's business, however long it runs.
	b.clock.Advance(45 * time.Minute)
	b.sync(t, "n1", running(run))
	b.checkOnce(t)
	require.Equal(t, task.Running, b.task(t, run).State)
	require.Equal(t, scheduler.Stats{TimedOutTasks: 2}, b.sched.Stats())
}

// TestStartTimeoutAfterRestart: no agent could report while the server was
// down, so a task ASSIGNED before a restart is not LOST at once; its agent
// gets the reconnection window, and the start timeout counts from the
// restart.
func TestStartTimeoutAfterRestart(t *testing.T) {
	t.Parallel()
	const timeout = 30 * time.Second
	tests := []struct {
		name    string
		reports bool // the agent reports the task once it reconnects
	}{
		{name: "agent reports the task after the restart", reports: true},
		{name: "agent never reports the task", reports: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := scheduler.Config{StartTimeout: timeout}
			b := setupWith(t, cfg)
			b.sync(t, "n1")
			id := b.submit(t, newSpec(), "").Tasks[0]
			b.placeOnce(t)
			require.Equal(t, task.Assigned, b.task(t, id).State)

			start := b.clock.Advance(2 * time.Hour)
			b.restart(t, cfg, "second")
			b.checkOnce(t)
			require.Equal(t, task.Assigned, b.task(t, id).State, "the agent has not had a chance to report")

			// The agent reconnects, and then keeps syncing.
			var report []scheduler.Status
			if tt.reports {
				report = append(report, running(id))
			}
			b.clock.Set(start.Add(5 * time.Second))
			orders := b.sync(t, "n1", report...)
			if !tt.reports {
				require.Equal(t, []string{id}, taskIDs(orders.Assign))
			}
			b.clock.Set(start.Add(timeout))
			b.sync(t, "n1", report...)
			b.checkOnce(t)
			if tt.reports {
				require.Equal(t, task.Running, b.task(t, id).State)
			} else {
				require.Equal(t, task.Assigned, b.task(t, id).State, "the start timeout counts from the restart")
			}

			b.clock.Set(start.Add(timeout + time.Nanosecond))
			b.checkOnce(t)
			if tt.reports {
				require.Equal(t, task.Running, b.task(t, id).State)
				require.Zero(t, b.sched.Stats().TimedOutTasks)
			} else {
				require.Equal(t, task.Lost, b.task(t, id).State)
				require.Equal(t, event.StartTimeout, b.task(t, id).Reason)
				require.Equal(t, int64(1), b.sched.Stats().TimedOutTasks)
			}
		})
	}
}

// TestDrain: a DRAINING node takes no new work, finishes what it runs and
// stays DRAINING while it syncs; undrained, it takes work again.
func TestDrain(t *testing.T) {
	t.Parallel()
	b := setupWith(t, scheduler.Config{})
	b.sync(t, "n1")
	id := b.submit(t, newSpec(), "").Tasks[0]
	b.placeOnce(t)
	b.sync(t, "n1", running(id))

	n, err := b.sched.Drain(b.ctx, "n1", true)
	require.NoError(t, err)
	require.Equal(t, node.Draining, n.State)
	n, err = b.sched.Drain(b.ctx, "n1", true)
	require.NoError(t, err, "draining twice is no error")
	require.Equal(t, node.Draining, n.State)
	require.Equal(t, []string{"node_registered: cpu 4000, memory 8589934592", "node_drain: "}, b.nodeEvents(t, "n1"))

	waiting := b.submit(t, newSpec(func(s *job.Spec) { s.Key = other; s.Instances = 2 }), "").Tasks
	b.placeOnce(t)
	for _, w := range waiting {
		require.Equal(t, task.Pending, b.task(t, w).State)
	}
	es := b.events(t, store.EventFilter{TaskID: waiting[0]})
	require.Equal(t, "no ready node", es[len(es)-1].Message)

	// Its running task goes on and finishes; heartbeats keep it DRAINING.
	b.clock.Advance(time.Second)
	require.True(t, b.sync(t, "n1", running(id)).Empty())
	b.clock.Advance(time.Second)
	require.Equal(t, []string{id}, b.sync(t, "n1", exited(id, 0)).Ack)
	require.Equal(t, task.Succeeded, b.task(t, id).State)
	require.Equal(t, job.Succeeded, b.job(t, hello).State)
	b.clock.Advance(time.Second)
	b.sync(t, "n1")
	require.Equal(t, node.Draining, b.node(t, "n1").State)
	b.placeOnce(t)
	require.Equal(t, task.Pending, b.task(t, waiting[0]).State)

	n, err = b.sched.Drain(b.ctx, "n1", false)
	require.NoError(t, err)
	require.Equal(t, node.Ready, n.State)
	evs := b.nodeEvents(t, "n1")
	require.Equal(t, "node_undrain: ", evs[len(evs)-1])
	b.placeOnce(t)
	for _, w := range waiting {
		require.Equal(t, task.Assigned, b.task(t, w).State)
		require.Equal(t, "n1", b.task(t, w).Node)
	}
}

func TestDrainErrors(t *testing.T) {
	t.Parallel()
	for _, drain := range []bool{true, false} {
		b := setupWith(t, scheduler.Config{})
		events := b.allEvents(t)
		_, err := b.sched.Drain(b.ctx, "nope", drain)
		require.True(t, errors.Is(err, store.ErrNotFound), "err %v", err)
		require.Equal(t, events, b.allEvents(t), "nothing recorded")
	}
}

// TestDrainOutlivesDown: a drain asked of a DOWN node, or of a node that
// then goes DOWN, holds when the node comes back: it returns DRAINING and
// gets no new work; undrained while DOWN, it returns READY.
func TestDrainOutlivesDown(t *testing.T) {
	t.Parallel()
	b := setupWith(t, scheduler.Config{})
	b.sync(t, "n1")
	_, err := b.sched.Drain(b.ctx, "n1", true)
	require.NoError(t, err)
	b.clock.Advance(grace + time.Nanosecond)
	b.checkOnce(t)
	require.Equal(t, node.Down, b.node(t, "n1").State)

	b.sync(t, "n1")
	require.Equal(t, node.Draining, b.node(t, "n1").State, "back from DOWN, still draining")
	id := b.submit(t, newSpec(), "").Tasks[0]
	b.placeOnce(t)
	require.Equal(t, task.Pending, b.task(t, id).State)

	b.clock.Advance(grace + time.Nanosecond)
	b.checkOnce(t)
	n, err := b.sched.Drain(b.ctx, "n1", false)
	require.NoError(t, err)
	require.Equal(t, node.Down, n.State, "undraining does not make a DOWN node READY")
	b.sync(t, "n1")
	require.Equal(t, node.Ready, b.node(t, "n1").State)
	b.placeOnce(t)
	require.Equal(t, task.Assigned, b.task(t, id).State)
}

// TestStartTimeoutWaitsForReconnectWindow: with a start timeout shorter
// than the reconnection window, no task is LOST before the window ends.
func TestStartTimeoutWaitsForReconnectWindow(t *testing.T) {
	t.Parallel()
	b := setupWith(t, scheduler.Config{StartTimeout: 5 * time.Second, ReconnectWindow: 20 * time.Second, NodeGrace: time.Hour})
	b.sync(t, "n1")
	id := b.submit(t, newSpec(), "").Tasks[0]
	b.placeOnce(t)

	b.clock.Set(t0.Add(20*time.Second - time.Nanosecond))
	b.checkOnce(t)
	require.Equal(t, task.Assigned, b.task(t, id).State)

	b.clock.Set(t0.Add(20 * time.Second))
	b.checkOnce(t)
	require.Equal(t, task.Lost, b.task(t, id).State)
	require.Equal(t, "still ASSIGNED on node n1 after 5s (start timeout)", b.task(t, id).Message)
}
