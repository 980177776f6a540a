// Package agent is the node side of drover: it syncs with the server (one
// long-poll call that is heartbeat, status report and order pickup at once),
// runs the tasks it is assigned through the exec driver, ships their output
// to the server, and kills what it is told to kill.
//
// The agent reports every task it holds in every sync until the server acks
// the task's end state, so a lost answer or a restarted server loses
// nothing: the next sync says it all again.
//
// When the agent stops (SIGTERM, or its parent is gone), it kills its
// tasks, waits for them to end, and reports them KILLED if the server is
// there to hear it.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/drover-dev/drover/internal/agent/execdriver"
	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/client"
	"github.com/drover-dev/drover/internal/event"
	"github.com/drover-dev/drover/internal/task"
	"github.com/drover-dev/drover/internal/tasklog"
)

// Defaults.
const (
	// DefaultSyncWait is how long the server may hold an idle sync, and so
	// the heartbeat interval of an idle agent.
	DefaultSyncWait = 5 * time.Second
	// DefaultStopAfter is how long an agent cut off from the server keeps
	// its tasks running. It must be longer than the server's node grace,
	// so a short outage costs nothing.
	DefaultStopAfter = 60 * time.Second
	// syncTimeout is how long a sync may take beyond the time the server
	// may hold it, before the agent gives up on it and tries again.
	syncTimeout = 10 * time.Second
	// repeatPause is how long the agent waits before it syncs again when
	// the server answered at once with nothing new (see Agent.pause).
	repeatPause = time.Second
	// recentFor is how long the agent remembers a finished task's ID, so a
	// late copy of its assignment never runs it twice.
	recentFor = 10 * time.Minute
)

// Config configures an [Agent]. Zero values mean defaults.
type Config struct {
	Client  *client.Client
	DataDir string
	Name    string // default: the host name
	// Capabilities are extra node attributes ("gpu=true") that job
	// constraints can ask for.
	Capabilities map[string]string
	// CPU (millicores) and Memory (bytes) offered to tasks; default: the
	// machine's.
	CPU, Memory int64
	SyncWait    time.Duration
	// TaskUser runs every task as this user (name or uid) instead of the
	// agent's: a root agent then runs tasks without privileges. The
	// agent's data directory must be reachable by that user.
	TaskUser string
	// StopAfter is how long the agent keeps its tasks running while it
	// cannot reach the server; then it kills them.
	StopAfter time.Duration
	// KeepSandboxes is how long an ended task's sandbox stays on the
	// node (default DefaultKeepSandboxes; negative: forever).
	KeepSandboxes time.Duration
	Log           tasklog.Config
	Logger        *slog.Logger
	Version       string
}

// Agent runs tasks on one node.
type Agent struct {
	cfg   Config
	log   *slog.Logger
	info  api.NodeInfo
	seq   uint64
	tasks map[string]*runTask // guarded by mu
	// recent maps finished task IDs to when they were acked.
	recent map[string]time.Time // guarded by mu
	mu     sync.Mutex
	dirty  bool               // a status changed since the last report; guarded by mu
	cancel context.CancelFunc // cancels a held poll; guarded by mu
	wg     sync.WaitGroup
	// cred is the user tasks run as (nil: the agent's).
	cred *execdriver.Credential
	// starting bounds the processes being started at once.
	starting chan struct{}
	// pkgs installs the packages of the node's pool (packages.go).
	pkgs *installer
}

// New returns an agent.
func New(cfg Config) (*Agent, error) {
	if cfg.Client == nil {
		return nil, errors.New("agent config: Client is required")
	}
	if cfg.DataDir == "" {
		return nil, errors.New("agent config: DataDir is required")
	}
	if cfg.Name == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("agent config: no Name and no host name: %w", err)
		}
		cfg.Name = h
	}
	if cfg.SyncWait == 0 {
		cfg.SyncWait = DefaultSyncWait
	}
	if cfg.StopAfter == 0 {
		cfg.StopAfter = DefaultStopAfter
	}
	if cfg.KeepSandboxes == 0 {
		cfg.KeepSandboxes = DefaultKeepSandboxes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.CPU == 0 {
		cfg.CPU = int64(runtime.NumCPU()) * 1000
	}
	if cfg.Memory == 0 {
		var si syscall.Sysinfo_t
		if err := syscall.Sysinfo(&si); err == nil {
			cfg.Memory = int64(si.Totalram) * int64(si.Unit)
		}
	}
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, "tasks"), 0o700); err != nil {
		return nil, fmt.Errorf("agent data dir: %w", err)
	}
	var cred *execdriver.Credential
	if cfg.TaskUser != "" {
		c, err := lookupCredential(cfg.TaskUser)
		if err != nil {
			return nil, fmt.Errorf("agent config: TaskUser: %w", err)
		}
		cred = c
		// The task's user crosses these directories to its sandbox; it
		// cannot list them.
		for _, d := range []string{cfg.DataDir, filepath.Join(cfg.DataDir, "tasks")} {
			if err := os.Chmod(d, 0o711); err != nil {
				return nil, fmt.Errorf("agent data dir: %w", err)
			}
		}
	}
	attrs := map[string]string{"os": runtime.GOOS, "arch": runtime.GOARCH}
	if h, err := os.Hostname(); err == nil {
		attrs["hostname"] = h
	}
	maps.Copy(attrs, cfg.Capabilities)
	fetch := func(ctx context.Context, sum string) (io.ReadCloser, error) {
		return cfg.Client.Package(ctx, cfg.Name, sum)
	}
	pkgs, err := newInstaller(cfg.DataDir, fetch, cfg.Logger.With("component", "agent", "node", cfg.Name))
	if err != nil {
		return nil, fmt.Errorf("agent data dir: %w", err)
	}
	a := &Agent{
		cfg: cfg,
		log: cfg.Logger.With("component", "agent", "node", cfg.Name),
		info: api.NodeInfo{Name: cfg.Name, Attributes: attrs, Version: cfg.Version,
			Capacity: api.Resources{CPU: cfg.CPU, Memory: cfg.Memory}},
		seq:      uint64(time.Now().UnixNano()),
		cred:     cred,
		tasks:    map[string]*runTask{},
		recent:   map[string]time.Time{},
		starting: make(chan struct{}, 2*runtime.NumCPU()),
		pkgs:     pkgs,
	}
	pkgs.changed = a.changed
	return a, nil
}

// Run syncs and runs tasks until ctx ends, then stops every task and
// reports them before returning.
func (a *Agent) Run(ctx context.Context) error {
	a.log.InfoContext(ctx, "agent started", "server", a.cfg.Client.Addr(), "cpu", a.cfg.CPU, "memory", a.cfg.Memory)
	a.reapLeftovers(ctx)
	a.wg.Add(2)
	go func() {
		defer a.wg.Done()
		a.pkgs.run(ctx)
	}()
	go func() {
		defer a.wg.Done()
		a.pruneLoop(ctx)
	}()
	backoff := 100 * time.Millisecond
	failing := false
	// lastOK is when the last sync that worked was sent: the server saw
	// the node no earlier, so stop_after counted from it ends no later
	// than stop_after after the server's last sight of the node.
	lastOK := time.Now()
	stopped := false // tasks were killed for stop_after in this outage
	for ctx.Err() == nil {
		sent := time.Now()
		resp, err := a.syncOnce(ctx, lastOK.Add(a.cfg.StopAfter))
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			if errors.Is(err, context.Canceled) {
				continue // a held poll cut short to report a change
			}
			if !failing {
				a.log.WarnContext(ctx, "sync failed; retrying", "err", err)
				failing = true
			}
			// Fencing from this side: cut off from the server for longer
			// than stop_after, the agent kills its own tasks, since the
			// server has rescheduled them elsewhere by now.
			if !stopped && time.Since(lastOK) > a.cfg.StopAfter {
				stopped = true
				a.stopAll(fmt.Sprintf("the agent lost the server for more than %s (stop_after)", a.cfg.StopAfter))
			}
			// Jittered backoff, so a fleet does not hammer a server
			// that is coming back.
			d := backoff/2 + rand.N(backoff/2+1)
			select {
			case <-ctx.Done():
			case <-time.After(d):
			}
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		if failing {
			a.log.InfoContext(ctx, "sync works again")
			failing = false
		}
		lastOK, stopped = sent, false
		backoff = 100 * time.Millisecond
		a.pkgs.offer(resp.Packages)
		if a.apply(ctx, resp) {
			// The server answered at once with nothing new: it repeats
			// the kill orders of tasks still stopping (SIGTERM sent, the
			// kill_grace not over). Wait for a change, or a moment,
			// before asking again, rather than spin through syncs (each
			// a write on the server) until they are gone.
			a.pause(ctx, min(repeatPause, a.cfg.SyncWait))
		}
	}
	return a.shutdown()
}

// syncOnce sends one sync. With unreported changes it asks for an answer at
// once; otherwise it lets the server hold the call, and a change cancels
// the held call so the next loop reports it (context.Canceled).
//
// The call is bounded: the server's hold plus syncTimeout, and never past
// stopAt, when stop_after runs out. A call on a dead network (a black hole,
// a cable pulled mid-call) gets no answer and no reset for minutes; without
// a bound it would keep the agent from ever stopping its tasks.
func (a *Agent) syncOnce(ctx context.Context, stopAt time.Time) (api.SyncResponse, error) {
	a.mu.Lock()
	wait := a.cfg.SyncWait
	if a.dirty {
		wait = 0
	}
	a.dirty = false
	req := a.reportLocked()
	req.Wait = api.Duration(wait)
	now := time.Now()
	deadline := now.Add(wait + syncTimeout)
	if stopAt.Before(deadline) {
		// A held call still gets its hold, even with a stop_after
		// shorter than the sync interval.
		deadline = stopAt
		if hold := now.Add(wait + time.Second); deadline.Before(hold) {
			deadline = hold
		}
	}
	sctx, cancel := context.WithDeadline(ctx, deadline)
	if wait > 0 {
		a.cancel = cancel
	}
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		a.cancel = nil
		a.mu.Unlock()
		cancel()
	}()
	resp, err := a.cfg.Client.Sync(sctx, req)
	if err != nil && errors.Is(sctx.Err(), context.Canceled) && ctx.Err() == nil {
		return resp, context.Canceled
	}
	return resp, err
}

// reportLocked builds a sync request with every held task.
func (a *Agent) reportLocked() api.SyncRequest {
	a.seq++
	req := api.SyncRequest{Node: a.info, Seq: a.seq, Tasks: make([]api.TaskStatus, 0, len(a.tasks)), Packages: a.pkgs.report()}
	for _, t := range a.tasks {
		req.Tasks = append(req.Tasks, t.status)
	}
	return req
}

// changed marks that a task's status changed and cuts a held poll short.
func (a *Agent) changed() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.dirty = true
	if a.cancel != nil {
		a.cancel()
		a.cancel = nil
	}
}

// apply carries out the server's orders. It reports whether the answer
// held orders but none that were new: only kills of tasks already being
// stopped, acks of tasks already forgotten, assignments already held.
func (a *Agent) apply(ctx context.Context, resp api.SyncResponse) (repeated bool) {
	now := time.Now()
	news := false
	a.mu.Lock()
	for _, id := range resp.Ack {
		if t, ok := a.tasks[id]; ok && task.State(t.status.State).IsTerminal() {
			delete(a.tasks, id)
			a.recent[id] = now
			news = true
		}
	}
	for id, at := range a.recent {
		if now.Sub(at) > recentFor {
			delete(a.recent, id)
		}
	}
	var kills []*runTask
	for _, k := range resp.Kill {
		if t, ok := a.tasks[k.TaskID]; ok {
			kills = append(kills, t)
			news = news || !t.killed
		}
	}
	var starts []api.Assignment
	for _, as := range resp.Assign {
		if _, ok := a.tasks[as.TaskID]; ok {
			continue
		}
		if _, ok := a.recent[as.TaskID]; ok {
			continue
		}
		starts = append(starts, as)
	}
	news = news || len(starts) > 0
	repeated = !news && (len(resp.Ack) > 0 || len(resp.Kill) > 0 || len(resp.Assign) > 0)
	a.mu.Unlock()
	for _, t := range kills {
		t.kill(killOrdered)
	}
	// Register every new task as STARTING now, so the next report holds
	// it, then start the processes in parallel (bounded): a fork and exec
	// each, but many at once on a busy node.
	a.mu.Lock()
	ts := make([]*runTask, len(starts))
	for i, as := range starts {
		ts[i] = &runTask{agent: a, as: as, status: api.TaskStatus{TaskID: as.TaskID, State: string(task.Starting)}}
		a.tasks[as.TaskID] = ts[i]
	}
	a.mu.Unlock()
	for _, t := range ts {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			select {
			case a.starting <- struct{}{}:
			case <-ctx.Done():
			}
			if ctx.Err() != nil {
				now := time.Now().UTC()
				t.setStatus(func(st *api.TaskStatus) {
					st.State, st.Reason = string(task.Killed), string(event.Killed)
					st.Message, st.FinishedAt = "the agent stopped before the task started", &now
				})
				return
			}
			a.start(ctx, t)
			<-a.starting
		}()
	}
	return repeated
}

// pause waits up to d, or less if a task's status changes (see changed)
// or ctx ends.
func (a *Agent) pause(ctx context.Context, d time.Duration) {
	a.mu.Lock()
	if a.dirty {
		a.mu.Unlock()
		return
	}
	pctx, cancel := context.WithTimeout(ctx, d)
	a.cancel = cancel
	a.mu.Unlock()
	<-pctx.Done()
	a.mu.Lock()
	a.cancel = nil
	a.mu.Unlock()
	cancel()
}

// start runs an assignment. Starting is quick (a fork and exec); the wait
// for the end happens in the task's own goroutine.
func (a *Agent) start(ctx context.Context, t *runTask) {
	as := t.as
	env := maps.Clone(as.Env)
	if env == nil {
		env = map[string]string{}
	}
	env["DROVER_JOB"] = as.Job
	env["DROVER_JOB_VERSION"] = strconv.Itoa(as.JobVersion)
	env["DROVER_INSTANCE"] = strconv.Itoa(as.Instance)
	if as.Run > 0 {
		env["DROVER_RUN"] = strconv.Itoa(as.Run)
	}
	if as.ScheduledAt != nil {
		// The time a scheduled run is for (a catch-up run is late), so
		// a nightly job knows which night it processes.
		env["DROVER_SCHEDULED_AT"] = as.ScheduledAt.UTC().Format(time.RFC3339)
	}
	env["DROVER_TASK_ID"] = as.TaskID
	env["DROVER_ATTEMPT"] = strconv.Itoa(as.Attempt)
	env["DROVER_NODE"] = a.cfg.Name
	ports, err := allocatePorts(as.Ports)
	if err != nil {
		now := time.Now().UTC()
		t.setStatus(func(st *api.TaskStatus) {
			st.State, st.Reason = string(task.Lost), string(event.SandboxFailed)
			st.Message, st.FinishedAt = "allocate ports: "+err.Error(), &now
		})
		return
	}
	for name, p := range ports {
		env["DROVER_PORT_"+strings.ToUpper(name)] = strconv.Itoa(p)
	}
	t.ports = ports
	t.env = env
	h, err := execdriver.Start(execdriver.Config{
		Dir:        filepath.Join(a.cfg.DataDir, "tasks", as.TaskID),
		Command:    as.Command,
		Env:        env,
		Timeout:    time.Duration(as.Timeout),
		KillGrace:  killGrace(time.Duration(as.KillGrace)),
		Log:        a.cfg.Log,
		Credential: a.cred,
	})
	now := time.Now().UTC()
	if err != nil {
		a.log.InfoContext(ctx, "task could not start", "task", as.TaskID, "err", err)
		// A command that cannot run is the job's fault (FAILED, counts
		// against retry); a sandbox this node cannot make is the node's
		// (LOST, so the task can run elsewhere).
		state, reason := task.Failed, event.StartFailed
		var se *execdriver.StartError
		if !errors.As(err, &se) {
			state, reason = task.Lost, event.SandboxFailed
		}
		t.setStatus(func(st *api.TaskStatus) {
			st.State = string(state)
			st.Reason = string(reason)
			st.Message = err.Error()
			st.FinishedAt = &now
		})
		return
	}
	a.mu.Lock()
	t.handle = h
	killed := t.killed
	a.mu.Unlock()
	if killed {
		h.Kill()
	}
	t.setStatus(func(st *api.TaskStatus) {
		st.State = string(task.Running)
		st.StartedAt = &now
	})
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		t.watch(ctx)
	}()
}

// reapLeftovers kills what tasks of an earlier life of this agent left
// running (the agent was killed or crashed; its tasks were not its
// children any more) and reports each as LOST, so the server reschedules
// it. Re-attaching instead would need the output pipes, which died with
// the old agent; a task that can no longer write its output is better
// run again elsewhere.
func (a *Agent) reapLeftovers(ctx context.Context) {
	found, err := execdriver.ReapLeftovers(filepath.Join(a.cfg.DataDir, "tasks"))
	if err != nil {
		a.log.WarnContext(ctx, "could not look for tasks of an earlier agent", "err", err)
		return
	}
	now := time.Now().UTC()
	a.mu.Lock()
	defer a.mu.Unlock()
	for id, lo := range found {
		msg := "the agent restarted; the task's process had already ended, its end unseen"
		if lo.Alive {
			msg = "the agent restarted and killed the task's processes, which it could no longer watch"
		}
		a.tasks[id] = &runTask{agent: a, as: api.Assignment{TaskID: id}, status: api.TaskStatus{
			TaskID: id, State: string(task.Lost), Reason: string(event.AgentRestarted), Message: msg, FinishedAt: &now,
		}}
		a.log.InfoContext(ctx, "task of an earlier agent", "task", id, "alive", lo.Alive)
	}
	if len(found) > 0 {
		a.dirty = true
	}
}

// stopAll kills every task the agent holds, saying why.
func (a *Agent) stopAll(why string) {
	a.mu.Lock()
	ts := make([]*runTask, 0, len(a.tasks))
	for _, t := range a.tasks {
		ts = append(ts, t)
	}
	a.mu.Unlock()
	a.log.Warn("killing every task", "why", why, "tasks", len(ts))
	for _, t := range ts {
		t.kill(why)
	}
}

// shutdown kills every task, waits for them, and reports their end.
func (a *Agent) shutdown() error {
	a.mu.Lock()
	ts := make([]*runTask, 0, len(a.tasks))
	for _, t := range a.tasks {
		ts = append(ts, t)
	}
	a.mu.Unlock()
	for _, t := range ts {
		t.kill("")
	}
	a.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a.mu.Lock()
	req := a.reportLocked()
	a.mu.Unlock()
	if len(req.Tasks) > 0 {
		if _, err := a.cfg.Client.Sync(ctx, req); err != nil {
			a.log.Warn("could not report the tasks stopped at shutdown", "err", err)
		}
	}
	a.log.Info("agent stopped", "tasks_stopped", len(ts))
	return nil
}

// killGrace maps a job's kill_grace to the driver's: zero in a job means
// SIGKILL at once, while the driver reads zero as its default.
func killGrace(d time.Duration) time.Duration {
	if d <= 0 {
		return time.Nanosecond
	}
	return d
}

// lookupCredential finds a user by name or uid, with its primary group.
func lookupCredential(name string) (*execdriver.Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		if u, err = user.LookupId(name); err != nil {
			return nil, fmt.Errorf("no user %q", name)
		}
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("user %q: uid %q or gid %q is not a number", name, u.Uid, u.Gid)
	}
	if uid != uint64(os.Geteuid()) && os.Geteuid() != 0 {
		return nil, fmt.Errorf("running tasks as %q needs a root agent", name)
	}
	return &execdriver.Credential{UID: uint32(uid), GID: uint32(gid)}, nil
}
