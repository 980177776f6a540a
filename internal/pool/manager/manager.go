// Package manager runs drover's pools: every round it compares each pool's
// machines with what its provider lists (launching nothing twice, leaking
// nothing), watches new machines register within start_timeout, asks the
// pool's size policy how many it wants, launches the difference, and
// drains then terminates idle machines it no longer wants. Every launch is
// on record before the provider is called; every decision is an event.
package manager

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/node"
	"github.com/drover-dev/drover/internal/pool"
	"github.com/drover-dev/drover/internal/provider"
	"github.com/drover-dev/drover/internal/scheduler"
	"github.com/drover-dev/drover/internal/store"
	"github.com/drover-dev/drover/internal/task"
)

const (
	// DefaultTick is how often the manager runs a round.
	DefaultTick = time.Second
	// DefaultReconcileEvery is how often a round also compares the
	// records with the provider's own list (every round for local).
	DefaultReconcileEvery = 10 * time.Second
	// callTimeout bounds one provider call.
	callTimeout = 2 * time.Minute
	// SettingCluster is the setting holding the cluster's ID.
	SettingCluster = "cluster_id"
)

// Config configures a [Manager].
type Config struct {
	Store     store.Store
	Scheduler *scheduler.Scheduler
	Clock     scheduler.Clock
	Logger    *slog.Logger
	// Agent is what launched machines run: the server's URL, the join
	// token, the CA and the binary.
	Agent     provider.Agent
	Providers ProviderFactory
	Tick      time.Duration
	// ReconcileEvery: see DefaultReconcileEvery.
	ReconcileEvery time.Duration
	// Failpoint makes the process kill itself with SIGKILL at a named
	// point ("after-intent": a launch is on record, the provider not yet
	// called; "after-launch": the provider launched, the record not yet
	// updated). For the leak tests only (DROVER_FAILPOINT).
	Failpoint string
}

// Manager runs the pools. Create it with [New], then Start it.
type Manager struct {
	cfg     Config
	store   store.Store
	sched   *scheduler.Scheduler
	clock   scheduler.Clock
	log     *slog.Logger
	cluster string

	mu        sync.Mutex
	providers map[string]cachedProvider
	lastList  map[string]time.Time // pool → last reconcile
	idleSince map[string]time.Time // node → when it was first seen idle

	round  sync.Mutex // one round at a time (the loop, tests, destroy)
	cancel context.CancelFunc
	done   chan struct{}
}

type cachedProvider struct {
	spec string
	prov provider.Provider
}

// New returns a manager; it reads (or makes) the cluster's ID.
func New(ctx context.Context, cfg Config) (*Manager, error) {
	if cfg.Store == nil || cfg.Scheduler == nil || cfg.Providers == nil {
		return nil, errors.New("pool manager config: Store, Scheduler and Providers are required")
	}
	if cfg.Clock == nil {
		cfg.Clock = scheduler.SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Tick <= 0 {
		cfg.Tick = DefaultTick
	}
	if cfg.ReconcileEvery <= 0 {
		cfg.ReconcileEvery = DefaultReconcileEvery
	}
	m := &Manager{cfg: cfg, store: cfg.Store, sched: cfg.Scheduler, clock: cfg.Clock, log: cfg.Logger,
		providers: map[string]cachedProvider{}, lastList: map[string]time.Time{}, idleSince: map[string]time.Time{}}
	err := m.store.Update(ctx, func(tx store.Tx) error {
		id, err := tx.GetSetting(ctx, SettingCluster)
		if errors.Is(err, store.ErrNotFound) {
			id = "c" + newID()
			err = tx.PutSetting(ctx, SettingCluster, id)
		}
		m.cluster = id
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("pool manager: %w", err)
	}
	return m, nil
}

// SetJoinToken sets the agent token launched machines join with; call it
// before Start.
func (m *Manager) SetJoinToken(token string) { m.cfg.Agent.Token = token }

// Cluster returns the cluster's ID, which tags every machine it launches.
func (m *Manager) Cluster() string { return m.cluster }

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

func newID() string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return idEncoding.EncodeToString(b[:])
}

// Start runs rounds until Stop or ctx ends.
func (m *Manager) Start(ctx context.Context) {
	ctx, m.cancel = context.WithCancel(ctx)
	m.done = make(chan struct{})
	go func() {
		defer close(m.done)
		t := time.NewTicker(m.cfg.Tick)
		defer t.Stop()
		for {
			if err := m.Once(ctx); err != nil && ctx.Err() == nil {
				m.log.WarnContext(ctx, "pool round failed", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// Stop ends the loop and waits for it, up to ctx's deadline.
func (m *Manager) Stop(ctx context.Context) error {
	if m.cancel == nil {
		return nil
	}
	m.cancel()
	select {
	case <-m.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// provider returns the pool's provider, made again when its spec changed.
func (m *Manager) provider(ctx context.Context, p pool.Pool) (provider.Provider, error) {
	m.mu.Lock()
	c, ok := m.providers[p.Name]
	m.mu.Unlock()
	key := p.Provider + "\x00" + string(p.Spec)
	if ok && c.spec == key {
		return c.prov, nil
	}
	prov, err := m.cfg.Providers(ctx, p)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.providers[p.Name] = cachedProvider{spec: key, prov: prov}
	m.mu.Unlock()
	return prov, nil
}

// CheckSpec reports whether a pool's node spec makes a provider (an
// unknown field, a missing known_hosts file, a bad instance type...).
func (m *Manager) CheckSpec(ctx context.Context, p pool.Pool) error {
	_, err := m.cfg.Providers(ctx, p)
	return err
}

// Once runs one round over every pool.
func (m *Manager) Once(ctx context.Context) error {
	m.round.Lock()
	defer m.round.Unlock()
	var pools []pool.Pool
	if err := m.store.View(ctx, func(r store.Reader) error {
		var err error
		pools, err = r.ListPools(ctx)
		return err
	}); err != nil {
		return err
	}
	w, err := m.world(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range pools {
		if err := m.poolRound(ctx, p, w); err != nil {
			errs = append(errs, fmt.Errorf("pool %s: %w", p.Name, err))
		}
	}
	return errors.Join(errs...)
}

// world is what a round reads once for all pools: nodes, their active
// tasks, and the pending tasks with their specs.
type world struct {
	nodes   map[string]node.Node
	active  map[string]int // node → tasks assigned to running
	pending []pendingTask
}

type pendingTask struct {
	spec job.Spec
}

func (m *Manager) world(ctx context.Context) (world, error) {
	w := world{nodes: map[string]node.Node{}, active: map[string]int{}}
	err := m.store.View(ctx, func(r store.Reader) error {
		ns, err := r.ListNodes(ctx)
		if err != nil {
			return err
		}
		for _, n := range ns {
			w.nodes[n.Name] = n
		}
		ts, err := r.ListTasks(ctx, store.TaskFilter{States: []task.State{task.Assigned, task.Starting, task.Running}})
		if err != nil {
			return err
		}
		for _, t := range ts {
			w.active[t.Node]++
		}
		ps, err := r.ListTasks(ctx, store.TaskFilter{States: []task.State{task.Pending}, Limit: 100000})
		if err != nil {
			return err
		}
		specs := map[scheduler.VersionKey]job.Spec{}
		for _, t := range ps {
			vk := scheduler.VersionKey{Job: t.Job, Version: t.JobVersion}
			spec, ok := specs[vk]
			if !ok {
				v, err := r.GetJobVersion(ctx, t.Job, t.JobVersion)
				if err != nil {
					return err
				}
				spec, specs[vk] = v.Spec, v.Spec
			}
			w.pending = append(w.pending, pendingTask{spec: spec})
		}
		return nil
	})
	return w, err
}

// wants reports whether a pending task of spec counts for pool p: its job
// names the pool, or names no pool and has constraints that all hold on
// the pool's nodes (a job that constrains nothing runs anywhere and does
// not scale a pool).
func wants(spec job.Spec, p pool.Pool) bool {
	if spec.Pool != "" {
		return spec.Pool == p.Name
	}
	if spec.Node != "" || len(spec.Constraints) == 0 {
		return false
	}
	attrs := p.Attributes()
	for _, c := range spec.Constraints {
		if !c.Matches(attrs) {
			return false
		}
	}
	return true
}
