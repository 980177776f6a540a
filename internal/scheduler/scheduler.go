// Package scheduler owns the life of tasks: it turns submitted jobs into
// tasks, places pending tasks on nodes, applies what agents report through
// the one table of legal transitions, retries failures within the job's
// budget, and decides when a job has ended. Every change commits together
// with its events in one store transaction; nothing that matters lives only
// in memory, so a restarted scheduler carries on from the store.
package scheduler

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/store"
)

// Defaults.
const (
	// DefaultNodeGrace is how long a node may miss syncs before it is
	// DOWN and its tasks LOST (agents sync at least every 5s).
	DefaultNodeGrace = 15 * time.Second
	// DefaultStartTimeout is how long a task may stay ASSIGNED or STARTING
	// before it is LOST (start timeout) and rescheduled.
	DefaultStartTimeout = 60 * time.Second
	// livenessTick is how often node deadlines and the startup watchdog
	// are checked.
	livenessTick = time.Second
	// idleRound is the longest the placement loop sleeps.
	idleRound = 10 * time.Second
	// maxPlacePerRound bounds one placement transaction.
	maxPlacePerRound = 256
)

// Config configures a [Scheduler]. Zero values mean defaults.
type Config struct {
	Store  store.Store
	Clock  Clock
	Logger *slog.Logger
	// NodeGrace is how long a node may miss syncs before it is DOWN.
	NodeGrace time.Duration
	// ReconnectWindow is how long after the scheduler starts no node is
	// declared DOWN, so agents can reconnect to a restarted server
	// before their tasks are judged lost. Default: NodeGrace.
	ReconnectWindow time.Duration
	// StartTimeout bounds ASSIGNED and STARTING.
	StartTimeout time.Duration
	// NewID makes task IDs; tests may fix it.
	NewID func() string
	// CronLateness is how late a schedule's fire time may be handled and
	// still run; older times follow the catch_up policy. Default
	// DefaultCronLateness.
	CronLateness time.Duration
}

// Scheduler places and tracks tasks. Create it with [New], then Start it.
type Scheduler struct {
	store        store.Store
	clock        Clock
	log          *slog.Logger
	nodeStale    time.Duration // = NodeGrace
	startTimeout time.Duration
	// upSince is when the scheduler was made: no agent could report
	// before. downAfter is when the reconnection window after it ends.
	upSince       time.Time
	downAfter     time.Time
	timedOut      atomic.Int64 // tasks LOST by the startup watchdog
	noSpaceLogged atomic.Bool
	nodesDown     atomic.Int64 // nodes declared DOWN
	newID         func() string
	cronLateness  time.Duration

	specMu sync.Mutex
	specs  map[VersionKey]job.Spec // immutable once stored, so safe to cache

	wake chan struct{} // placement loop; buffered 1

	mu          sync.Mutex
	nodeWake    map[string]chan struct{}
	changed     chan struct{}
	unplaceable map[string]string // task → last reason recorded
	lastSeq     map[string]uint64 // node → Seq of the last report applied
	avoid       map[string]string // rescheduled task → node its instance was lost on
	prefer      map[string]string // restarted service task → node it ran on
	// heard is when each node's last sync arrived, committed or not: a
	// sync the store could not commit (full disk) still proves the node
	// alive.
	heard map[string]time.Time

	cancel context.CancelFunc
	done   chan struct{}
	wg     sync.WaitGroup
}

// New returns a scheduler.
func New(cfg Config) (*Scheduler, error) {
	if cfg.Store == nil {
		return nil, errors.New("scheduler config: Store is required")
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.NodeGrace == 0 {
		cfg.NodeGrace = DefaultNodeGrace
	}
	if cfg.ReconnectWindow == 0 {
		cfg.ReconnectWindow = cfg.NodeGrace
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = DefaultStartTimeout
	}
	if cfg.NodeGrace < 0 || cfg.ReconnectWindow < 0 || cfg.StartTimeout < 0 {
		return nil, errors.New("scheduler config: NodeGrace, ReconnectWindow and StartTimeout must not be negative")
	}
	if cfg.CronLateness <= 0 {
		cfg.CronLateness = DefaultCronLateness
	}
	if cfg.NewID == nil {
		cfg.NewID = NewTaskID
	}
	now := cfg.Clock.Now()
	return &Scheduler{
		store:        cfg.Store,
		clock:        cfg.Clock,
		log:          cfg.Logger.With("component", "scheduler"),
		nodeStale:    cfg.NodeGrace,
		startTimeout: cfg.StartTimeout,
		upSince:      now,
		downAfter:    now.Add(cfg.ReconnectWindow),
		newID:        cfg.NewID,
		cronLateness: cfg.CronLateness,
		specs:        map[VersionKey]job.Spec{},
		wake:         make(chan struct{}, 1),
		nodeWake:     map[string]chan struct{}{},
		changed:      make(chan struct{}),
		unplaceable:  map[string]string{},
		lastSeq:      map[string]uint64{},
		avoid:        map[string]string{},
		prefer:       map[string]string{},
		heard:        map[string]time.Time{},
	}, nil
}

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewTaskID returns a random task ID of 12 lowercase letters and digits.
func NewTaskID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return idEncoding.EncodeToString(b[:])[:12]
}

// Start launches the placement loop; it runs until Stop or ctx ends.
func (s *Scheduler) Start(ctx context.Context) {
	ctx, s.cancel = context.WithCancel(ctx)
	s.done = make(chan struct{})
	s.wg.Add(3)
	go func() {
		defer s.wg.Done()
		s.loop(ctx)
	}()
	go func() {
		defer s.wg.Done()
		s.cronLoop(ctx)
	}()
	go func() {
		defer s.wg.Done()
		s.livenessLoop(ctx)
	}()
	go func() {
		s.wg.Wait()
		close(s.done)
	}()
	s.Wake()
}

// Stop ends the placement loop and waits for it, up to ctx's deadline.
func (s *Scheduler) Stop(ctx context.Context) error {
	if s.cancel == nil {
		return nil
	}
	s.cancel()
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Wake asks the placement loop to run soon.
func (s *Scheduler) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Scheduler) loop(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next, err := s.PlaceOnce(ctx)
		if err != nil && !errors.Is(err, context.Canceled) {
			s.logLoopError(ctx, "placement round failed", err)
			next = s.clock.Now().Add(time.Second)
		}
		// Placement runs on every change that can free capacity or add
		// work; the idle round is a safety net for anything missed (a
		// node going stale changes no row).
		wait := idleRound
		if !next.IsZero() {
			wait = min(max(next.Sub(s.clock.Now()), time.Millisecond), idleRound)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-timer.C:
		}
	}
}

// Changed returns a channel closed at the next committed change of any job,
// task or node. Readers that wait for changes (job status, log follow, the
// web page) take a new channel after each wake-up.
func (s *Scheduler) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

func (s *Scheduler) broadcast(nodes ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.changed)
	s.changed = make(chan struct{})
	for _, n := range nodes {
		if ch, ok := s.nodeWake[n]; ok {
			close(ch)
			delete(s.nodeWake, n)
		}
	}
}

// NodeChanged returns a channel closed when the node may have new orders.
func (s *Scheduler) NodeChanged(name string) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.nodeWake[name]
	if !ok {
		ch = make(chan struct{})
		s.nodeWake[name] = ch
	}
	return ch
}

// spec returns a job version's spec, from the cache or the reader.
func (s *Scheduler) spec(ctx context.Context, r store.Reader, key job.Key, version int) (job.Spec, error) {
	vk := VersionKey{key, version}
	s.specMu.Lock()
	sp, ok := s.specs[vk]
	s.specMu.Unlock()
	if ok {
		return sp, nil
	}
	v, err := r.GetJobVersion(ctx, key, version)
	if err != nil {
		return job.Spec{}, err
	}
	s.specMu.Lock()
	s.specs[vk] = v.Spec
	s.specMu.Unlock()
	return v.Spec, nil
}

// ConflictError is a request that cannot be done in the current state; it
// wraps store.ErrConflict so callers answer 409.
type ConflictError struct{ Msg string }

func (e *ConflictError) Error() string { return e.Msg }

// Unwrap makes errors.Is(err, store.ErrConflict) true.
func (e *ConflictError) Unwrap() error { return store.ErrConflict }

// ForbiddenError is a request the caller may not make; callers answer 403.
type ForbiddenError struct{ Msg string }

func (e *ForbiddenError) Error() string { return e.Msg }

func joinReasons(rs []string) string { return strings.Join(rs, "; ") }

// avoidNode records that a task should not go back to a node unless no
// other can take it. The preference lives in memory only: after a restart
// a rescheduled task may land anywhere.
func (s *Scheduler) avoidNode(taskID, node string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.avoid[taskID] = node
}

// preferNode records that a task should go to a node if it fits there:
// a service restarted in place. In memory only, like [Scheduler.avoidNode].
func (s *Scheduler) preferNode(taskID, node string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prefer[taskID] = node
}

func (s *Scheduler) avoiding() (avoid, prefer map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.avoid), maps.Clone(s.prefer)
}

// heardFrom records that a node's sync arrived.
func (s *Scheduler) heardFrom(name string) {
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.heard[name] = now
}

// lastHeard returns the later of a node's committed LastSeen and the
// arrival of its last sync.
func (s *Scheduler) lastHeard(name string, lastSeen time.Time) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h := s.heard[name]; h.After(lastSeen) {
		return h
	}
	return lastSeen
}

// logLoopError logs a failed loop round. A full disk is logged once as a
// warning when it starts (the server answers 507 meanwhile and recovers by
// itself), not every second; other errors are errors.
func (s *Scheduler) logLoopError(ctx context.Context, msg string, err error) {
	if errors.Is(err, store.ErrNoSpace) {
		if s.noSpaceLogged.CompareAndSwap(false, true) {
			s.log.WarnContext(ctx, "the store's disk is full; writes are refused until space returns", "err", err)
		}
		return
	}
	s.log.ErrorContext(ctx, msg, "err", err)
}
