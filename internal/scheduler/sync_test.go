package scheduler_test

import (
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

// assigned submits spec, registers node n1 and places the job's tasks on
// it, returning their IDs.
func (b *bundle) assigned(t *testing.T, spec job.Spec) []string {
	t.Helper()
	b.sync(t, "n1")
	res := b.submit(t, spec, "")
	b.placeOnce(t)
	for _, id := range res.Tasks {
		require.Equal(t, task.Assigned, b.task(t, id).State)
	}
	return res.Tasks
}

func TestSyncRegistersNode(t *testing.T) {
	t.Parallel()
	b := setup(t)
	in := newNode("n1")

	orders, err := b.sched.Sync(b.ctx, scheduler.Report{Node: in})

	require.NoError(t, err)
	require.True(t, orders.Empty())
	var n node.Node
	require.NoError(t, b.store.View(b.ctx, func(r store.Reader) error {
		n, err = r.GetNode(b.ctx, "n1")
		return err
	}))
	require.Equal(t, node.Ready, n.State)
	require.Equal(t, in.Capacity, n.Capacity)
	require.Equal(t, in.Attributes, n.Attributes)
	require.Equal(t, in.Address, n.Address)
	require.True(t, n.RegisteredAt.Equal(t0))
	require.True(t, n.LastSeen.Equal(t0))
	es := b.events(t, store.EventFilter{Node: "n1"})
	require.Len(t, es, 1)
	require.Equal(t, event.NodeRegistered, es[0].Reason)

	// A later sync is a heartbeat, not a registration.
	at := b.clock.Advance(time.Minute)
	b.sync(t, "n1")
	require.NoError(t, b.store.View(b.ctx, func(r store.Reader) error {
		n, err = r.GetNode(b.ctx, "n1")
		return err
	}))
	require.True(t, n.LastSeen.Equal(at))
	require.True(t, n.RegisteredAt.Equal(t0))
	require.Len(t, b.events(t, store.EventFilter{Node: "n1"}), 1)
}

func TestSyncNodeReturns(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.sync(t, "n1")
	require.NoError(t, b.store.Update(b.ctx, func(tx store.Tx) error {
		n, err := tx.GetNode(b.ctx, "n1")
		if err != nil {
			return err
		}
		n.State = node.Down
		return tx.PutNode(b.ctx, n)
	}))
	b.submit(t, newSpec(), "")
	b.placeOnce(t)
	require.Equal(t, task.Pending, b.task(t, "task0001").State, "a down node gets no work")

	b.sync(t, "n1")

	es := b.events(t, store.EventFilter{Node: "n1"})
	require.Equal(t, event.NodeReturned, es[len(es)-1].Reason)
	b.placeOnce(t)
	require.Equal(t, task.Assigned, b.task(t, "task0001").State)
}

func TestSyncRunningThenSucceeded(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.assigned(t, newSpec())[0]
	agentStart := t0.Add(500 * time.Millisecond)

	at := b.clock.Advance(time.Second)
	orders := b.sync(t, "n1", status(id, task.Running, func(st *scheduler.Status) { st.StartedAt = &agentStart }))

	require.True(t, orders.Empty(), "a running task needs no orders")
	tk := b.task(t, id)
	require.Equal(t, task.Running, tk.State)
	require.True(t, tk.StartedAt.Equal(agentStart), "the agent's start time is kept")
	require.True(t, tk.UpdatedAt.Equal(at))
	require.Equal(t, job.Running, b.job(t, hello).State)

	b.clock.Advance(time.Second)
	orders = b.sync(t, "n1", exited(id, 0))

	require.Empty(t, cmp.Diff(scheduler.Orders{Ack: []string{id}}, orders, cmpopts.EquateEmpty()))
	tk = b.task(t, id)
	require.Equal(t, task.Succeeded, tk.State)
	require.Equal(t, 0, *tk.ExitCode)
	require.Equal(t, event.Exited, tk.Reason)
	require.NotNil(t, tk.FinishedAt)
	require.Equal(t, []string{
		"→PENDING submitted",
		"PENDING→ASSIGNED placed",
		"ASSIGNED→STARTING agent_start",
		"STARTING→RUNNING started",
		"RUNNING→SUCCEEDED exited",
	}, b.history(t, id))
	j := b.job(t, hello)
	require.Equal(t, job.Succeeded, j.State)
	es := b.events(t, store.EventFilter{Job: hello.String()})
	last := es[len(es)-1]
	require.Equal(t, event.JobFinished, last.Reason)
	require.Equal(t, string(job.Succeeded), last.To)
	require.Equal(t, "run 1 (version 1) SUCCEEDED: 1 SUCCEEDED", last.Message)
}

// TestSyncRecordsEveryStep reports end states straight from ASSIGNED, as an
// agent does when a task started and ended between two syncs: the server
// records each step it passed, one event per step.
func TestSyncRecordsEveryStep(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		report scheduler.Status
		want   []string
		state  job.State
	}{
		{
			name: "succeeded", report: exited("task0001", 0), state: job.Succeeded,
			want: []string{"ASSIGNED→STARTING agent_start", "STARTING→RUNNING started", "RUNNING→SUCCEEDED exited"},
		},
		{
			name: "could not start",
			report: status("task0001", task.Failed, func(st *scheduler.Status) {
				st.Reason, st.Message = event.StartFailed, "exec: no such file"
			}),
			state: job.Failed,
			// The last event says no retry is left.
			want: []string{"ASSIGNED→STARTING agent_start", "STARTING→FAILED start_failed", "→ retry"},
		},
		{
			name:   "starting",
			report: status("task0001", task.Starting), state: job.Running,
			want: []string{"ASSIGNED→STARTING agent_start"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.assigned(t, newSpec(func(s *job.Spec) { s.Retry.Attempts = 0 }))

			b.sync(t, "n1", tt.report)

			h := b.history(t, "task0001")
			require.Equal(t, tt.want, h[2:])
			require.Equal(t, tt.state, b.job(t, hello).State)
		})
	}
}

func TestSyncFailureRetriesAfterBackoff(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// Two retries, 10s then 20s apart.
	id := b.assigned(t, newSpec(func(s *job.Spec) { s.Retry = job.Retry{Attempts: 2, Backoff: 10 * time.Second} }))[0]
	b.sync(t, "n1", running(id))

	failedAt := b.clock.Advance(time.Second)
	orders := b.sync(t, "n1", exited(id, 3))

	require.Equal(t, []string{id}, orders.Ack)
	require.Equal(t, task.Failed, b.task(t, id).State)
	require.Equal(t, job.Running, b.job(t, hello).State, "a retry is due, so the job still runs")
	retry := b.task(t, "task0002")
	require.Equal(t, task.Pending, retry.State)
	require.Equal(t, 0, retry.Instance)
	require.Equal(t, 2, retry.Attempt)
	require.Equal(t, 1, retry.Retries)
	require.Equal(t, event.Retry, retry.Reason)
	require.Empty(t, retry.Node)
	require.True(t, retry.NotBefore.Equal(failedAt.Add(10*time.Second)), "NotBefore %s", retry.NotBefore)
	es := b.events(t, store.EventFilter{TaskID: "task0002"})
	require.Len(t, es, 1)
	require.Equal(t, event.Retry, es[0].Reason)
	require.Contains(t, es[0].Message, "retry 1 of 2 after 10s, because task task0001 FAILED (exit code 3)")

	// The retry waits out its backoff.
	next := b.placeOnce(t)
	require.True(t, next.Equal(retry.NotBefore), "PlaceOnce says when the next round is due")
	require.Equal(t, task.Pending, b.task(t, "task0002").State)
	b.clock.Advance(9 * time.Second)
	b.sync(t, "n1")
	b.placeOnce(t)
	require.Equal(t, task.Pending, b.task(t, "task0002").State)
	b.clock.Advance(time.Second)
	next = b.placeOnce(t)
	require.True(t, next.IsZero())
	require.Equal(t, task.Assigned, b.task(t, "task0002").State)

	// The second failure doubles the backoff.
	failedAt = b.clock.Advance(time.Second)
	b.sync(t, "n1", exited("task0002", 1))
	third := b.task(t, "task0003")
	require.Equal(t, 3, third.Attempt)
	require.Equal(t, 2, third.Retries)
	require.True(t, third.NotBefore.Equal(failedAt.Add(20*time.Second)))

	// The third failure exhausts the budget: the job fails.
	b.clock.Advance(20 * time.Second)
	b.sync(t, "n1")
	b.placeOnce(t)
	b.sync(t, "n1", exited("task0003", 1))

	require.Equal(t, job.Failed, b.job(t, hello).State)
	require.Len(t, b.tasks(t, hello), 3, "no fourth task")
	es = b.events(t, store.EventFilter{TaskID: "task0003"})
	var budget bool
	for _, e := range es {
		if e.Reason == event.Retry && e.Message == "no retry left for instance 0 (2 of 2 used)" {
			budget = true
		}
	}
	require.True(t, budget, "the event history says why there is no further task: %v", es)
}

func TestSyncNoRetryBudget(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.assigned(t, newSpec(func(s *job.Spec) { s.Retry.Attempts = 0; s.Instances = 2 }))[0]

	b.sync(t, "n1", exited(id, 1), running("task0002"))
	require.Equal(t, job.Running, b.job(t, hello).State, "instance 1 still runs")

	b.sync(t, "n1", exited("task0002", 0))
	j := b.job(t, hello)
	require.Equal(t, job.Failed, j.State)
	es := b.events(t, store.EventFilter{Job: hello.String()})
	require.Equal(t, "run 1 (version 1) FAILED: 1 SUCCEEDED; 1 FAILED", es[len(es)-1].Message)
}

func TestKillPendingEndsAtOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	res := b.submit(t, newSpec(func(s *job.Spec) { s.Instances = 2 }), "")
	changed := b.sched.Changed()

	ids, err := b.sched.Kill(b.ctx, hello, nil)

	require.NoError(t, err)
	require.Equal(t, res.Tasks, ids)
	require.True(t, closed(changed))
	for _, id := range ids {
		tk := b.task(t, id)
		require.Equal(t, task.Killed, tk.State)
		require.True(t, tk.KillRequested)
		require.NotNil(t, tk.FinishedAt)
		require.Equal(t, []string{"→PENDING submitted", "PENDING→KILLED kill_requested"}, b.history(t, id))
	}
	require.Equal(t, job.Killed, b.job(t, hello).State)

	// Nothing is left to place.
	b.sync(t, "n1")
	b.placeOnce(t)
	require.Equal(t, task.Killed, b.task(t, ids[0]).State)
}

func TestKillRunning(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.assigned(t, newSpec())[0]
	b.sync(t, "n1", running(id))
	wake := b.sched.NodeChanged("n1")

	ids, err := b.sched.Kill(b.ctx, hello, nil)

	require.NoError(t, err)
	require.Equal(t, []string{id}, ids)
	require.True(t, closed(wake), "the node's held sync is woken to carry the kill")
	tk := b.task(t, id)
	require.Equal(t, task.Running, tk.State, "the agent ends the task, not the server")
	require.True(t, tk.KillRequested)
	require.Equal(t, job.Running, b.job(t, hello).State)

	// A held sync hands the kill out without changing anything...
	orders, err := b.sched.PendingOrders(b.ctx, scheduler.Report{Node: newNode("n1"), Statuses: []scheduler.Status{running(id)}})
	require.NoError(t, err)
	require.Equal(t, []scheduler.KillOrder{{TaskID: id, Reason: "kill requested"}}, orders.Kill)
	// ...and so does every sync until the agent reports the end.
	orders = b.sync(t, "n1", running(id))
	require.Empty(t, cmp.Diff(scheduler.Orders{Kill: []scheduler.KillOrder{{TaskID: id, Reason: "kill requested"}}}, orders, cmpopts.EquateEmpty()))

	// Asking twice changes nothing.
	events := b.allEvents(t)
	_, err = b.sched.Kill(b.ctx, hello, nil)
	require.NoError(t, err)
	require.Equal(t, events, b.allEvents(t))

	orders = b.sync(t, "n1", status(id, task.Killed, func(st *scheduler.Status) { st.Reason = event.Killed }))

	require.Equal(t, []string{id}, orders.Ack)
	require.Empty(t, orders.Kill)
	require.Equal(t, task.Killed, b.task(t, id).State)
	require.Equal(t, job.Killed, b.job(t, hello).State)
	require.Len(t, b.tasks(t, hello), 1, "a killed task is not retried")
	require.Equal(t, []string{
		"→PENDING submitted", "PENDING→ASSIGNED placed", "ASSIGNED→STARTING agent_start", "STARTING→RUNNING started",
		"→ kill_requested", "RUNNING→KILLED killed",
	}, b.history(t, id))
}

func TestKillFailedOnTheWayOutIsNotRetried(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.assigned(t, newSpec())[0]
	b.sync(t, "n1", running(id))
	_, err := b.sched.Kill(b.ctx, hello, nil)
	require.NoError(t, err)

	b.sync(t, "n1", exited(id, 143)) // the process died of SIGTERM

	require.Len(t, b.tasks(t, hello), 1)
	require.True(t, b.job(t, hello).State.IsTerminal())
}

func TestKillAssignedBeforeItStarts(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.assigned(t, newSpec())[0]

	_, err := b.sched.Kill(b.ctx, hello, nil)
	require.NoError(t, err)
	orders := b.sync(t, "n1") // the agent never got the assignment

	require.True(t, orders.Empty(), "a killed task is not handed out: %+v", orders)
	require.Equal(t, task.Killed, b.task(t, id).State)
	require.Equal(t, job.Killed, b.job(t, hello).State)
}

func TestKillInstances(t *testing.T) {
	t.Parallel()
	b := setup(t)
	res := b.submit(t, newSpec(func(s *job.Spec) { s.Instances = 3 }), "")

	ids, err := b.sched.Kill(b.ctx, hello, []int{1})

	require.NoError(t, err)
	require.Equal(t, []string{res.Tasks[1]}, ids)
	require.Equal(t, task.Pending, b.task(t, res.Tasks[0]).State)
	require.Equal(t, task.Killed, b.task(t, res.Tasks[1]).State)
	require.Equal(t, job.Running, b.job(t, hello).State)
}

func TestKillErrors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.submit(t, newSpec(func(s *job.Spec) { s.Instances = 2 }), "")
	events := b.allEvents(t)

	_, err := b.sched.Kill(b.ctx, hello, []int{0, 2})
	var fe *job.FieldError
	require.ErrorAs(t, err, &fe)
	require.Equal(t, "instances", fe.Field)
	require.Equal(t, events, b.allEvents(t))
	require.Equal(t, task.Pending, b.task(t, "task0001").State, "a bad request kills nothing")

	_, err = b.sched.Kill(b.ctx, job.Key{Role: "no", Env: "such", Name: "job"}, nil)
	require.ErrorIs(t, err, store.ErrNotFound)
}

func TestSyncUnexpectedReports(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		node   string
		report scheduler.Status
		want   scheduler.Orders
	}{
		{
			name: "unknown task is killed", node: "n1", report: running("nosuch"),
			want: scheduler.Orders{Kill: []scheduler.KillOrder{{TaskID: "nosuch", Reason: "the server has no such task on this node"}}},
		},
		{
			name: "another node's task is killed", node: "n2", report: running("task0001"),
			want: scheduler.Orders{Kill: []scheduler.KillOrder{{TaskID: "task0001", Reason: "the server has no such task on this node"}}},
		},
		{
			name: "unknown task's end is acked", node: "n1", report: exited("nosuch", 0),
			want: scheduler.Orders{Ack: []string{"nosuch"}},
		},
		{
			name: "ended task's end is acked again", node: "n1", report: exited("task0002", 0),
			want: scheduler.Orders{Ack: []string{"task0002"}},
		},
		{
			name: "ended task reported running is killed", node: "n1", report: running("task0002"),
			want: scheduler.Orders{Kill: []scheduler.KillOrder{{TaskID: "task0002", Reason: "the task is SUCCEEDED on the server"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			// task0001 runs on n1; task0002 ran on n1 and its end was acked.
			b.assigned(t, newSpec(func(s *job.Spec) { s.Instances = 2 }))
			b.sync(t, "n1", running("task0001"), exited("task0002", 0))
			b.sync(t, "n2")
			events := b.allEvents(t)

			statuses := []scheduler.Status{tt.report}
			if tt.node == "n1" {
				statuses = append(statuses, running("task0001"))
			}
			orders := b.sync(t, tt.node, statuses...)

			require.Empty(t, cmp.Diff(tt.want, orders, cmpopts.EquateEmpty()))
			require.Equal(t, events, b.allEvents(t), "a stale report changes nothing")
			require.Equal(t, task.Running, b.task(t, "task0001").State)
			require.Equal(t, task.Succeeded, b.task(t, "task0002").State)
		})
	}
}

func TestSyncLateStatusIsIgnored(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.assigned(t, newSpec())[0]
	b.sync(t, "n1", running(id))
	events := b.allEvents(t)

	orders := b.sync(t, "n1", status(id, task.Starting))

	require.True(t, orders.Empty())
	require.Equal(t, task.Running, b.task(t, id).State, "the server's state stands")
	require.Equal(t, events, b.allEvents(t))
}

func TestSyncMissingTaskIsLost(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		state task.State
	}{
		{"running", task.Running},
		{"starting", task.Starting},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			id := b.assigned(t, newSpec())[0]
			b.sync(t, "n1", status(id, tt.state))

			orders := b.sync(t, "n1") // the agent no longer has it

			require.True(t, orders.Empty())
			tk := b.task(t, id)
			require.Equal(t, task.Lost, tk.State)
			require.Equal(t, event.AgentLost, tk.Reason)
			require.Equal(t, "the agent on node n1 no longer has the task", tk.Message)
			h := b.history(t, id)
			require.Contains(t, h, string(tt.state)+"→LOST agent_lost")
			require.True(t, b.job(t, hello).State.IsTerminal() || len(b.tasks(t, hello)) > 1,
				"a lost task either ends the job or is replaced")
		})
	}
}

func TestSyncAssignedTaskMissingIsReassigned(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.assigned(t, newSpec())[0]

	orders := b.sync(t, "n1")
	require.Len(t, orders.Assign, 1)
	orders = b.sync(t, "n1") // the answer was lost on the way: assign again
	require.Len(t, orders.Assign, 1)
	require.Equal(t, id, orders.Assign[0].Task.ID)
	require.Equal(t, task.Assigned, b.task(t, id).State)
}

func TestSyncStaleSeq(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.assigned(t, newSpec(func(s *job.Spec) { s.Instances = 2 }))[0]
	report := func(seq uint64, statuses ...scheduler.Status) scheduler.Orders {
		t.Helper()
		o, err := b.sched.Sync(b.ctx, scheduler.Report{Node: newNode("n1"), Seq: seq, Statuses: statuses})
		require.NoError(t, err)
		return o
	}
	report(10, running(id), running("task0002"))
	events := b.allEvents(t)
	seen := b.clock.Advance(time.Second)

	for _, seq := range []uint64{9, 10} {
		// Overtaken reports: one says the task ended, and neither holds
		// task0002, which must not make it LOST.
		orders := report(seq, exited(id, 0))
		require.True(t, orders.Empty(), "seq %d", seq)
		require.Equal(t, task.Running, b.task(t, id).State, "seq %d", seq)
		require.Equal(t, task.Running, b.task(t, "task0002").State, "seq %d", seq)
		require.Equal(t, events, b.allEvents(t), "seq %d", seq)
	}

	orders := report(11, exited(id, 0), running("task0002"))
	require.Equal(t, []string{id}, orders.Ack)
	require.Equal(t, task.Succeeded, b.task(t, id).State)
	var n node.Node
	require.NoError(t, b.store.View(b.ctx, func(r store.Reader) error {
		var err error
		n, err = r.GetNode(b.ctx, "n1")
		return err
	}))
	require.True(t, n.LastSeen.Equal(seen))

	// Seq zero is always applied.
	report(0, exited("task0002", 0))
	require.Equal(t, task.Succeeded, b.task(t, "task0002").State)
}

func TestPendingOrders(t *testing.T) {
	t.Parallel()
	b := setup(t)
	spec := newSpec(func(s *job.Spec) { s.Instances = 3 })
	b.assigned(t, spec)
	b.sync(t, "n1", running("task0001"), status("task0002", task.Starting))
	events := b.allEvents(t)

	get := func(statuses ...scheduler.Status) scheduler.Orders {
		t.Helper()
		o, err := b.sched.PendingOrders(b.ctx, scheduler.Report{Node: newNode("n1"), Statuses: statuses})
		require.NoError(t, err)
		return o
	}

	// An empty report: only the ASSIGNED task is handed out; the running
	// ones are not judged lost.
	orders := get()
	require.Len(t, orders.Assign, 1)
	require.Equal(t, "task0003", orders.Assign[0].Task.ID)
	require.Empty(t, cmp.Diff(spec, orders.Assign[0].Spec))
	require.Empty(t, orders.Kill)

	// The agent already holds the assigned task: nothing to say.
	require.True(t, get(running("task0001"), status("task0002", task.Starting), status("task0003", task.Starting)).Empty())

	// Another node has nothing.
	o, err := b.sched.PendingOrders(b.ctx, scheduler.Report{Node: newNode("n2")})
	require.NoError(t, err)
	require.True(t, o.Empty())

	require.Equal(t, events, b.allEvents(t), "PendingOrders writes nothing")
	require.Equal(t, task.Running, b.task(t, "task0001").State)
}
