package scheduler_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/event"
	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/scheduler"
	"github.com/drover-dev/drover/internal/store"
	"github.com/drover-dev/drover/internal/task"
)

func TestSubmitCreatesPendingTasks(t *testing.T) {
	t.Parallel()
	b := setup(t)
	changed := b.sched.Changed()

	res := b.submit(t, newSpec(func(s *job.Spec) { s.Instances = 3; s.Priority = 42 }), "")

	require.Empty(t, cmp.Diff(scheduler.SubmitResult{
		Key: hello, Version: 1, Run: 1, Created: true, Tasks: []string{"task0001", "task0002", "task0003"},
	}, res))
	require.True(t, closed(changed), "a submission wakes whoever waits for changes")

	j := b.job(t, hello)
	require.Equal(t, job.Running, j.State)
	require.Equal(t, 1, j.Version)
	require.Equal(t, job.Batch, j.Type)
	require.True(t, j.CreatedAt.Equal(t0))

	ts := b.tasks(t, hello)
	require.Len(t, ts, 3)
	for i, tk := range ts {
		require.Equal(t, res.Tasks[i], tk.ID)
		require.Equal(t, i, tk.Instance)
		require.Equal(t, 1, tk.Attempt)
		require.Equal(t, 0, tk.Retries)
		require.Equal(t, 1, tk.JobVersion)
		require.Equal(t, task.Pending, tk.State)
		require.Equal(t, event.Submitted, tk.Reason)
		require.Equal(t, 42, tk.Priority)
		require.Equal(t, job.Resources{CPU: 100, Memory: 64 << 20}, tk.Resources)
		require.Empty(t, tk.Node)
		require.True(t, tk.NotBefore.Equal(t0), "a new task is ready at once")
		require.Equal(t, []string{"→PENDING submitted"}, b.history(t, tk.ID))
	}
	jobEvents := b.events(t, store.EventFilter{Job: hello.String()})
	require.Len(t, jobEvents, 4, "one job event and one per task")
	require.Equal(t, event.JobSubmitted, jobEvents[0].Reason)
	require.Equal(t, "run 1 (version 1, submit): 3 instances", jobEvents[0].Message)
	require.Equal(t, 1, jobEvents[0].Run)
}

func TestSubmitKeepsTheSpec(t *testing.T) {
	t.Parallel()
	b := setup(t)
	spec := newSpec(func(s *job.Spec) { s.Task.Env = map[string]string{"A": "b"}; s.Task.Timeout = time.Minute })
	b.submit(t, spec, "")
	var v job.Version
	require.NoError(t, b.store.View(b.ctx, func(r store.Reader) error {
		var err error
		v, err = r.GetJobVersion(b.ctx, hello, 1)
		return err
	}))
	require.Empty(t, cmp.Diff(spec, v.Spec))
}

func TestSubmitIdempotencyKey(t *testing.T) {
	t.Parallel()
	b := setup(t)
	first := b.submit(t, newSpec(func(s *job.Spec) { s.Instances = 2 }), "req-1")
	events := b.allEvents(t)

	b.clock.Advance(time.Second)
	again := b.submit(t, newSpec(func(s *job.Spec) { s.Instances = 2 }), "req-1")
	want := first
	want.Created = false
	require.Empty(t, cmp.Diff(want, again))
	require.Equal(t, events, b.allEvents(t), "a repeat writes nothing")

	// The key names a submission: a retry of it answers the first result
	// even once the job has ended, where a new submission would run it
	// again.
	_, err := b.sched.Kill(b.ctx, hello, nil)
	require.NoError(t, err)
	require.Equal(t, job.Killed, b.job(t, hello).State)
	again = b.submit(t, newSpec(func(s *job.Spec) { s.Instances = 2 }), "req-1")
	require.Empty(t, cmp.Diff(want, again))
	require.Equal(t, 1, b.job(t, hello).Version)
}

// TestSubmitIdempotencyKeyReused sends another request under a key already
// used: it is refused, never answered with the first job's result, which
// would tell the client a job was accepted that was never stored.
func TestSubmitIdempotencyKeyReused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		spec job.Spec
	}{
		{"another job", newSpec(func(s *job.Spec) { s.Key.Name = "other" })},
		{"another spec of the job", newSpec(func(s *job.Spec) { s.Instances = 2 })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.submit(t, newSpec(), "req-1")
			events := b.allEvents(t)

			_, err := b.sched.Submit(b.ctx, tt.spec, "req-1")

			require.ErrorIs(t, err, store.ErrConflict)
			require.ErrorContains(t, err, `idempotency key "req-1"`)
			require.Equal(t, events, b.allEvents(t))
		})
	}
}

func TestSubmitSameSpecWhileRunning(t *testing.T) {
	t.Parallel()
	b := setup(t)
	first := b.submit(t, newSpec(), "")
	events := b.allEvents(t)
	changed := b.sched.Changed()

	again := b.submit(t, newSpec(), "other-key")

	require.Empty(t, cmp.Diff(scheduler.SubmitResult{Key: hello, Version: 1, Run: 1, Created: false, Tasks: first.Tasks}, again))
	require.Equal(t, events, b.allEvents(t))
	require.False(t, closed(changed), "a repeat changes nothing, so it wakes nobody")
}

func TestSubmitDifferentSpecWhileRunning(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.submit(t, newSpec(), "")
	events := b.allEvents(t)

	_, err := b.sched.Submit(b.ctx, newSpec(func(s *job.Spec) { s.Instances = 2 }), "")

	require.ErrorIs(t, err, store.ErrConflict)
	var ce *scheduler.ConflictError
	require.ErrorAs(t, err, &ce)
	require.Contains(t, err.Error(), "demo/dev/hello is still running run 1 (version 1)")
	require.Equal(t, events, b.allEvents(t))
	require.Len(t, b.tasks(t, hello), 1)
}

func TestSubmitAfterEndedIsNewRun(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.submit(t, newSpec(), "")
	b.sync(t, "n1")
	b.placeOnce(t)
	b.sync(t, "n1", exited("task0001", 0))
	require.Equal(t, job.Succeeded, b.job(t, hello).State)

	at := b.clock.Advance(time.Minute)
	res := b.submit(t, newSpec(), "") // the same spec runs again, as the same version

	require.Empty(t, cmp.Diff(scheduler.SubmitResult{Key: hello, Version: 1, Run: 2, Created: true, Tasks: []string{"task0002"}}, res))
	j := b.job(t, hello)
	require.Equal(t, 1, j.Version)
	require.Equal(t, 2, j.Run)
	require.Equal(t, job.Running, j.State)
	require.True(t, j.CreatedAt.Equal(t0), "the job keeps its creation time across runs")
	require.True(t, j.UpdatedAt.Equal(at))
	tk := b.task(t, "task0002")
	require.Equal(t, 1, tk.JobVersion)
	require.Equal(t, 2, tk.Run)
	require.Equal(t, task.Pending, tk.State)
	require.Equal(t, task.Succeeded, b.task(t, "task0001").State, "the old run's tasks stay as they ended")

	// A changed spec is a new version, run as run 3.
	b.sync(t, "n1")
	b.placeOnce(t)
	b.sync(t, "n1", exited("task0002", 0))
	res = b.submit(t, newSpec(func(s *job.Spec) { s.Priority = 7 }), "")
	require.Equal(t, 2, res.Version)
	require.Equal(t, 3, res.Run)
	require.Equal(t, 2, b.job(t, hello).Version)
}

func TestSubmitInvalidChangesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := b.sched.Submit(b.ctx, newSpec(func(s *job.Spec) { s.Instances = 0; s.Task.Command = nil }), "")

	var fe *job.FieldError
	require.ErrorAs(t, err, &fe)
	require.ErrorContains(t, err, "instances")
	require.ErrorContains(t, err, "task.command")
	require.Zero(t, b.allEvents(t))
	require.NoError(t, b.store.View(b.ctx, func(r store.Reader) error {
		_, err := r.GetJob(b.ctx, hello)
		require.True(t, errors.Is(err, store.ErrNotFound), "got %v", err)
		return nil
	}))
}

// TestSubmitRepeatAfterRetry repeats a submission after one of its tasks
// failed and was retried: the answer is still the first one's, not the
// retry's task.
func TestSubmitRepeatAfterRetry(t *testing.T) {
	t.Parallel()
	b := setup(t)
	spec := newSpec(func(s *job.Spec) { s.Instances = 2 })
	first := b.submit(t, spec, "req-1")
	b.sync(t, "n1")
	b.placeOnce(t)
	b.sync(t, "n1", exited(first.Tasks[0], 1), running(first.Tasks[1]))
	require.Equal(t, task.Pending, b.task(t, "task0003").State, "instance 0 was retried")

	for _, idem := range []string{"req-1", ""} {
		again := b.submit(t, spec, idem)
		require.False(t, again.Created)
		require.Equal(t, first.Tasks, again.Tasks, "idempotency key %q", idem)
	}
}
