package scheduler_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/task"
)

func serviceSpec(s *job.Spec) {
	s.Type = job.Service
	s.Restart = job.Restart{Delay: 2 * time.Second, Attempts: 2, Interval: time.Minute}
}

// TestServiceRestartsInPlaceThenMoves: a service's task that exits is
// followed by a new task after restart.delay on the same node, until
// restart.attempts restarts happened there within the interval; then the
// instance moves to another node. The job stays RUNNING throughout.
func TestServiceRestartsInPlaceThenMoves(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.assigned(t, newSpec(serviceSpec))[0]
	b.sync(t, "n2") // a second node, emptier than n1 once n1 runs tasks

	nodes := []string{}
	for range 4 {
		cur := b.task(t, id)
		nodes = append(nodes, cur.Node)
		b.sync(t, cur.Node, running(id))
		b.sync(t, cur.Node, exited(id, 0)) // a service's exit, even 0, is restarted
		require.Equal(t, job.Running, b.job(t, hello).State)
		ts := b.tasks(t, hello)
		next := ts[len(ts)-1]
		require.Equal(t, task.Pending, next.State)
		require.Equal(t, b.clock.Now().Add(2*time.Second), next.NotBefore, "restart.delay")
		b.placeOnce(t)
		require.Equal(t, task.Pending, b.task(t, next.ID).State, "not before the delay")
		b.clock.Advance(2 * time.Second)
		b.placeOnce(t)
		require.Equal(t, task.Assigned, b.task(t, next.ID).State)
		id = next.ID
	}
	nodes = append(nodes, b.task(t, id).Node)
	// n1, then 2 restarts in place, then the budget is used and it moves.
	require.Equal(t, []string{"n1", "n1", "n1", "n2", "n2"}, nodes)
}

// TestServiceLostTaskMoves: a service task lost with its node is restarted
// on another node, whatever its reschedule budget.
func TestServiceLostTaskMoves(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.assigned(t, newSpec(serviceSpec, func(s *job.Spec) { s.Reschedule.Attempts = 0 }))[0]
	b.sync(t, "n1", running(id))
	b.sync(t, "n2")
	b.sync(t, "n1") // the agent no longer has it: LOST
	require.Equal(t, task.Lost, b.task(t, id).State)
	ts := b.tasks(t, hello)
	next := ts[len(ts)-1]
	require.Equal(t, task.Pending, next.State)
	b.clock.Advance(2 * time.Second)
	b.placeOnce(t)
	require.Equal(t, "n2", b.task(t, next.ID).Node)
}

// TestServiceKillEnds: only a kill ends a service, and no task follows it.
func TestServiceKillEnds(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.assigned(t, newSpec(serviceSpec))[0]
	b.sync(t, "n1", running(id))
	_, err := b.sched.Kill(b.ctx, hello, nil)
	require.NoError(t, err)
	b.sync(t, "n1", status(id, task.Killed))
	require.Len(t, b.tasks(t, hello), 1)
	require.Equal(t, job.Killed, b.job(t, hello).State)
}
