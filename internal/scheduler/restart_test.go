package scheduler_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/scheduler"
	"github.com/drover-dev/drover/internal/task"
)

// TestRestartCarriesOn submits and half runs a job with one scheduler, then
// closes its store and finishes the job with a new scheduler over the same
// file: everything that matters lives in the store.
func TestRestartCarriesOn(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "drover.db")
	clock := &fakeClock{now: t0}

	first := openStore(t, path)
	s1 := newScheduler(t, first, clock, "first")
	res, err := s1.Submit(ctx, newSpec(func(s *job.Spec) { s.Instances = 2; s.Retry.Attempts = 1 }), "req-1")
	require.NoError(t, err)
	_, err = s1.Sync(ctx, scheduler.Report{Node: newNode("n1"), Seq: 100})
	require.NoError(t, err)
	_, err = s1.PlaceOnce(ctx)
	require.NoError(t, err)
	// Instance 0 fails; its retry waits for its backoff.
	_, err = s1.Sync(ctx, scheduler.Report{Node: newNode("n1"), Seq: 101, Statuses: []scheduler.Status{exited(res.Tasks[0], 1), running(res.Tasks[1])}})
	require.NoError(t, err)
	require.NoError(t, first.Close())

	b := &bundle{ctx: ctx, path: path, clock: clock, store: openStore(t, path)}
	b.sched = newScheduler(t, b.store, clock, "second")

	// The new scheduler knows the submission and the job's state.
	again := b.submit(t, newSpec(func(s *job.Spec) { s.Instances = 2; s.Retry.Attempts = 1 }), "req-1")
	require.False(t, again.Created)
	require.Equal(t, res.Tasks, again.Tasks)
	require.Equal(t, task.Running, b.task(t, res.Tasks[1]).State)
	require.Equal(t, task.Pending, b.task(t, "first0003").State, "the retry made before the restart")

	// It keeps the backoff, then places and finishes the job. The agent's
	// Seq carries on from before; the new scheduler accepts it.
	next := b.placeOnce(t)
	require.False(t, next.IsZero(), "the retry's backoff is read from the store")
	require.Equal(t, task.Pending, b.task(t, "first0003").State)
	clock.Set(next)
	report := func(seq uint64, statuses ...scheduler.Status) scheduler.Orders {
		t.Helper()
		o, err := b.sched.Sync(ctx, scheduler.Report{Node: newNode("n1"), Seq: seq, Statuses: statuses})
		require.NoError(t, err)
		return o
	}
	report(102, running(res.Tasks[1]))
	b.placeOnce(t)
	orders := report(103, running(res.Tasks[1]))
	require.Len(t, orders.Assign, 1)
	require.Equal(t, "first0003", orders.Assign[0].Task.ID)
	require.Equal(t, 2, orders.Assign[0].Task.Attempt)

	clock.Advance(time.Second)
	report(104, exited(res.Tasks[1], 0), exited("first0003", 0))
	require.Equal(t, job.Succeeded, b.job(t, hello).State)
	require.Len(t, b.tasks(t, hello), 3)
}
