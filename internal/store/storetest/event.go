package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/event"
	"github.com/drover-dev/drover/internal/store"
	"github.com/drover-dev/drover/internal/task"
)

// eventCases cover EventReader and EventWriter.
func eventCases() []testCase {
	return []testCase{
		{"InsertAssignsIncreasingIDs", testInsertEvents},
		{"ListEventsFilters", testListEventsFilters},
		{"ListEventsPages", testListEventsPages},
		{"LastEventID", testLastEventID},
	}
}

func testInsertEvents(t *testing.T, s store.Store) {
	require.Empty(t, listEvents(t, s, store.EventFilter{}), "events of an empty store")

	in := []event.Event{
		NewEvent(func(e *event.Event) { e.Message = "e1" }),
		NewEvent(func(e *event.Event) {
			e.Message = "e2"
			e.At = T0.Add(time.Nanosecond).In(time.FixedZone("CEST", 2*60*60))
			e.TaskID = "task-1"
			e.Node = "node-1"
			e.From, e.To, e.Reason = string(task.Running), string(task.Failed), event.Exited
		}),
		// An event need not be a transition, nor belong to a job.
		NewEvent(func(e *event.Event) {
			e.Message = "e3: node registered «ok»"
			e.Job, e.Node = "", "node-2"
			e.From, e.To, e.Reason = "", "", event.NodeRegistered
		}),
	}
	insertEvents(t, s, in[:2]...)
	insertEvents(t, s, in[2])
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.InsertEvents(ctx) })

	got := listEvents(t, s, store.EventFilter{})
	require.Len(t, got, len(in))
	var last int64
	for i, e := range got {
		require.Greater(t, e.ID, last, "event %d: IDs increase in insertion order", i)
		last = e.ID
		want := in[i]
		want.ID = e.ID
		requireEqual(t, want, e, "event %d", i)
		requireUTC(t, want.Message, &e.At)
	}
}

// seedEvents stores events of two jobs, two tasks and two nodes in two
// transactions, and returns them as stored, oldest first. Each event's
// message names it.
func seedEvents(t *testing.T, s store.Store) []event.Event {
	t.Helper()
	mk := func(msg, jobKey, taskID, node string) event.Event {
		return NewEvent(func(e *event.Event) { e.Message, e.Job, e.TaskID, e.Node = msg, jobKey, taskID, node })
	}
	a, b := DefaultKey.String(), "web/prod/other"
	insertEvents(t, s,
		mk("a-t1", a, "t1", ""),
		mk("a-t1-n1", a, "t1", "n1"),
		mk("b-t2-n2", b, "t2", "n2"),
	)
	insertEvents(t, s,
		mk("n1", "", "", "n1"),
		mk("a-t1-n2", a, "t1", "n2"),
		mk("b-t2", b, "t2", ""),
	)
	all := listEvents(t, s, store.EventFilter{})
	require.Equal(t, []string{"a-t1", "a-t1-n1", "b-t2-n2", "n1", "a-t1-n2", "b-t2"}, eventMessages(all))
	return all
}

func testListEventsFilters(t *testing.T, s store.Store) {
	all := seedEvents(t, s)
	for _, c := range []struct {
		name string
		f    store.EventFilter
		want []string
	}{
		{"job", store.EventFilter{Job: DefaultKey.String()}, []string{"a-t1", "a-t1-n1", "a-t1-n2"}},
		{"task", store.EventFilter{TaskID: "t2"}, []string{"b-t2-n2", "b-t2"}},
		{"node", store.EventFilter{Node: "n1"}, []string{"a-t1-n1", "n1"}},
		{"job and node", store.EventFilter{Job: DefaultKey.String(), Node: "n2"}, []string{"a-t1-n2"}},
		{"after", store.EventFilter{AfterID: all[2].ID}, []string{"n1", "a-t1-n2", "b-t2"}},
		{"after the last", store.EventFilter{AfterID: all[5].ID}, nil},
		{"after, job", store.EventFilter{AfterID: all[1].ID, Job: DefaultKey.String()}, []string{"a-t1-n2"}},
		{"limit", store.EventFilter{Limit: 2}, []string{"a-t1", "a-t1-n1"}},
		{"limit, task", store.EventFilter{TaskID: "t1", Limit: 2}, []string{"a-t1", "a-t1-n1"}},
		{"after, limit", store.EventFilter{AfterID: all[0].ID, Limit: 3}, []string{"a-t1-n1", "b-t2-n2", "n1"}},
		{"unknown job", store.EventFilter{Job: "web/prod/none"}, nil},
	} {
		got := listEvents(t, s, c.f)
		if c.want == nil {
			require.Empty(t, got, c.name)
			continue
		}
		requireEqual(t, c.want, eventMessages(got), c.name)
	}
}

func testListEventsPages(t *testing.T, s store.Store) {
	// A reader following the log pages with AfterID = the last ID it saw.
	all := seedEvents(t, s)
	var seen []event.Event
	var after int64
	for page := 0; ; page++ {
		require.Less(t, page, len(all)+1, "paging does not end")
		got := listEvents(t, s, store.EventFilter{AfterID: after, Limit: 4})
		if len(got) == 0 {
			break
		}
		require.LessOrEqual(t, len(got), 4)
		seen = append(seen, got...)
		after = got[len(got)-1].ID
	}
	requireEqual(t, all, seen)
}

func testLastEventID(t *testing.T, s store.Store) {
	last := func(jobKey string) int64 {
		t.Helper()
		var id int64
		view(t, s, func(ctx context.Context, r store.Reader) (err error) {
			id, err = r.LastEventID(ctx, jobKey)
			return err
		})
		return id
	}
	require.Zero(t, last(""), "empty store, any job")
	require.Zero(t, last(DefaultKey.String()), "empty store, one job")

	all := seedEvents(t, s)
	require.Equal(t, all[5].ID, last(""), "any job: the newest event")
	require.Equal(t, all[4].ID, last(DefaultKey.String()))
	require.Equal(t, all[5].ID, last("web/prod/other"))
	require.Zero(t, last("web/prod/none"), "a job with no events")
}
