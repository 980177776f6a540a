package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/event"
	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/node"
	"github.com/drover-dev/drover/internal/store"
	"github.com/drover-dev/drover/internal/task"
)

// txCases cover Store itself: what Update commits or rolls back, what View
// sees, and who owns the values passed in and out.
func txCases() []testCase {
	return []testCase{
		{"ErrorRollsBackEveryWrite", testUpdateErrorRollsBack},
		{"TransitionCommitsWithItsEvent", testTransitionWithEvent},
		{"PanicRollsBack", testUpdatePanicRollsBack},
		{"CanceledContext", testCanceledContext},
		{"ViewIsOneSnapshot", testViewSnapshot},
		{"ValuesBelongToCaller", testValuesBelongToCaller},
	}
}

var errBoom = errors.New("boom")

// requireNothingStored fails t if any of the objects [writeAll] writes, or
// any event, is in s.
func requireNothingStored(t *testing.T, s store.Store, j job.Job, v job.Version, tk task.Task, n node.Node) {
	t.Helper()
	requireNotFound(t, s, "job", func(ctx context.Context, r store.Reader) error {
		_, err := r.GetJob(ctx, j.Key)
		return err
	})
	requireNotFound(t, s, "job version", func(ctx context.Context, r store.Reader) error {
		_, err := r.GetJobVersion(ctx, v.Key, v.Version)
		return err
	})
	requireNotFound(t, s, "idempotency key", func(ctx context.Context, r store.Reader) error {
		_, err := r.FindIdempotencyKey(ctx, v.IdempotencyKey)
		return err
	})
	requireNotFound(t, s, "task", func(ctx context.Context, r store.Reader) error {
		_, err := r.GetTask(ctx, tk.ID)
		return err
	})
	requireNotFound(t, s, "node", func(ctx context.Context, r store.Reader) error {
		_, err := r.GetNode(ctx, n.Name)
		return err
	})
	require.Empty(t, listEvents(t, s, store.EventFilter{}), "events")
	var last int64
	view(t, s, func(ctx context.Context, r store.Reader) (err error) {
		last, err = r.LastEventID(ctx, "")
		return err
	})
	require.Zero(t, last, "last event ID")
}

// writeAll writes one object of every kind in tx.
func writeAll(ctx context.Context, tx store.Tx, j job.Job, v job.Version, tk task.Task, n node.Node) error {
	if err := tx.PutJob(ctx, j); err != nil {
		return err
	}
	if err := tx.InsertJobVersion(ctx, v); err != nil {
		return err
	}
	if err := tx.InsertTasks(ctx, tk); err != nil {
		return err
	}
	if err := tx.PutNode(ctx, n); err != nil {
		return err
	}
	return tx.InsertEvents(ctx, NewEvent(func(e *event.Event) { e.TaskID = tk.ID }))
}

func testUpdateErrorRollsBack(t *testing.T, s store.Store) {
	j, v, tk, n := NewJob(), NewJobVersion(func(v *job.Version) { v.IdempotencyKey = "idem" }), NewTask(), NewNode()
	var seen struct {
		task   task.Task
		events int
	}
	err := s.Update(t.Context(), func(tx store.Tx) error {
		ctx := t.Context()
		if err := writeAll(ctx, tx, j, v, tk, n); err != nil {
			return err
		}
		// The transaction reads its own writes before it rolls back.
		var err error
		if seen.task, err = tx.GetTask(ctx, tk.ID); err != nil {
			return err
		}
		es, err := tx.ListEvents(ctx, store.EventFilter{})
		if err != nil {
			return err
		}
		seen.events = len(es)
		return errBoom
	})
	require.ErrorIs(t, err, errBoom, "Update returns fn's error")
	requireEqual(t, tk, seen.task, "the task inside the transaction")
	require.Equal(t, 1, seen.events, "the event inside the transaction")
	requireNothingStored(t, s, j, v, tk, n)

	// The same writes commit once fn succeeds: the rollback left nothing
	// behind that conflicts (such as a taken idempotency key).
	update(t, s, func(ctx context.Context, tx store.Tx) error { return writeAll(ctx, tx, j, v, tk, n) })
	requireEqual(t, tk, getTask(t, s, tk.ID))
}

func testTransitionWithEvent(t *testing.T, s store.Store) {
	pending := NewTask()
	insertTasks(t, s, pending)
	withNode := pending
	withNode.Node = "node-1"
	ch, err := task.Move(withNode, task.Assigned, T0.Add(time.Second), event.Placed, "placed")
	require.NoError(t, err)

	// The event is written first; the compare-and-set then fails, and fn
	// returns its error. Neither lands.
	err = s.Update(t.Context(), func(tx store.Tx) error {
		ctx := t.Context()
		if err := tx.InsertEvents(ctx, ch.Event); err != nil {
			return err
		}
		return tx.UpdateTask(ctx, ch.Task, task.Running)
	})
	require.ErrorIs(t, err, store.ErrConflict)
	requireEqual(t, pending, getTask(t, s, pending.ID))
	require.Empty(t, listEvents(t, s, store.EventFilter{}), "the event of a refused transition")

	// The right expectation commits both, visible together.
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := tx.UpdateTask(ctx, ch.Task, ch.Expect); err != nil {
			return err
		}
		return tx.InsertEvents(ctx, ch.Event)
	})
	var got task.Task
	var es []event.Event
	view(t, s, func(ctx context.Context, r store.Reader) (err error) {
		if got, err = r.GetTask(ctx, pending.ID); err != nil {
			return err
		}
		es, err = r.ListEvents(ctx, store.EventFilter{TaskID: pending.ID})
		return err
	})
	requireEqual(t, ch.Task, got)
	require.Len(t, es, 1)
	want := ch.Event
	want.ID = es[0].ID
	requireEqual(t, want, es[0])
}

func testUpdatePanicRollsBack(t *testing.T, s store.Store) {
	j := NewJob()
	func() {
		defer func() {
			require.Equal(t, errBoom, recover(), "Update lets fn's panic through")
		}()
		_ = s.Update(t.Context(), func(tx store.Tx) error {
			if err := tx.PutJob(t.Context(), j); err != nil {
				return err
			}
			panic(errBoom)
		})
	}()
	requireNotFound(t, s, "job written before the panic", func(ctx context.Context, r store.Reader) error {
		_, err := r.GetJob(ctx, j.Key)
		return err
	})

	// The store is still writable: the panicking transaction did not keep
	// the writer. The deadline turns a hang into a failure.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	require.NoError(t, s.Update(ctx, func(tx store.Tx) error { return tx.PutJob(ctx, j) }))
	requireEqual(t, j, getJob(t, s, j.Key))
}

func testCanceledContext(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	called := false
	err := s.Update(ctx, func(tx store.Tx) error {
		called = true
		return tx.PutJob(ctx, NewJob())
	})
	require.ErrorIs(t, err, context.Canceled, "Update")
	requireNotFound(t, s, "job of a canceled Update", func(ctx context.Context, r store.Reader) error {
		_, err := r.GetJob(ctx, DefaultKey)
		return err
	})

	err = s.View(ctx, func(r store.Reader) error {
		called = true
		_, err := r.ListJobs(ctx)
		return err
	})
	require.ErrorIs(t, err, context.Canceled, "View")
	require.False(t, called, "fn runs under a canceled context")
}

func testViewSnapshot(t *testing.T, s store.Store) {
	// A View sees the store as of one instant: a commit made while it runs
	// is not visible to it, so a scheduler never reads tasks and nodes from
	// two different moments.
	first := NewTask()
	insertTasks(t, s, first)
	late := NewTask()
	var before, after int
	view(t, s, func(ctx context.Context, r store.Reader) (err error) {
		if before, err = r.CountTasks(ctx, store.TaskFilter{}); err != nil {
			return err
		}
		if err := s.Update(ctx, func(tx store.Tx) error { return tx.InsertTasks(ctx, late) }); err != nil {
			return err
		}
		after, err = r.CountTasks(ctx, store.TaskFilter{})
		return err
	})
	require.Equal(t, 1, before)
	require.Equal(t, 1, after, "a commit made during a View is not visible to it")
	require.Equal(t, late.ID, getTask(t, s, late.ID).ID, "the commit is visible to a later View")
}

func testValuesBelongToCaller(t *testing.T, s store.Store) {
	n := NewNode()
	v := NewJobVersion()
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := tx.PutNode(ctx, n); err != nil {
			return err
		}
		return tx.InsertJobVersion(ctx, v)
	})
	wantNode, wantVersion := NewNode(func(x *node.Node) { x.Name = n.Name }), NewJobVersion()

	// Changing what was written does not change what is stored.
	n.Attributes["os"] = "plan9"
	v.Spec.Task.Env["DB_HOST"] = "changed"
	v.Spec.Task.Command[0] = "/bin/false"
	v.Spec.Constraints[0].Value = "changed"
	requireEqual(t, wantNode, getNode(t, s, n.Name), "after changing the written node")
	requireEqual(t, wantVersion, getJobVersion(t, s, v.Key, v.Version), "after changing the written version")

	// Nor does changing what was read.
	gotNode, gotVersion := getNode(t, s, n.Name), getJobVersion(t, s, v.Key, v.Version)
	gotNode.Attributes["os"] = "plan9"
	gotVersion.Spec.Task.Env["DB_HOST"] = "changed"
	gotVersion.Spec.Task.Command[0] = "/bin/false"
	requireEqual(t, wantNode, getNode(t, s, n.Name), "after changing a read node")
	requireEqual(t, wantVersion, getJobVersion(t, s, v.Key, v.Version), "after changing a read version")
}
