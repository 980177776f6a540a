// Package local is the provider whose machines are `drover agent`
// processes on this host: the development default, and how tests see a
// pool grow and shrink with real agents.
//
// Everything it knows lives on disk under [Config.Dir], one directory per
// machine, so a server killed at any moment finds its machines again when
// it restarts:
//
//	DIR/ID/tags.json   pool, cluster, intent, node, launch time (written first)
//	DIR/ID/token       the agent token (0600); never on a command line
//	DIR/ID/ca.pem      the CA bundle, if the request has one
//	DIR/ID/pid         pid, start time and boot id of the agent (atomic)
//	DIR/ID/agent.log   the agent's stdout and stderr
//	DIR/ID/data/       the agent's --data: its task sandboxes
//	DIR/.logs/ID.log   agent.log of a terminated machine, kept a week
//
// A machine's ID is its node name, so one node has at most one machine.
// A machine directory appears whole (it is built under a temporary name
// and renamed), and the agent starts only after that, so List sees every
// agent this provider started. The pid file is written once the agent
// runs; if the server died before writing it, the agent is still found by
// the DROVER_LOCAL_MACHINE variable it carries in its environment.
//
// Agents run in sessions of their own and outlive the server; the pool
// manager, not the death of a process, decides when a machine ends.
// Deciding how many machines a pool has, and whether their agents
// registered, is the pool's job, not this package's.
package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/drover-dev/drover/internal/agent/execdriver"
	"github.com/drover-dev/drover/internal/procfs"
	"github.com/drover-dev/drover/internal/provider"
)

// DefaultStopTimeout is how long a terminated machine's agent gets between
// SIGTERM and SIGKILL when [Config.StopTimeout] is zero: time to kill its
// tasks and report them to the server.
const DefaultStopTimeout = 10 * time.Second

// LogRetention is how long the agent.log of a terminated machine is kept
// under DIR/.logs.
const LogRetention = 7 * 24 * time.Hour

// Address is what [provider.Machine.Address] holds for a local machine.
const Address = "localhost"

const (
	// markerEnv is set in each agent's environment to its machine
	// directory; see [markedLeaders].
	markerEnv = "DROVER_LOCAL_MACHINE"
	// pollInterval is how often a wait for a process that is not our
	// child looks again; only a parent can wait on an exit directly.
	pollInterval = 25 * time.Millisecond
	// killTimeout bounds the wait for processes sent SIGKILL to be gone.
	killTimeout = 5 * time.Second
	// tempMaxAge is the age after which New removes the temporary
	// directories of launches and terminations that were interrupted.
	tempMaxAge = time.Hour
)

// Names inside a machine directory.
const (
	tagsFile  = "tags.json"
	pidFile   = "pid"
	tokenFile = "token"
	caFile    = "ca.pem"
	logFile   = "agent.log"
	dataDir   = "data"
	// tasksDir is where the agent keeps its task sandboxes under its
	// --data (internal/agent); a dead agent's leftover tasks are there.
	tasksDir = "tasks"
	logsDir  = ".logs"
)

// passedEnv are the variables of the server's environment an agent
// inherits. The rest (credentials, DROVER_* settings of the server) stay
// with the server.
var passedEnv = []string{"PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ", "TMPDIR"}

// idPattern is what a node name, and so a machine ID, may look like: it
// becomes a directory name, so no '/', no leading '.', nothing to quote.
var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

// Config configures a [Provider].
type Config struct {
	// Dir holds one directory per machine. It is created (0700) if
	// missing. Required.
	Dir string
	// Binary is the drover binary the agents run when the request's
	// [provider.Agent.Binary] is empty. Empty means this process's own
	// executable.
	Binary string
	// Env is extra environment for the agents, as KEY=VALUE (tests use it
	// for DROVER_SYNC_INTERVAL). Besides it, an agent gets only PATH,
	// HOME, USER, LOGNAME, LANG, LC_ALL, TZ and TMPDIR from the server's
	// environment, never all of it.
	Env []string
	// StopTimeout is how long Terminate waits for an agent to exit after
	// SIGTERM before it kills the agent's whole session. Zero means
	// [DefaultStopTimeout].
	StopTimeout time.Duration
}

// Provider runs machines as local agent processes. It implements
// [provider.Provider]. Its methods are safe for concurrent use; calls for
// the same machine wait for each other.
type Provider struct {
	cfg  Config
	boot string

	mu sync.Mutex
	// busy holds the machines with a Launch (Pending) or Terminate
	// (Terminating) under way; the channel closes when it ends.
	busy map[string]busyMachine
	// children are the agents this process started and still waits for,
	// so none is left a zombie while the server lives.
	children map[string]*child
}

var _ provider.Provider = (*Provider)(nil)

type busyMachine struct {
	op   provider.State
	done chan struct{}
}

// child is an agent process this Provider started.
type child struct {
	ref  procRef
	done chan struct{} // closed once reaped
}

// procRef names one process across pid reuse and reboots: what the pid
// file holds.
type procRef struct {
	Pid       int    `json:"pid"`
	StartTime uint64 `json:"start_time"` // field 22 of /proc/PID/stat
	BootID    string `json:"boot_id"`
}

// New returns a Provider keeping its machines under cfg.Dir. It removes
// what interrupted launches and terminations left behind.
func New(cfg Config) (*Provider, error) {
	var errs []error
	if cfg.Dir == "" {
		errs = append(errs, errors.New("Dir: must be set"))
	}
	if cfg.StopTimeout < 0 {
		errs = append(errs, fmt.Errorf("StopTimeout %s: must not be negative", cfg.StopTimeout))
	}
	for i, kv := range cfg.Env {
		k, _, ok := strings.Cut(kv, "=")
		switch {
		case !ok || k == "" || strings.ContainsRune(kv, 0):
			errs = append(errs, fmt.Errorf("Env[%d] %q: must be KEY=VALUE without NUL", i, kv))
		case k == markerEnv:
			errs = append(errs, fmt.Errorf("Env[%d]: %s is set by the provider", i, markerEnv))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("Dir %q: %w", cfg.Dir, err)
	}
	cfg.Dir = dir
	if cfg.Binary == "" {
		if cfg.Binary, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("find own binary: %w", err)
		}
	}
	if cfg.StopTimeout == 0 {
		cfg.StopTimeout = DefaultStopTimeout
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("make machine directory: %w", err)
	}
	boot, err := bootID()
	if err != nil {
		return nil, err
	}
	p := &Provider{cfg: cfg, boot: boot, busy: map[string]busyMachine{}, children: map[string]*child{}}
	if err := p.removeTemps(); err != nil {
		return nil, err
	}
	return p, nil
}

// Launch starts an agent process for req.Node and returns as soon as it
// runs; the agent registers with the server by itself. The machine's ID is
// the node name. A second Launch with the same Intent returns the machine
// already running instead of starting another. A node whose machine runs
// for another intent, or whose machine died and was not terminated, is
// refused: Terminate it first. The agent gets its token and CA bundle in
// files, never on its command line.
func (p *Provider) Launch(ctx context.Context, req provider.LaunchRequest) (provider.Machine, error) {
	if err := validateRequest(req); err != nil {
		return provider.Machine{}, err
	}
	id := req.Node
	release, err := p.acquire(ctx, id, provider.Pending)
	if err != nil {
		return provider.Machine{}, err
	}
	defer release()

	dir := p.machineDir(id)
	t, err := readTags(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return provider.Machine{}, err
	default:
		_, alive := p.locate(id, &marks{})
		switch {
		case alive && t.Intent == req.Intent:
			m := t.machine(id)
			m.State = provider.Running
			return m, nil
		case alive:
			return provider.Machine{}, fmt.Errorf("launch node %q: machine %s already runs (intent %s)", id, id, t.Intent)
		case t.Intent != req.Intent:
			return provider.Machine{}, fmt.Errorf("launch node %q: machine %s (intent %s) has stopped but is not terminated; terminate it first", id, id, t.Intent)
		}
		// The same launch again, after its agent died or never started
		// (the server crashed mid-launch): clear it and start afresh.
		if err := p.terminateLocked(ctx, id); err != nil {
			return provider.Machine{}, err
		}
	}
	return p.start(id, req)
}

// start builds the machine's directory and starts its agent. The caller
// holds the machine (acquire) and has made sure its directory is absent.
func (p *Provider) start(id string, req provider.LaunchRequest) (provider.Machine, error) {
	t := machineTags{
		Node: req.Node, Pool: req.Pool, Cluster: req.Cluster, Intent: req.Intent,
		LaunchedAt: time.Now().UTC().Truncate(time.Millisecond),
	}
	t.Tags = map[string]string{
		provider.TagPool: t.Pool, provider.TagCluster: t.Cluster,
		provider.TagIntent: t.Intent, provider.TagNode: t.Node,
	}
	dir := p.machineDir(id)
	if err := p.prepare(dir, t, req.Agent); err != nil {
		return provider.Machine{}, fmt.Errorf("launch node %q: %w", id, err)
	}
	// From here the machine is on disk and List reports it: Pending while
	// this call runs, then Running, or Terminated if the agent never ran.

	logf, err := os.OpenFile(filepath.Join(dir, logFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return provider.Machine{}, errors.Join(fmt.Errorf("launch node %q: %w", id, err), p.remove(id))
	}
	ca := ""
	if len(req.Agent.CACert) > 0 {
		ca = filepath.Join(dir, caFile)
	}
	binary := req.Agent.Binary
	if binary == "" {
		binary = p.cfg.Binary
	}
	cmd := exec.Command(binary, req.Agent.Args(id, filepath.Join(dir, dataDir), filepath.Join(dir, tokenFile), ca)...)
	cmd.Dir = dir
	cmd.Env = p.agentEnv(dir)
	cmd.Stdout, cmd.Stderr = logf, logf
	// A session of its own: the agent outlives the server and is out of
	// reach of signals sent to the server's terminal or process group.
	// No Pdeathsig, for the same reason.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	_ = logf.Close() // the agent holds its own copy
	if err != nil {
		return provider.Machine{}, errors.Join(fmt.Errorf("launch node %q: start agent: %w", id, err), p.remove(id))
	}
	// Read the start time before the reaper may Wait: until then the
	// pid names the agent even if it has exited already (a zombie).
	st, err := procfs.ReadStat(cmd.Process.Pid)
	c := &child{ref: procRef{Pid: cmd.Process.Pid, StartTime: st.StartTime, BootID: p.boot}, done: make(chan struct{})}
	go p.reap(id, c, cmd)
	if err == nil {
		err = writeJSONAtomic(filepath.Join(dir, pidFile), c.ref)
	}
	if err != nil {
		killSession(cmd.Process.Pid, time.Now().Add(killTimeout))
		<-c.done
		return provider.Machine{}, errors.Join(fmt.Errorf("launch node %q: record agent pid: %w", id, err), p.remove(id))
	}
	p.mu.Lock()
	p.children[id] = c
	p.mu.Unlock()

	m := t.machine(id)
	m.State = provider.Running
	return m, nil
}

// prepare makes the machine's directory whole under a temporary name and
// renames it into place, so that a machine directory always has its tags.
func (p *Provider) prepare(dir string, t machineTags, a provider.Agent) error {
	tmp, err := os.MkdirTemp(p.cfg.Dir, ".new-"+t.Node+"-")
	if err != nil {
		return fmt.Errorf("make machine directory: %w", err)
	}
	err = writeJSONAtomic(filepath.Join(tmp, tagsFile), t)
	if err == nil {
		err = os.WriteFile(filepath.Join(tmp, tokenFile), []byte(a.Token+"\n"), 0o600)
	}
	if err == nil && len(a.CACert) > 0 {
		err = os.WriteFile(filepath.Join(tmp, caFile), a.CACert, 0o600)
	}
	if err == nil {
		err = os.Mkdir(filepath.Join(tmp, dataDir), 0o700)
	}
	if err == nil {
		err = os.Rename(tmp, dir)
	}
	if err != nil {
		_ = os.RemoveAll(tmp)
		return fmt.Errorf("make machine directory: %w", err)
	}
	return nil
}

// reap waits for an agent this process started, so it does not stay a
// zombie, and forgets it. The goroutine lives exactly as long as the agent
// does; an agent outliving the Provider is by design.
func (p *Provider) reap(id string, c *child, cmd *exec.Cmd) {
	_ = cmd.Wait() // how the agent ended is in its agent.log
	p.mu.Lock()
	if p.children[id] == c {
		delete(p.children, id)
	}
	p.mu.Unlock()
	close(c.done)
}

// Terminate stops machine id: SIGTERM to its agent, which kills its tasks
// and reports them, then, after [Config.StopTimeout] or when ctx ends,
// SIGKILL to every process left in the agent's session. Tasks left by an
// agent that had died before are killed too. The machine's directory is
// then removed, keeping agent.log as DIR/.logs/ID.log. A machine that is
// already gone is not an error; an ID that cannot be a machine's is.
func (p *Provider) Terminate(ctx context.Context, id string) error {
	if err := validateID(id); err != nil {
		return fmt.Errorf("terminate: %w", err)
	}
	release, err := p.acquire(ctx, id, provider.Terminating)
	if err != nil {
		return err
	}
	defer release()
	return p.terminateLocked(ctx, id)
}

// terminateLocked is Terminate for a caller that holds the machine.
func (p *Provider) terminateLocked(ctx context.Context, id string) error {
	dir := p.machineDir(id)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("terminate %s: %w", id, err)
	}
	if ref, alive := p.locate(id, &marks{}); alive {
		if err := p.stop(ctx, id, ref); err != nil {
			return fmt.Errorf("terminate %s: %w", id, err)
		}
	}
	// An agent killed earlier (kill -9, OOM) left its tasks running; the
	// agent's own reaper finds them by the pid files in its sandboxes.
	if _, err := execdriver.ReapLeftovers(filepath.Join(dir, dataDir, tasksDir)); err != nil {
		return fmt.Errorf("terminate %s: kill tasks left by its agent: %w", id, err)
	}
	if err := p.remove(id); err != nil {
		return fmt.Errorf("terminate %s: %w", id, err)
	}
	return nil
}

// stop ends the agent ref and everything in its session. The order: a
// SIGTERM lets the agent stop its tasks and tell the server; then
// whatever is left of the session, the agent included, gets SIGKILL.
func (p *Provider) stop(ctx context.Context, id string, ref procRef) error {
	_ = unix.Kill(ref.Pid, unix.SIGTERM)
	waitCtx, cancel := context.WithTimeout(ctx, p.cfg.StopTimeout)
	p.waitGone(waitCtx, id, ref)
	cancel()
	// The session's id is the agent's pid. Linux does not reuse it while
	// a member of the session lives, so members found now are the agent's
	// even once the agent itself has exited.
	if !killSession(ref.Pid, time.Now().Add(killTimeout)) {
		return fmt.Errorf("processes of session %d survive SIGKILL", ref.Pid)
	}
	waitCtx, cancel = context.WithTimeout(context.WithoutCancel(ctx), killTimeout)
	defer cancel()
	p.waitGone(waitCtx, id, ref)
	return nil
}

// waitGone returns once ref has exited (and, if it is our child, been
// reaped) or ctx ends.
func (p *Provider) waitGone(ctx context.Context, id string, ref procRef) {
	p.mu.Lock()
	c := p.children[id]
	p.mu.Unlock()
	if c != nil && c.ref == ref {
		select {
		case <-c.done:
		case <-ctx.Done():
		}
		return
	}
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for p.isAlive(ref) {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// remove takes a machine's directory away, keeping its agent.log. The
// directory is first renamed to a hidden name, so List never sees half of
// it.
func (p *Provider) remove(id string) error {
	dir := p.machineDir(id)
	logs := filepath.Join(p.cfg.Dir, logsDir)
	if err := os.MkdirAll(logs, 0o700); err != nil {
		return fmt.Errorf("keep agent log: %w", err)
	}
	if err := os.Rename(filepath.Join(dir, logFile), filepath.Join(logs, id+".log")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("keep agent log: %w", err)
	}
	trash := filepath.Join(p.cfg.Dir, ".trash-"+id+"-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	if err := os.Rename(dir, trash); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("remove machine directory: %w", err)
	}
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("remove machine directory: %w", err)
	}
	return p.pruneLogs()
}

// List returns the machines of pool in cluster that have a directory under
// [Config.Dir], by ID. A machine whose agent process runs is Running (or
// Terminating during a Terminate); one whose Launch is under way is
// Pending. A machine whose agent is gone (it crashed, was killed, or the
// server died before starting it) is reported as Terminated until
// Terminate removes it: the process ending is not the pool deciding to
// end the machine, so the pool must see it, replace it and terminate it.
func (p *Provider) List(ctx context.Context, pool, cluster string) ([]provider.Machine, error) {
	entries, err := os.ReadDir(p.cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("list machines: %w", err)
	}
	mk := &marks{}
	var out []provider.Machine
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		id := e.Name()
		if !e.IsDir() || validateID(id) != nil {
			continue // .logs, and temporary directories
		}
		t, err := readTags(p.machineDir(id))
		if errors.Is(err, fs.ErrNotExist) {
			continue // terminated meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("list machines: %w", err)
		}
		if t.Pool != pool || t.Cluster != cluster {
			continue
		}
		m := t.machine(id)
		_, alive := p.locate(id, mk)
		op := p.op(id)
		switch {
		case alive && op == provider.Terminating:
			m.State = provider.Terminating
		case alive:
			m.State = provider.Running
		case op == provider.Pending:
			m.State = provider.Pending
		default:
			m.State = provider.Terminated
		}
		out = append(out, m)
	}
	return out, nil
}

// locate finds machine id's agent process and reports whether it is
// alive. The pid file, once written, is the truth; without one (the
// server died between starting the agent and writing it) the agent is
// looked for by the marker in its environment.
func (p *Provider) locate(id string, mk *marks) (procRef, bool) {
	dir := p.machineDir(id)
	var ref procRef
	b, err := os.ReadFile(filepath.Join(dir, pidFile))
	if err == nil && json.Unmarshal(b, &ref) == nil && ref.Pid > 0 {
		return ref, p.isAlive(ref)
	}
	found, err := mk.get()
	if err != nil {
		return procRef{}, false
	}
	ref, ok := found[dir]
	if !ok {
		return procRef{}, false
	}
	ref.BootID = p.boot
	return ref, p.isAlive(ref)
}

// isAlive reports whether the process ref names still runs: same boot,
// same pid, same start time, and not a zombie.
func (p *Provider) isAlive(ref procRef) bool {
	if ref.BootID != p.boot {
		return false
	}
	st, err := procfs.ReadStat(ref.Pid)
	return err == nil && st.StartTime == ref.StartTime && st.Live()
}

// acquire waits until no other Launch or Terminate works on machine id,
// then marks it as busy with op until the returned func is called.
func (p *Provider) acquire(ctx context.Context, id string, op provider.State) (func(), error) {
	for {
		p.mu.Lock()
		b, taken := p.busy[id]
		if !taken {
			b = busyMachine{op: op, done: make(chan struct{})}
			p.busy[id] = b
			p.mu.Unlock()
			return func() {
				p.mu.Lock()
				delete(p.busy, id)
				p.mu.Unlock()
				close(b.done)
			}, nil
		}
		p.mu.Unlock()
		select {
		case <-b.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("machine %s: wait for the %s call under way: %w", id, opName(b.op), ctx.Err())
		}
	}
}

// op returns what a call under way does to machine id, if anything.
func (p *Provider) op(id string) provider.State {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.busy[id].op
}

func opName(op provider.State) string {
	if op == provider.Pending {
		return "launch"
	}
	return "terminate"
}

func (p *Provider) machineDir(id string) string { return filepath.Join(p.cfg.Dir, id) }

// agentEnv is an agent's whole environment.
func (p *Provider) agentEnv(dir string) []string {
	var env []string
	for _, k := range passedEnv {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	env = append(env, p.cfg.Env...)
	return append(env, markerEnv+"="+dir)
}

// removeTemps removes the temporary directories of interrupted launches
// (.new-*) and terminations (.trash-*) older than tempMaxAge: younger
// ones may belong to a call under way in another process on the same Dir.
func (p *Provider) removeTemps() error {
	entries, err := os.ReadDir(p.cfg.Dir)
	if err != nil {
		return fmt.Errorf("read machine directory: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, ".new-") && !strings.HasPrefix(name, ".trash-") {
			continue
		}
		info, err := e.Info()
		if err != nil || time.Since(info.ModTime()) < tempMaxAge {
			continue
		}
		if err := os.RemoveAll(filepath.Join(p.cfg.Dir, name)); err != nil {
			return fmt.Errorf("remove leftover %s: %w", name, err)
		}
	}
	return nil
}

// pruneLogs removes the kept agent logs older than LogRetention.
func (p *Provider) pruneLogs() error {
	logs := filepath.Join(p.cfg.Dir, logsDir)
	entries, err := os.ReadDir(logs)
	if err != nil {
		return fmt.Errorf("prune agent logs: %w", err)
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || time.Since(info.ModTime()) < LogRetention {
			continue
		}
		if err := os.Remove(filepath.Join(logs, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("prune agent logs: %w", err)
		}
	}
	return nil
}

// validateRequest reports every field of req that a local machine cannot
// be launched with.
func validateRequest(req provider.LaunchRequest) error {
	var errs []error
	if err := validateID(req.Node); err != nil {
		errs = append(errs, err)
	}
	if req.Pool == "" {
		errs = append(errs, errors.New("Pool: must be set"))
	}
	if req.Intent == "" {
		errs = append(errs, errors.New("Intent: must be set"))
	}
	if req.Agent.ServerURL == "" {
		errs = append(errs, errors.New("Agent.ServerURL: must be set"))
	}
	if strings.TrimSpace(req.Agent.Token) == "" {
		errs = append(errs, errors.New("Agent.Token: must be set"))
	} else if strings.ContainsAny(req.Agent.Token, "\r\n") {
		errs = append(errs, errors.New("Agent.Token: must be one line"))
	}
	return errors.Join(errs...)
}

// validateID checks a node name, which is also the machine's ID.
func validateID(id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("node %q: must be 1 to 63 of a-z, 0-9, '_', '.', '-', starting with a letter or digit", id)
	}
	return nil
}

// marks is the scan for marked agents, made at most once per List or
// Terminate and only if some machine has no pid file.
type marks struct {
	done  bool
	found map[string]procRef
	err   error
}

func (m *marks) get() (map[string]procRef, error) {
	if !m.done {
		m.found, m.err = markedLeaders()
		m.done = true
	}
	return m.found, m.err
}
