package scheduler_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/event"
	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/node"
	"github.com/drover-dev/drover/internal/scheduler"
	"github.com/drover-dev/drover/internal/store"
	"github.com/drover-dev/drover/internal/task"
)

// syncNode sends a report from n itself, for nodes unlike newNode(name).
func (b *bundle) syncNode(t *testing.T, n node.Node, statuses ...scheduler.Status) scheduler.Orders {
	t.Helper()
	o, err := b.sched.Sync(b.ctx, scheduler.Report{Node: n, Statuses: statuses})
	require.NoError(t, err)
	return o
}

// jobEvents returns the messages of a job's events with reason r, oldest
// first.
func (b *bundle) jobEvents(t *testing.T, key job.Key, r event.Reason) []string {
	t.Helper()
	var out []string
	for _, e := range b.events(t, store.EventFilter{Job: key.String()}) {
		if e.Reason == r {
			out = append(out, e.Message)
		}
	}
	return out
}

// TestRescheduleBudget loses the one instance of a job with its node, node
// after node: it is rescheduled while the budget allows, and then the
// instance ends LOST and the job FAILED.
func TestRescheduleBudget(t *testing.T) {
	t.Parallel()
	for _, attempts := range []int{0, 1, 3} {
		t.Run(fmt.Sprintf("%d attempts", attempts), func(t *testing.T) {
			t.Parallel()
			b := setupWith(t, scheduler.Config{})
			b.submit(t, newSpec(func(s *job.Spec) {
				s.Reschedule = job.Reschedule{Attempts: attempts, Delay: 7 * time.Second}
				s.Retry.Attempts = 5 // never used: losses are not failures
			}), "")
			for i := 0; i <= attempts; i++ {
				name := fmt.Sprintf("n%d", i+1)
				b.sync(t, name)
				b.placeOnce(t)
				tk := b.latest(t, hello)[0]
				require.Equal(t, task.Assigned, tk.State)
				require.Equal(t, name, tk.Node, "every other node is DOWN")
				require.Equal(t, i+1, tk.Attempt)
				require.Equal(t, i, tk.Reschedules)
				require.Zero(t, tk.Retries)
				b.sync(t, name, running(tk.ID))
				b.clock.Advance(grace + time.Nanosecond)
				b.checkOnce(t)
				require.Equal(t, task.Lost, b.task(t, tk.ID).State)
				if i < attempts {
					require.Equal(t, job.Running, b.job(t, hello).State)
					b.clock.Advance(7 * time.Second)
				}
			}

			require.Len(t, b.tasks(t, hello), attempts+1)
			require.Equal(t, job.Failed, b.job(t, hello).State)
			require.Equal(t, []string{"run 1 (version 1) FAILED: 1 LOST"}, b.jobEvents(t, hello, event.JobFinished))
			resched := b.jobEvents(t, hello, event.Reschedule)
			require.Len(t, resched, attempts+1)
			require.Equal(t, fmt.Sprintf("no reschedule left for instance 0 (%d of %d used)", attempts, attempts), resched[attempts])
			if attempts > 0 {
				require.Equal(t, fmt.Sprintf("instance 0 attempt 2: reschedule 1 of %d after 7s, because task task0001 was LOST on node n1 (node n1 is down: no sync for 10s)", attempts),
					resched[0], "the history says why the instance ran again")
			}
			require.Empty(t, b.jobEvents(t, hello, event.Retry))
		})
	}
}

// TestRetryAndRescheduleBudgetsApart runs an instance that is LOST once and
// FAILED once, with the server restarted after each, then ends its third
// task one way or the other: each end draws on its own budget, counted in
// the store.
func TestRetryAndRescheduleBudgetsApart(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		retry       int
		reschedule  int
		fail        bool   // the third task FAILED (else it is LOST)
		wantNext    bool   // the instance gets a fourth task
		wantMessage string // the last retry or reschedule event, when no fourth task
	}{
		{name: "retry left, reschedule used up: a failure is retried", retry: 2, reschedule: 1, fail: true, wantNext: true},
		{name: "retry used up: a failure ends the job", retry: 1, reschedule: 2, fail: true,
			wantMessage: "no retry left for instance 0 (1 of 1 used)"},
		{name: "reschedule left, retry used up: a loss is rescheduled", retry: 1, reschedule: 2, fail: false, wantNext: true},
		{name: "reschedule used up: a loss ends the job", retry: 2, reschedule: 1, fail: false,
			wantMessage: "no reschedule left for instance 0 (1 of 1 used)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := scheduler.Config{}
			b := setupWith(t, cfg)
			b.sync(t, "n1")
			b.sync(t, "n2")
			b.submit(t, newSpec(func(s *job.Spec) {
				s.Retry = job.Retry{Attempts: tt.retry, Backoff: 10 * time.Second}
				s.Reschedule = job.Reschedule{Attempts: tt.reschedule, Delay: 7 * time.Second}
			}), "")
			b.placeOnce(t)
			require.Equal(t, "n1", b.task(t, "task0001").Node)
			b.sync(t, "n1", running("task0001"))

			// The first task is lost with n1.
			b.clock.Advance(grace + time.Nanosecond)
			b.sync(t, "n2")
			b.checkOnce(t)
			b.restart(t, cfg, "second")
			second := b.task(t, "task0002")
			require.Equal(t, task.Pending, second.State)
			require.Equal(t, []int{2, 0, 1}, []int{second.Attempt, second.Retries, second.Reschedules})

			// The second fails on n2.
			b.clock.Advance(7 * time.Second)
			b.sync(t, "n2")
			b.placeOnce(t)
			b.sync(t, "n2", running("task0002"))
			b.clock.Advance(time.Second)
			b.sync(t, "n2", exited("task0002", 1))
			b.restart(t, cfg, "third")
			third := b.task(t, "second0001")
			require.Equal(t, task.Pending, third.State)
			require.Equal(t, event.Retry, third.Reason)
			require.Equal(t, []int{3, 1, 1}, []int{third.Attempt, third.Retries, third.Reschedules})

			// The third fails, or its agent loses it.
			b.clock.Advance(10 * time.Second)
			b.sync(t, "n2")
			b.placeOnce(t)
			b.sync(t, "n2", running("second0001"))
			b.clock.Advance(time.Second)
			if tt.fail {
				b.sync(t, "n2", exited("second0001", 1))
				require.Equal(t, task.Failed, b.task(t, "second0001").State)
			} else {
				b.sync(t, "n2")
				require.Equal(t, task.Lost, b.task(t, "second0001").State)
				require.Equal(t, event.AgentLost, b.task(t, "second0001").Reason)
			}

			if !tt.wantNext {
				require.Len(t, b.tasks(t, hello), 3)
				require.Equal(t, job.Failed, b.job(t, hello).State)
				reason := event.Reschedule
				if tt.fail {
					reason = event.Retry
				}
				es := b.jobEvents(t, hello, reason)
				require.Equal(t, tt.wantMessage, es[len(es)-1])
				return
			}
			require.Equal(t, job.Running, b.job(t, hello).State)
			fourth := b.latest(t, hello)[0]
			require.Equal(t, task.Pending, fourth.State)
			want := []int{4, 2, 1} // a retry
			if !tt.fail {
				want = []int{4, 1, 2} // a reschedule
			}
			require.Equal(t, want, []int{fourth.Attempt, fourth.Retries, fourth.Reschedules})
		})
	}
}

// TestRescheduleAvoidsLostNode: the replacement of a task lost with its
// node goes elsewhere even when the node is back and has more room, unless
// no other node can take it.
func TestRescheduleAvoidsLostNode(t *testing.T) {
	t.Parallel()
	small := func(n *node.Node) { n.Capacity.CPU = 1000 }
	tests := []struct {
		name     string
		n2       node.Node
		wantNode string
	}{
		{name: "another node fits", n2: newNode("n2", small), wantNode: "n2"},
		{name: "only the lost node fits", n2: newNode("n2", small, func(n *node.Node) { n.Attributes = map[string]string{"os": "plan9"} }),
			wantNode: "n1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setupWith(t, scheduler.Config{})
			b.sync(t, "n1")
			b.submit(t, newSpec(func(s *job.Spec) { s.Reschedule = job.Reschedule{Attempts: 1} }), "")
			b.placeOnce(t)
			b.sync(t, "n1", running("task0001"))
			b.syncNode(t, tt.n2)
			b.clock.Advance(grace + time.Nanosecond)
			b.syncNode(t, tt.n2)
			b.checkOnce(t)
			require.Equal(t, task.Lost, b.task(t, "task0001").State)

			// n1 comes back, empty and with the most free cpu.
			b.sync(t, "n1")
			b.placeOnce(t)

			next := b.task(t, "task0002")
			require.Equal(t, task.Assigned, next.State)
			require.Equal(t, tt.wantNode, next.Node)
		})
	}
}
