package scheduler_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/event"
	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/node"
	"github.com/drover-dev/drover/internal/scheduler"
	"github.com/drover-dev/drover/internal/store"
	"github.com/drover-dev/drover/internal/store/sqlite"
	"github.com/drover-dev/drover/internal/task"
)

// t0 is where every fake clock starts.
var t0 = time.Date(2030, time.March, 4, 5, 6, 7, 0, time.UTC)

var hello = job.Key{Role: "demo", Env: "dev", Name: "hello"}

// fakeClock is a scheduler.Clock that moves only when a test says so.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

var _ scheduler.Clock = (*fakeClock)(nil)

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// Advance moves the clock by d and returns the new time.
func (c *fakeClock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// bundle is what one test works with: a scheduler over its own SQLite file,
// driven by a fake clock. Nothing runs in the background; tests call
// PlaceOnce and Sync themselves.
type bundle struct {
	ctx   context.Context
	path  string
	store *sqlite.DB
	clock *fakeClock
	sched *scheduler.Scheduler
}

func setup(t *testing.T) *bundle {
	t.Helper()
	b := &bundle{ctx: t.Context(), path: filepath.Join(t.TempDir(), "drover.db"), clock: &fakeClock{now: t0}}
	b.store = openStore(t, b.path)
	b.sched = newScheduler(t, b.store, b.clock, "task")
	return b
}

func openStore(t *testing.T, path string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(t.Context(), path)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// newScheduler returns a scheduler whose task IDs are prefix0001,
// prefix0002, …, so tests can name tasks before they exist.
func newScheduler(t *testing.T, st store.Store, clock scheduler.Clock, prefix string) *scheduler.Scheduler {
	t.Helper()
	var n atomic.Int64
	s, err := scheduler.New(scheduler.Config{
		Store: st, Clock: clock,
		NewID: func() string { return fmt.Sprintf("%s%04d", prefix, n.Add(1)) },
	})
	require.NoError(t, err)
	return s
}

// newSpec returns a valid one-instance batch spec of demo/dev/hello with two
// retries 10s apart, changed by opts.
func newSpec(opts ...func(*job.Spec)) job.Spec {
	s := job.Spec{
		Key: hello, Type: job.Batch, Instances: 1, Priority: 10,
		Task: job.TaskSpec{
			Command:   []string{"sh", "-c", "echo hello"},
			KillGrace: job.DefaultKillGrace,
			Resources: job.Resources{CPU: 100, Memory: 64 << 20},
		},
		Constraints: []job.Constraint{{Attribute: "os", Operator: job.OpEqual, Value: "linux"}},
		Retry:       job.Retry{Attempts: 2, Backoff: 10 * time.Second},
	}
	for _, o := range opts {
		o(&s)
	}
	return s
}

// newNode returns a linux node with 4 cpus and 8 GiB, changed by opts.
func newNode(name string, opts ...func(*node.Node)) node.Node {
	n := node.Node{Name: name, Address: "10.0.0.1", Attributes: map[string]string{"os": "linux"},
		Capacity: job.Resources{CPU: 4000, Memory: 8 << 30}, Version: "test"}
	for _, o := range opts {
		o(&n)
	}
	return n
}

func (b *bundle) submit(t *testing.T, spec job.Spec, idem string) scheduler.SubmitResult {
	t.Helper()
	res, err := b.sched.Submit(b.ctx, spec, idem)
	require.NoError(t, err)
	return res
}

// sync sends a report of statuses from a node built by newNode(name).
func (b *bundle) sync(t *testing.T, name string, statuses ...scheduler.Status) scheduler.Orders {
	t.Helper()
	o, err := b.sched.Sync(b.ctx, scheduler.Report{Node: newNode(name), Statuses: statuses})
	require.NoError(t, err)
	return o
}

func (b *bundle) placeOnce(t *testing.T) time.Time {
	t.Helper()
	next, err := b.sched.PlaceOnce(b.ctx)
	require.NoError(t, err)
	return next
}

func (b *bundle) task(t *testing.T, id string) task.Task {
	t.Helper()
	var tk task.Task
	require.NoError(t, b.store.View(b.ctx, func(r store.Reader) error {
		var err error
		tk, err = r.GetTask(b.ctx, id)
		return err
	}))
	return tk
}

func (b *bundle) tasks(t *testing.T, key job.Key) []task.Task {
	t.Helper()
	var ts []task.Task
	require.NoError(t, b.store.View(b.ctx, func(r store.Reader) error {
		var err error
		ts, err = r.ListTasks(b.ctx, store.TaskFilter{Job: &key})
		return err
	}))
	return ts
}

func (b *bundle) job(t *testing.T, key job.Key) job.Job {
	t.Helper()
	var j job.Job
	require.NoError(t, b.store.View(b.ctx, func(r store.Reader) error {
		var err error
		j, err = r.GetJob(b.ctx, key)
		return err
	}))
	return j
}

func (b *bundle) events(t *testing.T, f store.EventFilter) []event.Event {
	t.Helper()
	var es []event.Event
	require.NoError(t, b.store.View(b.ctx, func(r store.Reader) error {
		var err error
		es, err = r.ListEvents(b.ctx, f)
		return err
	}))
	return es
}

// history summarises a task's events as "FROM→TO reason", oldest first.
func (b *bundle) history(t *testing.T, taskID string) []string {
	t.Helper()
	var out []string
	for _, e := range b.events(t, store.EventFilter{TaskID: taskID}) {
		out = append(out, fmt.Sprintf("%s→%s %s", e.From, e.To, e.Reason))
	}
	return out
}

// allEvents counts every event of every kind, to check that a call
// changed nothing.
func (b *bundle) allEvents(t *testing.T) int {
	t.Helper()
	return len(b.events(t, store.EventFilter{}))
}

func status(id string, state task.State, opts ...func(*scheduler.Status)) scheduler.Status {
	st := scheduler.Status{TaskID: id, State: state}
	for _, o := range opts {
		o(&st)
	}
	return st
}

func running(id string) scheduler.Status { return status(id, task.Running) }

// exited is a status of a task whose process exited with code: SUCCEEDED
// for 0, FAILED otherwise, as the agent reports it.
func exited(id string, code int) scheduler.Status {
	state := task.Succeeded
	if code != 0 {
		state = task.Failed
	}
	return status(id, state, func(st *scheduler.Status) {
		st.ExitCode, st.Reason, st.Message = &code, event.Exited, fmt.Sprintf("exit code %d", code)
	})
}

// closed reports whether ch is closed, without waiting.
func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestNewNeedsStore(t *testing.T) {
	t.Parallel()
	_, err := scheduler.New(scheduler.Config{})
	require.ErrorContains(t, err, "Store")
}

func TestNewTaskID(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 100 {
		id := scheduler.NewTaskID()
		require.Regexp(t, `^[a-z2-7]{12}$`, id)
		require.False(t, seen[id], "duplicate id %s", id)
		seen[id] = true
	}
}

// TestStartStop runs the real placement loop once, with the real clock, and
// checks that Stop waits for it (goleak checks nothing is left).
func TestStartStop(t *testing.T) {
	t.Parallel()
	st := openStore(t, filepath.Join(t.TempDir(), "drover.db"))
	s, err := scheduler.New(scheduler.Config{Store: st})
	require.NoError(t, err)
	require.NoError(t, s.Stop(t.Context()), "Stop before Start does nothing")
	s.Start(t.Context())
	require.NoError(t, s.Stop(t.Context()))
}
