package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/event"
	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/store"
	"github.com/drover-dev/drover/internal/task"
)

// taskCases cover TaskReader and TaskWriter: round trips, the filters and
// order of ListTasks, NextNotBefore and compare-and-set updates.
func taskCases() []testCase {
	return []testCase{
		{"RoundTrip", testTaskRoundTrip},
		{"GetTaskMissing", testGetTaskMissing},
		{"InsertDuplicateID", testInsertDuplicateTask},
		{"ListTasksFilters", testListTasksFilters},
		{"ListTasksOrder", testListTasksOrder},
		{"NextNotBefore", testNextNotBefore},
		{"UpdateTaskCompareAndSet", testUpdateTaskCAS},
		{"UpdateTaskWholeLife", testUpdateTaskLife},
		{"UpdateTaskConcurrent", testUpdateTaskConcurrent},
	}
}

func testTaskRoundTrip(t *testing.T, s store.Store) {
	cest := time.FixedZone("CEST", 2*60*60)
	tasks := map[string]task.Task{
		// Every optional field unset: no node, exit code or start/finish.
		"minimal": NewTask(),
		// Every field set, times in another zone and off the second.
		"full": NewTask(func(tk *task.Task) {
			tk.Job = job.Key{Role: "data", Env: "staging", Name: "nightly-import"}
			tk.JobVersion = 12
			tk.Instance = 41
			tk.Attempt = 3
			tk.Retries = 2
			tk.Reschedules = 1
			tk.State = task.Failed
			tk.Node = "node-a.example"
			tk.KillRequested = true
			tk.Priority = 999
			tk.Resources = job.Resources{CPU: 1500, Memory: 3<<30 + 1}
			tk.ExitCode = new(137)
			tk.Reason = event.Timeout
			tk.Message = "killed after 1h0m0s: «timeout»\nsecond line"
			tk.CreatedAt = T0.In(cest)
			tk.NotBefore = T0.Add(time.Minute + time.Nanosecond).In(cest)
			tk.UpdatedAt = T0.Add(time.Hour + 999*time.Nanosecond)
			tk.StartedAt = new(T0.Add(2 * time.Minute).In(cest))
			tk.FinishedAt = new(T0.Add(time.Hour + time.Nanosecond))
		}),
		// Exit code 0 is a set exit code, not a missing one.
		"exit zero": NewTask(func(tk *task.Task) {
			tk.State = task.Succeeded
			tk.Node = "node-b"
			tk.ExitCode = new(0)
			tk.Reason = event.Exited
			tk.StartedAt = new(T0.Add(time.Second))
			tk.FinishedAt = new(T0.Add(2 * time.Second))
		}),
		// Started but not finished; a negative exit code (signal) elsewhere.
		"running": NewTask(func(tk *task.Task) {
			tk.State = task.Running
			tk.Node = "node-b"
			tk.StartedAt = new(T0.Add(time.Second))
		}),
		"negative exit": NewTask(func(tk *task.Task) {
			tk.State = task.Failed
			tk.ExitCode = new(-1)
			tk.NotBefore = time.Time{}
		}),
	}
	all := make([]task.Task, 0, len(tasks))
	for _, tk := range tasks {
		all = append(all, tk)
	}
	insertTasks(t, s, all...)
	insertTasks(t, s) // no tasks: a no-op

	for name, want := range tasks {
		got := getTask(t, s, want.ID)
		requireEqual(t, want, got, name)
		requireUTC(t, name, &got.CreatedAt, &got.NotBefore, &got.UpdatedAt, got.StartedAt, got.FinishedAt)
	}
}

func testGetTaskMissing(t *testing.T, s store.Store) {
	requireNotFound(t, s, "task on an empty store", func(ctx context.Context, r store.Reader) error {
		_, err := r.GetTask(ctx, "no-such-task")
		return err
	})
	insertTasks(t, s, NewTask())
	requireNotFound(t, s, "unknown task", func(ctx context.Context, r store.Reader) error {
		_, err := r.GetTask(ctx, "no-such-task")
		return err
	})
}

func testInsertDuplicateTask(t *testing.T, s store.Store) {
	first := NewTask()
	insertTasks(t, s, first)

	fresh := NewTask()
	dup := NewTask(func(tk *task.Task) {
		tk.ID = first.ID
		tk.Instance = 5
	})
	err := s.Update(t.Context(), func(tx store.Tx) error { return tx.InsertTasks(t.Context(), fresh, dup) })
	require.ErrorIs(t, err, store.ErrConflict)
	requireEqual(t, first, getTask(t, s, first.ID), "the stored task is untouched")
	requireNotFound(t, s, "the batch's other task", func(ctx context.Context, r store.Reader) error {
		_, err := r.GetTask(ctx, fresh.ID)
		return err
	})
}

func testListTasksFilters(t *testing.T, s store.Store) {
	a := DefaultKey
	b := job.Key{Role: "web", Env: "prod", Name: "other"}
	// One priority and rising creation times: the expected order is the
	// order of this list.
	var tasks []task.Task
	add := func(name string, o func(*task.Task)) {
		tasks = append(tasks, NewTask(func(tk *task.Task) {
			tk.ID = name
			tk.CreatedAt = T0.Add(time.Duration(len(tasks)) * time.Second)
			o(tk)
		}))
	}
	add("a1-0", func(tk *task.Task) { tk.Job, tk.JobVersion, tk.Instance = a, 1, 0; tk.State = task.Pending })
	add("a1-1", func(tk *task.Task) {
		tk.Job, tk.JobVersion, tk.Instance = a, 1, 1
		tk.State, tk.Node = task.Running, "n1"
	})
	add("a2-0", func(tk *task.Task) {
		tk.Job, tk.JobVersion, tk.Instance = a, 2, 0
		tk.State, tk.NotBefore = task.Pending, T0.Add(time.Minute)
	})
	add("a2-1", func(tk *task.Task) {
		tk.Job, tk.JobVersion, tk.Instance = a, 2, 1
		tk.State, tk.Node = task.Assigned, "n2"
	})
	add("b1-0", func(tk *task.Task) {
		tk.Job, tk.JobVersion, tk.Instance = b, 1, 0
		tk.State, tk.NotBefore = task.Pending, T0.Add(time.Minute+time.Nanosecond)
	})
	add("b1-1", func(tk *task.Task) {
		tk.Job, tk.JobVersion, tk.Instance = b, 1, 1
		tk.State, tk.Node = task.Succeeded, "n1"
	})
	insertTasks(t, s, tasks...)

	for _, c := range []struct {
		name string
		f    store.TaskFilter
		want []string
	}{
		{"everything", store.TaskFilter{}, []string{"a1-0", "a1-1", "a2-0", "a2-1", "b1-0", "b1-1"}},
		{"job", store.TaskFilter{Job: &b}, []string{"b1-0", "b1-1"}},
		{"job and version", store.TaskFilter{Job: &a, JobVersion: 2}, []string{"a2-0", "a2-1"}},
		{"instance 0", store.TaskFilter{Instance: new(0)}, []string{"a1-0", "a2-0", "b1-0"}},
		{"job and instance", store.TaskFilter{Job: &a, Instance: new(1)}, []string{"a1-1", "a2-1"}},
		{"node", store.TaskFilter{Node: "n1"}, []string{"a1-1", "b1-1"}},
		{"one state", store.TaskFilter{States: []task.State{task.Pending}}, []string{"a1-0", "a2-0", "b1-0"}},
		{"states", store.TaskFilter{States: []task.State{task.Assigned, task.Running}}, []string{"a1-1", "a2-1"}},
		{"state with none", store.TaskFilter{States: []task.State{task.Lost}}, nil},
		// ReadyBy is inclusive: a task due exactly then is ready.
		{"ready by", store.TaskFilter{ReadyBy: T0.Add(time.Minute)}, []string{"a1-0", "a1-1", "a2-0", "a2-1", "b1-1"}},
		{"ready by, pending", store.TaskFilter{States: []task.State{task.Pending}, ReadyBy: T0}, []string{"a1-0"}},
		{"all fields", store.TaskFilter{Job: &a, JobVersion: 2, Instance: new(0), States: []task.State{task.Pending}, ReadyBy: T0.Add(time.Hour)}, []string{"a2-0"}},
		{"no match", store.TaskFilter{Job: &a, Node: "n3"}, nil},
		{"limit", store.TaskFilter{Limit: 2}, []string{"a1-0", "a1-1"}},
		{"limit with filter", store.TaskFilter{Node: "n1", Limit: 1}, []string{"a1-1"}},
		{"limit above count", store.TaskFilter{Job: &b, Limit: 10}, []string{"b1-0", "b1-1"}},
	} {
		var got []task.Task
		var n int
		view(t, s, func(ctx context.Context, r store.Reader) (err error) {
			if got, err = r.ListTasks(ctx, c.f); err != nil {
				return err
			}
			if c.f.Limit == 0 {
				n, err = r.CountTasks(ctx, c.f)
			}
			return err
		})
		if c.want == nil {
			require.Empty(t, got, c.name)
		} else {
			requireEqual(t, c.want, taskIDs(got), c.name)
		}
		if c.f.Limit == 0 {
			require.Equal(t, len(c.want), n, "%s: CountTasks", c.name)
		}
	}
}

func testListTasksOrder(t *testing.T, s store.Store) {
	// Placement order: priority highest first, then oldest first, then the
	// lowest instance. Inserted out of order on purpose.
	mk := func(id string, prio int, created time.Duration, inst int) task.Task {
		return NewTask(func(tk *task.Task) {
			tk.ID, tk.Priority, tk.CreatedAt, tk.Instance = id, prio, T0.Add(created), inst
		})
	}
	insertTasks(t, s,
		mk("p10-late", 10, time.Hour, 0),
		mk("p50-early-i2", 50, 0, 2),
		mk("p0", 0, -time.Hour, 0),
		mk("p50-late", 50, time.Nanosecond, 0),
		mk("p50-early-i0", 50, 0, 0),
		mk("p900", 900, 2*time.Hour, 7),
		mk("p50-early-i1", 50, 0, 1),
	)
	want := []string{"p900", "p50-early-i0", "p50-early-i1", "p50-early-i2", "p50-late", "p10-late", "p0"}

	var got []task.Task
	view(t, s, func(ctx context.Context, r store.Reader) (err error) {
		got, err = r.ListTasks(ctx, store.TaskFilter{})
		return err
	})
	requireEqual(t, want, taskIDs(got))

	view(t, s, func(ctx context.Context, r store.Reader) (err error) {
		got, err = r.ListTasks(ctx, store.TaskFilter{Limit: 3})
		return err
	})
	requireEqual(t, want[:3], taskIDs(got), "Limit keeps the first in placement order")
}

func testNextNotBefore(t *testing.T, s store.Store) {
	next := func() time.Time {
		t.Helper()
		var got time.Time
		view(t, s, func(ctx context.Context, r store.Reader) (err error) {
			got, err = r.NextNotBefore(ctx, T0)
			return err
		})
		return got
	}
	require.True(t, next().IsZero(), "no tasks: zero time")

	// Neither tasks in other states nor PENDING tasks already due count.
	dueAt := func(d time.Duration, st task.State) task.Task {
		return NewTask(func(tk *task.Task) { tk.State, tk.NotBefore = st, T0.Add(d) })
	}
	insertTasks(t, s,
		dueAt(time.Second, task.Assigned),
		dueAt(time.Millisecond, task.Failed),
		dueAt(-time.Hour, task.Pending),
		dueAt(0, task.Pending), // due now is not after now
	)
	got := next()
	require.True(t, got.IsZero(), "nothing PENDING in the future: want the zero time, got %s", got)

	insertTasks(t, s,
		dueAt(5*time.Minute, task.Pending),
		dueAt(2*time.Minute+time.Nanosecond, task.Pending),
		dueAt(time.Hour, task.Pending),
	)
	got = next()
	require.True(t, got.Equal(T0.Add(2*time.Minute+time.Nanosecond)), "next not-before: %s", got)
	requireUTC(t, "next not-before", &got)
}

func testUpdateTaskCAS(t *testing.T, s store.Store) {
	pending := NewTask()
	insertTasks(t, s, pending)

	assigned := pending
	assigned.State = task.Assigned
	assigned.Node = "node-1"
	assigned.Reason = event.Placed
	assigned.UpdatedAt = T0.Add(time.Second)
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.UpdateTask(ctx, assigned, task.Pending) })
	requireEqual(t, assigned, getTask(t, s, pending.ID))

	// A writer that still thinks the task is PENDING loses, and changes
	// nothing.
	stale := pending
	stale.State = task.Killed
	stale.Reason = event.KillRequest
	stale.UpdatedAt = T0.Add(time.Minute)
	err := s.Update(t.Context(), func(tx store.Tx) error { return tx.UpdateTask(t.Context(), stale, task.Pending) })
	require.ErrorIs(t, err, store.ErrConflict)
	require.NotErrorIs(t, err, store.ErrNotFound)
	requireEqual(t, assigned, getTask(t, s, pending.ID), "a lost compare-and-set changes nothing")

	// An update that keeps the state (desired state: a kill request) is a
	// compare-and-set on the state it keeps.
	kill := assigned
	kill.KillRequested = true
	kill.UpdatedAt = T0.Add(2 * time.Second)
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.UpdateTask(ctx, kill, task.Assigned) })
	requireEqual(t, kill, getTask(t, s, pending.ID))

	unknown := NewTask()
	err = s.Update(t.Context(), func(tx store.Tx) error { return tx.UpdateTask(t.Context(), unknown, task.Pending) })
	require.ErrorIs(t, err, store.ErrNotFound)
	require.NotErrorIs(t, err, store.ErrConflict)
	requireNotFound(t, s, "UpdateTask does not insert", func(ctx context.Context, r store.Reader) error {
		_, err := r.GetTask(ctx, unknown.ID)
		return err
	})
}

func testUpdateTaskLife(t *testing.T, s store.Store) {
	// Walk one task through its whole life; after each step the stored task
	// is exactly the one written, including fields going from unset to set.
	tk := NewTask(func(tk *task.Task) { tk.NotBefore = T0.Add(time.Minute) })
	other := NewTask()
	insertTasks(t, s, tk, other)

	steps := []struct {
		to     task.State
		change func(*task.Task)
	}{
		{task.Assigned, func(tk *task.Task) { tk.Node, tk.Reason = "node-7", event.Placed }},
		{task.Starting, func(tk *task.Task) { tk.Reason = event.AgentStart }},
		{task.Running, func(tk *task.Task) {
			tk.Reason = event.Started
			tk.StartedAt = new(T0.Add(3*time.Second + 7*time.Nanosecond))
		}},
		{task.Failed, func(tk *task.Task) {
			tk.Reason = event.Exited
			tk.Message = "exit code 3"
			tk.ExitCode = new(3)
			tk.FinishedAt = new(T0.Add(time.Hour))
		}},
	}
	for i, st := range steps {
		from := tk.State
		tk.State = st.to
		tk.UpdatedAt = T0.Add(time.Duration(i+1) * time.Second)
		st.change(&tk)
		update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.UpdateTask(ctx, tk, from) })
		got := getTask(t, s, tk.ID)
		requireEqual(t, tk, got, "%s -> %s", from, st.to)
		requireUTC(t, string(st.to), &got.UpdatedAt, got.StartedAt, got.FinishedAt)
	}
	requireEqual(t, other, getTask(t, s, other.ID), "UpdateTask touches only its task")
}

func testUpdateTaskConcurrent(t *testing.T, s store.Store) {
	// Many schedulers race to place the same PENDING task, each with its
	// placement event. Exactly one wins; the others see ErrConflict and
	// their events roll back with them.
	const n = 8
	pending := NewTask()
	insertTasks(t, s, pending)

	start := make(chan struct{})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			ctx := t.Context()
			placed := pending
			placed.State = task.Assigned
			placed.Node = fmt.Sprintf("node-%d", i)
			placed.Reason = event.Placed
			errs[i] = s.Update(ctx, func(tx store.Tx) error {
				if err := tx.UpdateTask(ctx, placed, task.Pending); err != nil {
					return err
				}
				return tx.InsertEvents(ctx, NewEvent(func(e *event.Event) {
					e.TaskID, e.Node, e.Message = placed.ID, placed.Node, placed.Node
				}))
			})
		})
	}
	close(start)
	wg.Wait()

	winner := -1
	for i, err := range errs {
		if err == nil {
			require.Equal(t, -1, winner, "two writers won: %d and %d", winner, i)
			winner = i
			continue
		}
		require.ErrorIs(t, err, store.ErrConflict, "writer %d", i)
	}
	require.NotEqual(t, -1, winner, "no writer won")

	want := fmt.Sprintf("node-%d", winner)
	got := getTask(t, s, pending.ID)
	require.Equal(t, task.Assigned, got.State)
	require.Equal(t, want, got.Node, "the stored placement is the winner's")
	requireEqual(t, []string{want}, eventMessages(listEvents(t, s, store.EventFilter{})), "only the winner's event commits")
}
