// Package storetest is the contract every store engine obeys, written once
// against the interfaces of package store. An engine's tests call [Run] with a
// function that opens a fresh, empty store; the same cases then run against
// SQLite always and PostgreSQL when it is reachable. The package also offers
// fixture builders (NewJob, NewTask, …) for any test that needs stored data.
//
// The cases use only store's interfaces, never SQL, and each gets its own
// store, so they run in parallel and never see each other's rows.
package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/event"
	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/node"
	"github.com/drover-dev/drover/internal/store"
	"github.com/drover-dev/drover/internal/task"
)

// OpenFunc opens a fresh, empty store for one test. It fails t if it
// cannot. Run closes the store when the test ends, and checks that Close
// succeeds; anything else the store needs cleaned up (a temp dir, a schema)
// the function registers with t.Cleanup itself.
type OpenFunc func(t *testing.T) store.Store

// Run runs the contract suite against the engine open opens. Every case
// calls open once, so open must give each call a store of its own.
func Run(t *testing.T, open OpenFunc) {
	t.Helper()
	groups := []struct {
		name  string
		cases []testCase
	}{
		{"Job", jobCases()},
		{"Task", taskCases()},
		{"Node", nodeCases()},
		{"Event", eventCases()},
		{"Tx", txCases()},
		{"Auth", authCases()},
		{"Param", paramCases()},
		{"Template", templateCases()},
		{"Pool", poolCases()},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			for _, c := range g.cases {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					c.test(t, setup(t, open))
				})
			}
		})
	}
}

// testCase is one named contract case.
type testCase struct {
	name string
	test func(t *testing.T, s store.Store)
}

// setup opens the case's store and closes it when the case ends.
func setup(t *testing.T, open OpenFunc) store.Store {
	t.Helper()
	s := open(t)
	require.NotNil(t, s, "open returned a nil store")
	t.Cleanup(func() { require.NoError(t, s.Close(), "close store") })
	return s
}

// update runs fn in one write transaction and fails t on any error.
func update(t *testing.T, s store.Store, fn func(ctx context.Context, tx store.Tx) error) {
	t.Helper()
	ctx := t.Context()
	require.NoError(t, s.Update(ctx, func(tx store.Tx) error { return fn(ctx, tx) }))
}

// view runs fn in View and fails t on any error.
func view(t *testing.T, s store.Store, fn func(ctx context.Context, r store.Reader) error) {
	t.Helper()
	ctx := t.Context()
	require.NoError(t, s.View(ctx, func(r store.Reader) error { return fn(ctx, r) }))
}

// insertTasks stores ts in one transaction.
func insertTasks(t *testing.T, s store.Store, ts ...task.Task) {
	t.Helper()
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.InsertTasks(ctx, ts...) })
}

// insertEvents stores es in one transaction.
func insertEvents(t *testing.T, s store.Store, es ...event.Event) {
	t.Helper()
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.InsertEvents(ctx, es...) })
}

// getTask reads one task through View, failing t if it is missing.
func getTask(t *testing.T, s store.Store, id string) task.Task {
	t.Helper()
	var got task.Task
	view(t, s, func(ctx context.Context, r store.Reader) (err error) {
		got, err = r.GetTask(ctx, id)
		return err
	})
	return got
}

// listEvents reads events through View.
func listEvents(t *testing.T, s store.Store, f store.EventFilter) []event.Event {
	t.Helper()
	var got []event.Event
	view(t, s, func(ctx context.Context, r store.Reader) (err error) {
		got, err = r.ListEvents(ctx, f)
		return err
	})
	return got
}

// requireNotFound fails t unless reading the object with get gives
// store.ErrNotFound.
func requireNotFound(t *testing.T, s store.Store, what string, get func(ctx context.Context, r store.Reader) error) {
	t.Helper()
	err := s.View(t.Context(), func(r store.Reader) error { return get(t.Context(), r) })
	require.ErrorIs(t, err, store.ErrNotFound, what)
}

// requireEqual fails t with a cmp diff when got differs from want. Times
// compare as instants (time.Time.Equal); requireUTC checks their zone.
func requireEqual(t *testing.T, want, got any, msgAndArgs ...any) {
	t.Helper()
	if diff := cmp.Diff(want, got); diff != "" {
		require.Fail(t, "mismatch (-want +got):\n"+diff, msgAndArgs...)
	}
}

// requireUTC fails t if any non-nil time of ts is not in UTC: the store
// hands times back in UTC whatever zone they were written in.
func requireUTC(t *testing.T, what string, ts ...*time.Time) {
	t.Helper()
	for i, tm := range ts {
		if tm != nil {
			require.Equal(t, time.UTC, tm.Location(), "%s: time %d (%s) not in UTC", what, i, tm)
		}
	}
}

// taskIDs returns the IDs of ts in order.
func taskIDs(ts []task.Task) []string {
	ids := make([]string, 0, len(ts))
	for _, tk := range ts {
		ids = append(ids, tk.ID)
	}
	return ids
}

// jobKeys returns the keys of js in order.
func jobKeys(js []job.Job) []string {
	keys := make([]string, 0, len(js))
	for _, j := range js {
		keys = append(keys, j.Key.String())
	}
	return keys
}

// nodeNames returns the names of ns in order.
func nodeNames(ns []node.Node) []string {
	names := make([]string, 0, len(ns))
	for _, n := range ns {
		names = append(names, n.Name)
	}
	return names
}

// eventMessages returns the messages of es in order; the cases use the
// message to name an event, since IDs are the store's to choose.
func eventMessages(es []event.Event) []string {
	msgs := make([]string, 0, len(es))
	for _, e := range es {
		msgs = append(msgs, e.Message)
	}
	return msgs
}
