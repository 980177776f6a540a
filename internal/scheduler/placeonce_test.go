package scheduler_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/event"
	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/node"
	"github.com/drover-dev/drover/internal/scheduler"
	"github.com/drover-dev/drover/internal/store"
	"github.com/drover-dev/drover/internal/task"
)

func TestPlaceOnceAssignsToRegisteredNode(t *testing.T) {
	t.Parallel()
	b := setup(t)
	orders := b.sync(t, "n1") // an empty report registers the node
	require.True(t, orders.Empty())
	spec := newSpec(func(s *job.Spec) { s.Instances = 3 })
	b.submit(t, spec, "")
	wake := b.sched.NodeChanged("n1")

	at := b.clock.Advance(time.Second)
	next := b.placeOnce(t)

	require.True(t, next.IsZero(), "no retry waits, so no round is due")
	require.True(t, closed(wake), "placing wakes the node's held sync")
	for _, id := range []string{"task0001", "task0002", "task0003"} {
		tk := b.task(t, id)
		require.Equal(t, task.Assigned, tk.State)
		require.Equal(t, "n1", tk.Node)
		require.Equal(t, event.Placed, tk.Reason)
		require.True(t, tk.UpdatedAt.Equal(at))
		require.Equal(t, []string{"→PENDING submitted", "PENDING→ASSIGNED placed"}, b.history(t, id))
	}

	// The node's next sync hands out the assignments, with the spec.
	orders = b.sync(t, "n1")
	require.Len(t, orders.Assign, 3)
	for i, a := range orders.Assign {
		require.Equal(t, i, a.Task.Instance)
		require.Equal(t, task.Assigned, a.Task.State)
		require.Empty(t, cmp.Diff(spec, a.Spec))
	}
	require.Empty(t, orders.Kill)
	require.Empty(t, orders.Ack)
}

func TestPlaceOnceRecordsWhyATaskWaitsOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.submit(t, newSpec(), "")

	b.placeOnce(t)
	b.placeOnce(t) // the same reason again is not news

	require.Equal(t, task.Pending, b.task(t, "task0001").State)
	es := b.events(t, store.EventFilter{TaskID: "task0001"})
	require.Len(t, es, 2)
	require.Equal(t, event.Unplaceable, es[1].Reason)
	require.Equal(t, "no ready node", es[1].Message)

	// A new reason is news.
	_, err := b.sched.Sync(b.ctx, scheduler.Report{Node: newNode("mac", func(n *node.Node) { n.Attributes = nil })})
	require.NoError(t, err)
	b.placeOnce(t)
	b.placeOnce(t)
	es = b.events(t, store.EventFilter{TaskID: "task0001"})
	require.Len(t, es, 3)
	require.Equal(t, "constraint not met on mac (os = linux)", es[2].Message)

	// A node that meets the constraint ends the wait.
	b.sync(t, "linux-1")
	b.placeOnce(t)
	require.Equal(t, []string{
		"→PENDING submitted", "→ unplaceable", "→ unplaceable", "PENDING→ASSIGNED placed",
	}, b.history(t, "task0001"))
}

func TestPlaceOnceUnplaceableReasons(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := b.sched.Sync(b.ctx, scheduler.Report{Node: newNode("mac", func(n *node.Node) { n.Attributes = map[string]string{"os": "darwin"} })})
	require.NoError(t, err)
	b.submit(t, newSpec(), "")
	b.submit(t, newSpec(func(s *job.Spec) {
		s.Key.Name = "huge"
		s.Constraints = nil
		s.Task.Resources.CPU = 64000
	}), "")

	b.placeOnce(t)

	for id, want := range map[string]string{
		"task0001": "constraint not met on mac (os = linux)",
		"task0002": "not enough free resources (cpu 64000, memory 67108864) on mac",
	} {
		require.Equal(t, task.Pending, b.task(t, id).State)
		es := b.events(t, store.EventFilter{TaskID: id})
		require.Equal(t, event.Unplaceable, es[len(es)-1].Reason)
		require.Equal(t, want, es[len(es)-1].Message)
	}
}

func TestPlaceOnceSkipsStaleNodes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.sync(t, "n1")
	b.clock.Advance(scheduler.DefaultNodeGrace + time.Second)
	b.submit(t, newSpec(), "")

	b.placeOnce(t)
	require.Equal(t, task.Pending, b.task(t, "task0001").State, "a node that stopped syncing gets no work")

	b.sync(t, "n1")
	b.placeOnce(t)
	require.Equal(t, task.Assigned, b.task(t, "task0001").State)
}

func TestPlaceOnceCountsActiveTasks(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := b.sched.Sync(b.ctx, scheduler.Report{Node: newNode("n1", func(n *node.Node) { n.Capacity.CPU = 250 })})
	require.NoError(t, err)
	b.submit(t, newSpec(func(s *job.Spec) { s.Instances = 3 }), "")

	b.placeOnce(t)
	require.Equal(t, task.Assigned, b.task(t, "task0001").State)
	require.Equal(t, task.Assigned, b.task(t, "task0002").State)
	require.Equal(t, task.Pending, b.task(t, "task0003").State)

	// A later round sees the tasks already on the node.
	b.placeOnce(t)
	require.Equal(t, task.Pending, b.task(t, "task0003").State)

	// The node frees a slot; the next round fills it.
	b.sync(t, "n1", exited("task0001", 0), status("task0002", task.Starting))
	b.placeOnce(t)
	require.Equal(t, task.Assigned, b.task(t, "task0003").State)
}

// TestPlaceOnceOrder submits jobs one second apart to a node with room for
// one task, and checks which one gets it: the highest priority, then the
// oldest. Job names are chosen so that key order would pick the other one.
func TestPlaceOnceOrder(t *testing.T) {
	t.Parallel()
	type sub struct {
		name     string
		priority int
	}
	tests := []struct {
		name   string
		subs   []sub
		placed string
	}{
		{"higher priority first", []sub{{"aa-low", 1}, {"zz-high", 100}}, "zz-high"},
		{"first come first served within a priority", []sub{{"zz-first", 5}, {"aa-second", 5}}, "zz-first"},
		{"priority beats age", []sub{{"aa-old", 5}, {"mm-mid", 5}, {"zz-new", 6}}, "zz-new"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			_, err := b.sched.Sync(b.ctx, scheduler.Report{Node: newNode("n1", func(n *node.Node) { n.Capacity.CPU = 100 })})
			require.NoError(t, err)
			ids := map[string]string{}
			for _, s := range tt.subs {
				b.clock.Advance(time.Second)
				res := b.submit(t, newSpec(func(sp *job.Spec) { sp.Key.Name, sp.Priority = s.name, s.priority }), "")
				ids[s.name] = res.Tasks[0]
			}

			b.placeOnce(t)

			for name, id := range ids {
				want := task.Pending
				if name == tt.placed {
					want = task.Assigned
				}
				require.Equal(t, want, b.task(t, id).State, name)
			}
		})
	}
}

func TestPlaceOnceBackfill(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := b.sched.Sync(b.ctx, scheduler.Report{Node: newNode("n1", func(n *node.Node) { n.Capacity.CPU = 1000 })})
	require.NoError(t, err)
	big := b.submit(t, newSpec(func(s *job.Spec) { s.Key.Name, s.Priority, s.Task.Resources.CPU = "big", 100, 2000 }), "")
	b.clock.Advance(time.Second)
	small := b.submit(t, newSpec(func(s *job.Spec) { s.Key.Name, s.Priority, s.Task.Resources.CPU = "small", 1, 100 }), "")

	b.placeOnce(t)

	require.Equal(t, task.Pending, b.task(t, big.Tasks[0]).State)
	require.Equal(t, task.Assigned, b.task(t, small.Tasks[0]).State)
}

func TestPlaceOnceRespectsConstraints(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := b.sched.Sync(b.ctx, scheduler.Report{Node: newNode("mac", func(n *node.Node) {
		n.Attributes = map[string]string{"os": "darwin"}
		n.Capacity.CPU = 64000
	})})
	require.NoError(t, err)
	b.sync(t, "linux-1")
	b.submit(t, newSpec(func(s *job.Spec) { s.Instances = 2 }), "")

	b.placeOnce(t)

	require.Equal(t, "linux-1", b.task(t, "task0001").Node)
	require.Equal(t, "linux-1", b.task(t, "task0002").Node)
}

// spyStore is the real store with a hook run after each View returns: it
// lets a test change the store between PlaceOnce's snapshot and its write.
type spyStore struct {
	store.Store
	afterView func()
}

func (s *spyStore) View(ctx context.Context, fn func(store.Reader) error) error {
	err := s.Store.View(ctx, fn)
	if h := s.afterView; h != nil {
		s.afterView = nil // once
		h()
	}
	return err
}

// TestPlaceOnceTaskKilledSinceSnapshot kills an instance after PlaceOnce
// read its snapshot and before it writes: the killed task stays KILLED, and
// the rest of the round is placed.
func TestPlaceOnceTaskKilledSinceSnapshot(t *testing.T) {
	t.Parallel()
	b := setup(t)
	spy := &spyStore{Store: b.store}
	s := newScheduler(t, spy, b.clock, "task")
	_, err := s.Sync(b.ctx, scheduler.Report{Node: newNode("n1")})
	require.NoError(t, err)
	_, err = s.Submit(b.ctx, newSpec(func(sp *job.Spec) { sp.Instances = 2 }), "")
	require.NoError(t, err)
	spy.afterView = func() {
		_, err := s.Kill(b.ctx, hello, []int{0})
		require.NoError(t, err)
	}

	_, err = s.PlaceOnce(b.ctx)

	require.NoError(t, err)
	require.Nil(t, spy.afterView, "the kill ran between snapshot and write")
	require.Equal(t, task.Killed, b.task(t, "task0001").State)
	require.Equal(t, task.Assigned, b.task(t, "task0002").State)
	require.Equal(t, []string{"→PENDING submitted", "PENDING→KILLED kill_requested"}, b.history(t, "task0001"))
}
