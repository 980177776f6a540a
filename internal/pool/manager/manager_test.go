package manager_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/event"
	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/node"
	"github.com/drover-dev/drover/internal/pool"
	"github.com/drover-dev/drover/internal/pool/manager"
	"github.com/drover-dev/drover/internal/provider"
	"github.com/drover-dev/drover/internal/scheduler"
	"github.com/drover-dev/drover/internal/store"
	"github.com/drover-dev/drover/internal/store/sqlite"
	"github.com/drover-dev/drover/internal/task"
)

// t0 is where every fake clock starts.
var t0 = time.Date(2030, time.March, 4, 5, 6, 7, 0, time.UTC)

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

// Advance moves the clock by d and returns the new time.
func (c *fakeClock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// bundle is what one test works with: a manager and a scheduler over their
// own SQLite file, a cloud, and a fake clock. Nothing runs in the
// background: tests call round, PlaceOnce and Sync themselves.
type bundle struct {
	ctx   context.Context
	store *sqlite.DB
	clock *fakeClock
	sched *scheduler.Scheduler
	cloud *cloud
	mgr   *manager.Manager
	nodes map[string]node.Node // registered, by name
}

func setup(t *testing.T) *bundle {
	t.Helper()
	b := &bundle{ctx: t.Context(), clock: &fakeClock{now: t0}, cloud: newCloud(), nodes: map[string]node.Node{}}
	db, err := sqlite.Open(b.ctx, filepath.Join(t.TempDir(), "drover.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	b.store = db
	b.sched, err = scheduler.New(scheduler.Config{Store: db, Clock: b.clock})
	require.NoError(t, err)
	b.mgr, err = manager.New(b.ctx, manager.Config{
		Store: db, Scheduler: b.sched, Clock: b.clock,
		Agent:     provider.Agent{ServerURL: "https://drover.test:7070", Binary: "/usr/local/bin/drover"},
		Providers: func(context.Context, pool.Pool) (provider.Provider, error) { return b.cloud, nil },
	})
	require.NoError(t, err)
	b.mgr.SetJoinToken("join-token")
	return b
}

// queuePool returns burst.yaml's pool: local, min 0, max 4, high water 2,
// low water 0, start_timeout 30s, idle_timeout 10s, no cooldowns; opts
// change it. (Local pools reconcile every round, so each round here
// compares the records with the cloud's list.)
func queuePool(opts ...func(*pool.Pool)) pool.Pool {
	p := pool.Pool{
		Name: "burst", Provider: pool.ProviderLocal, Capabilities: map[string]string{"burst": "true"},
		Min: 0, Max: 4, Policy: pool.Policy{Queue: &pool.QueuePolicy{HighWater: 2, LowWater: 0}},
		StartTimeout: 30 * time.Second, IdleTimeout: 10 * time.Second, MaxFailures: pool.DefaultMaxFailures,
	}
	for _, o := range opts {
		o(&p)
	}
	return p
}

// fixedPool returns a local pool "fixed" that keeps size machines.
func fixedPool(size int, opts ...func(*pool.Pool)) pool.Pool {
	p := pool.Pool{
		Name: "fixed", Provider: pool.ProviderLocal, Min: 0, Max: 5,
		Policy: pool.Policy{Fixed: &pool.FixedPolicy{Size: size}}, Desired: size,
		StartTimeout: 30 * time.Second, IdleTimeout: time.Minute, MaxFailures: pool.DefaultMaxFailures,
	}
	for _, o := range opts {
		o(&p)
	}
	return p
}

func (b *bundle) create(t *testing.T, p pool.Pool) {
	t.Helper()
	_, err := b.mgr.Create(b.ctx, p)
	require.NoError(t, err)
}

// round runs one manager round.
func (b *bundle) round(t *testing.T) {
	t.Helper()
	require.NoError(t, b.mgr.Once(b.ctx))
}

func (b *bundle) pool(t *testing.T, name string) pool.Pool {
	t.Helper()
	p, _, err := b.mgr.Get(b.ctx, name)
	require.NoError(t, err)
	return p
}

// machines returns every machine record of the pool, ended ones too,
// oldest launch first.
func (b *bundle) machines(t *testing.T, name string) []pool.Machine {
	t.Helper()
	var out []pool.Machine
	require.NoError(t, b.store.View(b.ctx, func(r store.Reader) error {
		var err error
		out, err = r.ListMachines(b.ctx, name, false)
		return err
	}))
	return out
}

// machine returns one machine record by ID.
func (b *bundle) machine(t *testing.T, id string) pool.Machine {
	t.Helper()
	var out pool.Machine
	require.NoError(t, b.store.View(b.ctx, func(r store.Reader) error {
		var err error
		out, err = r.GetMachine(b.ctx, id)
		return err
	}))
	return out
}

// states counts the pool's machine records by state.
func (b *bundle) states(t *testing.T, name string) map[pool.MachineState]int {
	t.Helper()
	out := map[pool.MachineState]int{}
	for _, m := range b.machines(t, name) {
		out[m.State]++
	}
	return out
}

// withState returns the pool's machine records in state s.
func (b *bundle) withState(t *testing.T, name string, s pool.MachineState) []pool.Machine {
	t.Helper()
	var out []pool.Machine
	for _, m := range b.machines(t, name) {
		if m.State == s {
			out = append(out, m)
		}
	}
	return out
}

// events returns the messages of the events of one reason, oldest first.
func (b *bundle) events(t *testing.T, reason event.Reason) []string {
	t.Helper()
	var es []event.Event
	require.NoError(t, b.store.View(b.ctx, func(r store.Reader) error {
		var err error
		es, err = r.ListEvents(b.ctx, store.EventFilter{Reason: string(reason)})
		return err
	}))
	out := make([]string, 0, len(es))
	for _, e := range es {
		out = append(out, e.Message)
	}
	return out
}

// register syncs as the node of every machine that is starting, the way
// its agent would: with the name the provider was asked for and the
// capabilities of the launch request. Each node takes one task at a time.
func (b *bundle) register(t *testing.T) []string {
	t.Helper()
	var names []string
	for _, req := range b.cloud.requests() {
		if !slices.ContainsFunc(b.machines(t, req.Pool), func(m pool.Machine) bool {
			return m.ID == req.Intent && m.State == pool.Starting
		}) {
			continue
		}
		n := node.Node{Name: req.Node, Address: "10.0.0.1", Attributes: req.Agent.Capabilities,
			Capacity: job.Resources{CPU: 1000, Memory: 1 << 30}, Version: "test"}
		b.nodes[n.Name] = n
		b.sync(t, n.Name)
		names = append(names, n.Name)
	}
	return names
}

// sync reports statuses from a registered node and returns its orders.
func (b *bundle) sync(t *testing.T, name string, statuses ...scheduler.Status) scheduler.Orders {
	t.Helper()
	n, ok := b.nodes[name]
	require.True(t, ok, "node %s never registered", name)
	o, err := b.sched.Sync(b.ctx, scheduler.Report{Node: n, Statuses: statuses})
	require.NoError(t, err)
	return o
}

// nodeNames returns the names of the nodes on record.
func (b *bundle) nodeNames(t *testing.T) []string {
	t.Helper()
	var out []string
	require.NoError(t, b.store.View(b.ctx, func(r store.Reader) error {
		ns, err := r.ListNodes(b.ctx)
		for _, n := range ns {
			out = append(out, n.Name)
		}
		return err
	}))
	return out
}

func (b *bundle) placeOnce(t *testing.T) {
	t.Helper()
	_, err := b.sched.PlaceOnce(b.ctx)
	require.NoError(t, err)
}

func (b *bundle) submit(t *testing.T, spec job.Spec) scheduler.SubmitResult {
	t.Helper()
	res, err := b.sched.Submit(b.ctx, spec, "")
	require.NoError(t, err)
	return res
}

// tasks returns the tasks in any of states.
func (b *bundle) tasks(t *testing.T, states ...task.State) []task.Task {
	t.Helper()
	var out []task.Task
	require.NoError(t, b.store.View(b.ctx, func(r store.Reader) error {
		var err error
		out, err = r.ListTasks(b.ctx, store.TaskFilter{States: states})
		return err
	}))
	return out
}

// start places what fits and reports every assigned task RUNNING, as
// the agents would; it returns the IDs of the tasks now running by node.
func (b *bundle) start(t *testing.T) map[string][]string {
	t.Helper()
	b.placeOnce(t)
	byNode := map[string][]string{}
	for _, tk := range b.tasks(t, task.Assigned) {
		byNode[tk.Node] = append(byNode[tk.Node], tk.ID)
	}
	for name, ids := range byNode {
		var sts []scheduler.Status
		for _, id := range ids {
			sts = append(sts, scheduler.Status{TaskID: id, State: task.Running})
		}
		b.sync(t, name, sts...)
	}
	return byNode
}

// finish reports the running tasks of node as exited with code 0.
func (b *bundle) finish(t *testing.T, name string) {
	t.Helper()
	var sts []scheduler.Status
	for _, tk := range b.tasks(t, task.Running) {
		if tk.Node == name {
			code := 0
			sts = append(sts, scheduler.Status{TaskID: tk.ID, State: task.Succeeded, ExitCode: &code, Reason: event.Exited})
		}
	}
	require.NotEmpty(t, sts, "node %s runs nothing", name)
	b.sync(t, name, sts...)
}

// batch returns a batch job of n instances of data/prod/NAME, each
// needing a whole node of register's size, changed by opts.
func batch(name string, n int, opts ...func(*job.Spec)) job.Spec {
	s := job.Spec{
		Key: job.Key{Role: "data", Env: "prod", Name: name}, Type: job.Batch, Instances: n, Priority: 10,
		Task: job.TaskSpec{
			Command: []string{"sh", "-c", "sleep 5"}, KillGrace: job.DefaultKillGrace,
			Resources: job.Resources{CPU: 1000, Memory: 256 << 20},
		},
	}
	for _, o := range opts {
		o(&s)
	}
	return s
}

func inPool(name string) func(*job.Spec) { return func(s *job.Spec) { s.Pool = name } }

// TestQueuePoolScalesFromZeroAndBack walks burst.yaml through a day: no
// machine while nothing waits; ten tasks launch up to max and no more
// while the launches are in flight; the machines register and run the
// work; scale-down takes only idle machines, never one with a running
// task, and after the last task the pool is back at zero.
func TestQueuePoolScalesFromZeroAndBack(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.create(t, queuePool())

	b.round(t)
	require.Empty(t, b.cloud.requests(), "nothing pending: no machine")
	require.Contains(t, b.pool(t, "burst").Status.LastDecision, "0 tasks pending")

	b.submit(t, batch("etl", 10, inPool("burst")))
	b.clock.Advance(time.Second)
	b.round(t)
	reqs := b.cloud.requests()
	require.Len(t, reqs, 4, "10 pending, high water 2: wants 8, clamped to max 4")
	p := b.pool(t, "burst")
	require.Equal(t, 4, p.Status.Desired)
	require.Contains(t, p.Status.LastDecision, "launching 4")
	require.Equal(t, map[pool.MachineState]int{pool.Starting: 4}, b.states(t, "burst"))
	require.Len(t, b.events(t, event.MachineLaunched), 4)
	for _, req := range reqs {
		m := b.machine(t, req.Intent)
		require.Equal(t, "burst", req.Pool)
		require.Equal(t, b.mgr.Cluster(), req.Cluster)
		require.Equal(t, m.Node, req.Node, "the agent registers as the node on record")
		require.NotEmpty(t, m.ProviderID, "the record holds the provider's ID")
		require.Equal(t, map[string]string{"burst": "true", "pool": "burst"}, req.Agent.Capabilities)
		require.Equal(t, "join-token", req.Agent.Token)
		require.Equal(t, "https://drover.test:7070", req.Agent.ServerURL)
	}

	// In-flight launches count as capacity: a second round before any
	// registers launches nothing more.
	b.clock.Advance(time.Second)
	b.round(t)
	require.Len(t, b.cloud.requests(), 4, "no overshoot while launches are in flight")

	require.Len(t, b.register(t), 4)
	b.clock.Advance(time.Second)
	b.round(t)
	require.Equal(t, map[pool.MachineState]int{pool.Ready: 4}, b.states(t, "burst"))
	require.Len(t, b.events(t, event.MachineRegistered), 4)

	// Two waves of four: the queue drains, nothing scales.
	for range 2 {
		running := b.start(t)
		require.Len(t, running, 4, "one task on each machine")
		b.clock.Advance(time.Second)
		b.round(t)
		for name := range running {
			b.finish(t, name)
		}
	}
	// The last two tasks run on two of the machines; the other two go
	// idle. Scale-down waits idle_timeout, then drains only the idle ones.
	busy := b.start(t)
	require.Len(t, busy, 2)
	b.clock.Advance(time.Second)
	b.round(t)
	require.Equal(t, map[pool.MachineState]int{pool.Ready: 4}, b.states(t, "burst"), "idle for less than idle_timeout")
	require.Contains(t, b.pool(t, "burst").Status.LastDecision, "no machine is idle")
	b.clock.Advance(10 * time.Second)
	b.round(t)
	draining := b.withState(t, "burst", pool.Draining)
	require.Len(t, draining, 2, "never below the busy machines")
	for _, m := range draining {
		require.NotContains(t, busy, m.Node, "a machine with a running task is not drained")
	}
	b.clock.Advance(time.Second)
	b.round(t)
	require.Len(t, b.withState(t, "burst", pool.Terminated), 2)
	require.Len(t, b.cloud.running(), 2)

	// Long after idle_timeout the busy machines still run their tasks.
	for range 5 {
		b.clock.Advance(time.Minute)
		b.round(t)
	}
	require.Len(t, b.withState(t, "burst", pool.Ready), 2)
	require.Len(t, b.tasks(t, task.Running), 2, "scale-down never kills a running task")
	for name, ids := range busy {
		o := b.sync(t, name, scheduler.Status{TaskID: ids[0], State: task.Running})
		require.Empty(t, o.Kill, "no kill order for node %s", name)
	}

	for name := range busy {
		b.finish(t, name)
	}
	require.Len(t, b.tasks(t, task.Succeeded), 10)
	b.clock.Advance(time.Second)
	b.round(t)
	b.clock.Advance(10 * time.Second)
	b.round(t)
	b.clock.Advance(time.Second)
	b.round(t)
	require.Equal(t, map[pool.MachineState]int{pool.Terminated: 4}, b.states(t, "burst"), "back to zero")
	require.Empty(t, b.cloud.running())
	require.Len(t, b.cloud.terminations(), 4)
	require.Len(t, b.events(t, event.MachineTerminated), 4)
	require.Equal(t, 0, b.pool(t, "burst").Status.Desired)
	require.Empty(t, b.nodeNames(t), "the ended machines' nodes are forgotten")
}

// TestWhichTasksScaleAPool: a queue pool scales for tasks that can only
// run on its nodes: those of jobs naming it, and those whose constraints
// all hold on its capabilities. A job that constrains nothing runs
// anywhere and leaves the pool alone.
func TestWhichTasksScaleAPool(t *testing.T) {
	t.Parallel()
	eq := func(attr, value string) job.Constraint {
		return job.Constraint{Attribute: attr, Operator: job.OpEqual, Value: value}
	}
	cases := []struct {
		name   string
		spec   func(*job.Spec)
		scales bool
	}{
		{"names the pool", inPool("burst"), true},
		{"no pool, no constraints", func(*job.Spec) {}, false},
		{"names another pool", inPool("other"), false},
		{"constraints the pool satisfies", func(s *job.Spec) {
			s.Constraints = []job.Constraint{eq("burst", "true"), eq("pool", "burst")}
		}, true},
		{"a constraint the pool does not satisfy", func(s *job.Spec) {
			s.Constraints = []job.Constraint{eq("burst", "true"), eq("gpu", "a100")}
		}, false},
		{"pinned to a node", func(s *job.Spec) {
			s.Node, s.Constraints = "somewhere", []job.Constraint{eq("burst", "true")}
		}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.create(t, queuePool(func(p *pool.Pool) { p.Policy.Queue.HighWater = 0 }))
			b.submit(t, batch("etl", 1, c.spec))
			b.round(t)
			if c.scales {
				require.Len(t, b.cloud.requests(), 1, "the pending task launches a machine")
				require.Contains(t, b.pool(t, "burst").Status.LastDecision, "1 tasks pending > high water 0")
				return
			}
			require.Empty(t, b.cloud.requests(), "the pending task is not the pool's")
			require.Contains(t, b.pool(t, "burst").Status.LastDecision, "0 tasks pending")
		})
	}
}

// TestStartTimeout: a machine whose agent never registers is terminated
// after start_timeout and replaced; after max_failures in a row the pool
// backs off and says why, launches nothing until the backoff passes, and
// a registration resets the count.
func TestStartTimeout(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.create(t, fixedPool(1, func(p *pool.Pool) { p.MaxFailures = 2 }))

	b.round(t)
	require.Len(t, b.cloud.requests(), 1)
	first := b.machines(t, "fixed")[0]

	b.clock.Advance(30 * time.Second)
	b.round(t)
	require.Equal(t, pool.Starting, b.machine(t, first.ID).State, "not yet past start_timeout")

	b.clock.Advance(time.Second)
	b.round(t)
	got := b.machine(t, first.ID)
	require.Equal(t, pool.Failed, got.State)
	require.Contains(t, got.Reason, "did not register within start_timeout 30s")
	require.Equal(t, b.clock.Now(), got.EndedAt)
	require.Equal(t, []string{first.ProviderID}, b.cloud.terminations(), "the provider was asked to terminate it")
	require.Len(t, b.events(t, event.MachineFailed), 1)
	require.Equal(t, 1, b.pool(t, "fixed").Status.Failures)
	require.Len(t, b.cloud.requests(), 2, "a replacement is launched in the same round")
	require.True(t, b.pool(t, "fixed").Status.BackoffUntil.IsZero(), "one failure is no reason to back off")

	b.clock.Advance(31 * time.Second)
	b.round(t)
	failedAt := b.clock.Now()
	p := b.pool(t, "fixed")
	require.Equal(t, 2, p.Status.Failures)
	require.Equal(t, failedAt.Add(pool.DefaultBackoff), p.Status.BackoffUntil)
	require.Contains(t, p.Status.LastDecision, "backs off until")
	backoffs := b.events(t, event.PoolBackoff)
	require.Len(t, backoffs, 1)
	require.Contains(t, backoffs[0], "2 launches in a row failed")
	require.Contains(t, backoffs[0], "start_timeout")
	require.Len(t, b.cloud.requests(), 2, "no launch while backing off")
	require.Empty(t, b.cloud.running())

	b.clock.Advance(pool.DefaultBackoff - time.Second)
	b.round(t)
	require.Len(t, b.cloud.requests(), 2, "no launch until the backoff passes")

	b.clock.Advance(time.Second)
	b.round(t)
	require.Len(t, b.cloud.requests(), 3, "the backoff passed: launch again")
	require.Len(t, b.register(t), 1)
	b.round(t)
	require.Len(t, b.withState(t, "fixed", pool.Ready), 1)
	require.Equal(t, 0, b.pool(t, "fixed").Status.Failures, "a registration resets the count")
}

// TestCapacityError: a launch the provider refuses for lack of capacity
// is a failed record and backs the pool off at once.
func TestCapacityError(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.create(t, fixedPool(1))
	b.cloud.failLaunches(fmt.Errorf("run instances: InsufficientInstanceCapacity: %w", provider.ErrCapacity))

	b.round(t)
	ms := b.machines(t, "fixed")
	require.Len(t, ms, 1)
	require.Equal(t, pool.Failed, ms[0].State)
	require.Contains(t, ms[0].Reason, "launch failed")
	require.Contains(t, ms[0].Reason, "InsufficientInstanceCapacity")
	p := b.pool(t, "fixed")
	require.Equal(t, 1, p.Status.Failures)
	require.Equal(t, t0.Add(pool.DefaultBackoff), p.Status.BackoffUntil, "capacity backs off before max_failures")
	require.Len(t, b.events(t, event.PoolBackoff), 1)
	require.Len(t, b.events(t, event.MachineFailed), 1)

	b.cloud.failLaunches(nil)
	b.clock.Advance(10 * time.Second)
	b.round(t)
	require.Len(t, b.cloud.requests(), 1, "no launch while backing off")

	b.clock.Advance(pool.DefaultBackoff)
	b.round(t)
	require.Len(t, b.cloud.requests(), 2)
	require.Len(t, b.withState(t, "fixed", pool.Starting), 1)
}

// TestReconcile: each round compares the records with the provider's own
// list, so a crash mid-launch leaks nothing and forgets nothing.
func TestReconcile(t *testing.T) {
	t.Parallel()

	// The server recorded the launch, the provider launched, and the
	// server died before it recorded the answer: the machine is adopted.
	t.Run("launching record the provider has is adopted", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.create(t, fixedPool(1))
		b.putMachine(t, pool.Machine{ID: "m-crash", Pool: "fixed", Node: "fixed-crash", State: pool.Launching, LaunchedAt: t0, UpdatedAt: t0})
		b.cloud.plant(provider.Machine{ID: "i-77", Node: "fixed-crash", Pool: "fixed", Cluster: b.mgr.Cluster(), Intent: "m-crash",
			State: provider.Running, Address: "10.9.9.9"})

		b.round(t)
		got := b.machine(t, "m-crash")
		require.Equal(t, pool.Starting, got.State)
		require.Equal(t, "i-77", got.ProviderID)
		require.Equal(t, "10.9.9.9", got.Address)
		adopted := b.events(t, event.MachineAdopted)
		require.Len(t, adopted, 1)
		require.Contains(t, adopted[0], "i-77")
		require.Empty(t, b.cloud.requests(), "the adopted machine is the pool's one: nothing launched")
		require.Empty(t, b.cloud.terminations())
	})

	// The server recorded the launch and died before it called the
	// provider: the record is dropped once start_timeout has passed.
	t.Run("launching record the provider never saw is dropped", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.create(t, fixedPool(1))
		b.putMachine(t, pool.Machine{ID: "m-lost", Pool: "fixed", Node: "fixed-lost", State: pool.Launching, LaunchedAt: t0, UpdatedAt: t0})

		b.round(t)
		require.Equal(t, pool.Launching, b.machine(t, "m-lost").State, "the call may still be under way")
		require.Empty(t, b.cloud.requests(), "a launch in flight counts as capacity")

		b.clock.Advance(31 * time.Second)
		b.round(t)
		got := b.machine(t, "m-lost")
		require.Equal(t, pool.Terminated, got.State)
		require.Contains(t, got.Reason, "never reached the provider")
		require.NotEmpty(t, b.events(t, event.MachineTerminated))
		require.Len(t, b.cloud.requests(), 1, "a replacement is launched")
	})

	t.Run("a machine on no record is terminated", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.create(t, fixedPool(0))
		b.cloud.plant(provider.Machine{ID: "i-ghost", Node: "fixed-ghost", Pool: "fixed", Cluster: b.mgr.Cluster(), Intent: "m-ghost", State: provider.Running})
		b.cloud.plant(provider.Machine{ID: "i-other", Node: "fixed-x", Pool: "fixed", Cluster: "cother", Intent: "m-x", State: provider.Running})

		b.round(t)
		require.Equal(t, []string{"i-ghost"}, b.cloud.terminations())
		require.Equal(t, []string{"i-other"}, b.cloud.running(), "another cluster's machine is not ours to stop")
		leaked := b.events(t, event.MachineLeaked)
		require.Len(t, leaked, 1)
		require.Contains(t, leaked[0], "i-ghost")
		require.Contains(t, leaked[0], "on no live record")
	})

	t.Run("a ready machine the provider no longer lists is ended", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.create(t, fixedPool(1))
		b.round(t)
		b.register(t)
		b.round(t)
		ready := b.withState(t, "fixed", pool.Ready)
		require.Len(t, ready, 1)

		b.cloud.lose(ready[0].ProviderID)
		b.clock.Advance(time.Second)
		b.round(t)
		got := b.machine(t, ready[0].ID)
		require.Equal(t, pool.Terminated, got.State, "a machine that ran is not a failed launch")
		require.Contains(t, got.Reason, "no longer lists it")
		require.Equal(t, 0, b.pool(t, "fixed").Status.Failures)
		require.Len(t, b.cloud.requests(), 2, "a fixed pool replaces it")
	})
}

// TestFixedPool: a fixed pool keeps its size, replaces a machine whose
// agent died, and pool scale shrinks it by idle machines only.
func TestFixedPool(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.create(t, fixedPool(2))
	b.round(t)
	require.Len(t, b.cloud.requests(), 2)
	b.register(t)
	b.round(t)
	require.Equal(t, map[pool.MachineState]int{pool.Ready: 2}, b.states(t, "fixed"))
	b.round(t)
	require.Len(t, b.cloud.requests(), 2, "kept at 2")

	// An agent dies: the provider lists its machine as terminated.
	dead := b.machines(t, "fixed")[0]
	b.cloud.die(dead.ProviderID)
	b.clock.Advance(time.Second)
	b.round(t)
	got := b.machine(t, dead.ID)
	require.Equal(t, pool.Terminated, got.State)
	require.Contains(t, got.Reason, "the machine is gone")
	require.Contains(t, b.cloud.terminations(), dead.ProviderID)
	require.Len(t, b.cloud.requests(), 3, "replaced")
	require.Equal(t, map[pool.MachineState]int{pool.Terminated: 1, pool.Ready: 1, pool.Starting: 1}, b.states(t, "fixed"))
	require.NotContains(t, b.nodeNames(t), dead.Node, "the dead machine's node is forgotten")
	b.register(t)
	b.round(t)
	require.Len(t, b.withState(t, "fixed", pool.Ready), 2)

	// One machine runs a task; scaling to 1 drains the other.
	b.submit(t, batch("report", 1, inPool("fixed")))
	running := b.start(t)
	require.Len(t, running, 1)
	var busy string
	for name := range running {
		busy = name
	}
	p, err := b.mgr.Scale(b.ctx, "fixed", 1)
	require.NoError(t, err)
	require.Equal(t, 1, p.Desired)
	require.Equal(t, 1, b.pool(t, "fixed").Policy.Fixed.Size)
	require.Contains(t, b.events(t, event.PoolChanged), "pool fixed scaled to 1")
	b.clock.Advance(time.Second)
	b.round(t)
	draining := b.withState(t, "fixed", pool.Draining)
	require.Len(t, draining, 1)
	require.NotEqual(t, busy, draining[0].Node, "the busy machine is not chosen while an idle one exists")
	b.clock.Advance(time.Second)
	b.round(t)
	require.Equal(t, pool.Terminated, b.machine(t, draining[0].ID).State)
	live := b.withState(t, "fixed", pool.Ready)
	require.Len(t, live, 1)
	require.Equal(t, busy, live[0].Node)
	require.Len(t, b.tasks(t, task.Running), 1, "its task keeps running")
}

// TestScaleErrors: pool scale names the field at fault.
func TestScaleErrors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.create(t, queuePool())
	b.create(t, fixedPool(1))

	_, err := b.mgr.Scale(b.ctx, "burst", 2)
	requireField(t, err, "size", "queue policy")
	_, err = b.mgr.Scale(b.ctx, "fixed", 6)
	requireField(t, err, "size", "must be between min 0 and max 5 of pool fixed, not 6")
	_, err = b.mgr.Scale(b.ctx, "fixed", -1)
	requireField(t, err, "size", "not -1")
	_, err = b.mgr.Scale(b.ctx, "nope", 1)
	require.ErrorIs(t, err, store.ErrNotFound)
	require.Equal(t, 1, b.pool(t, "fixed").Desired, "a refused scale changes nothing")
}

// requireField fails t unless err is a *job.FieldError naming field with
// a message containing msg.
func requireField(t *testing.T, err error, field, msg string) {
	t.Helper()
	var fe *job.FieldError
	require.True(t, errors.As(err, &fe), "error %v names no field", err)
	require.Equal(t, field, fe.Field)
	require.Contains(t, fe.Msg, msg)
}

// TestDestroy: destroy refuses while the pool has machines; with force it
// terminates them all, and the provider lists none after.
func TestDestroy(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.create(t, fixedPool(2))
	b.round(t)
	b.register(t)
	b.round(t)
	require.Len(t, b.cloud.running(), 2)

	err := b.mgr.Destroy(b.ctx, "fixed", false)
	require.ErrorIs(t, err, store.ErrConflict)
	require.ErrorContains(t, err, "pool fixed still has 2 machines")
	require.Len(t, b.withState(t, "fixed", pool.Ready), 2, "a refused destroy changes nothing")
	require.Len(t, b.cloud.running(), 2)

	require.NoError(t, b.mgr.Destroy(b.ctx, "fixed", true))
	require.Empty(t, b.cloud.running(), "the provider lists nothing after")
	require.Len(t, b.cloud.terminations(), 2)
	_, _, err = b.mgr.Get(b.ctx, "fixed")
	require.ErrorIs(t, err, store.ErrNotFound)
	require.Empty(t, b.machines(t, "fixed"))
	require.Empty(t, b.nodeNames(t))
	require.True(t, slices.ContainsFunc(b.events(t, event.PoolChanged), func(m string) bool {
		return strings.Contains(m, "pool fixed destroyed (2 machines terminated)")
	}))
	b.round(t)
	require.Len(t, b.cloud.requests(), 2, "a destroyed pool launches nothing")
}

// TestScaleDownCooldown: the scale-down cooldown holds a second removal
// that follows the first too soon.
func TestScaleDownCooldown(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.create(t, queuePool(func(p *pool.Pool) {
		p.Policy.Queue.HighWater, p.IdleTimeout, p.ScaleDownCooldown = 0, 0, time.Minute
	}))
	b.submit(t, batch("etl", 2, inPool("burst")))
	b.round(t)
	require.Len(t, b.cloud.requests(), 2)
	b.register(t)
	b.round(t)
	running := b.start(t)
	require.Len(t, running, 2)
	var first, second string
	for name := range running {
		if first == "" {
			first = name
		} else {
			second = name
		}
	}

	b.finish(t, first)
	b.clock.Advance(time.Second)
	b.round(t)
	draining := b.withState(t, "burst", pool.Draining)
	require.Len(t, draining, 1)
	require.Equal(t, first, draining[0].Node)

	b.finish(t, second)
	b.clock.Advance(time.Second)
	b.round(t)
	require.Len(t, b.withState(t, "burst", pool.Ready), 1, "the second removal waits for the cooldown")
	require.Contains(t, b.pool(t, "burst").Status.LastDecision, "scale-down cooldown")

	b.clock.Advance(time.Minute)
	b.round(t)
	require.Empty(t, b.withState(t, "burst", pool.Ready))
	require.Len(t, b.withState(t, "burst", pool.Draining), 1)
}

// putMachine stores a machine record directly, as a server that crashed
// mid-launch left it.
func (b *bundle) putMachine(t *testing.T, m pool.Machine) {
	t.Helper()
	require.NoError(t, b.store.Update(b.ctx, func(tx store.Tx) error { return tx.PutMachine(b.ctx, m) }))
}
