// Package sshprov is the ssh provider: a pool of existing hosts (the
// "ad-hoc cluster") reached with ssh. Launching a machine starts a drover
// agent on a listed host that has none of this cluster yet; terminating it
// stops that agent. The hosts themselves are never created or shut down.
//
// Every bit of state lives on the hosts, so a server killed at any moment
// loses nothing: under each host's work dir, a cluster's slot holds the
// tags file (written before the agent starts), the agent's pid and /proc
// start time (written by the agent's own process before it execs drover),
// its token, log and sandboxes. List reads them back; a slot whose agent
// is not alive is free, whatever its tags say.
//
// Host keys are checked against a known_hosts file; an unknown or changed
// key is refused. The package leaves the choice of hosts to launch on,
// and the records of launches, to the pool manager.
package sshprov

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/drover-dev/drover/internal/provider"
)

// Provider starts and stops drover agents on existing hosts over ssh.
//
// A machine's ID is "USER@ADDRESS:PORT/CLUSTER": one host can run one
// agent per cluster, so the ID is stable across relaunches on that host.
//
// The node name of a machine is its host's Name (by default derived from
// its address), not [provider.LaunchRequest.Node]: an existing host keeps
// one node name across relaunches, the one its operator knows it by.
// [provider.Machine.Node] reports the name used.
type Provider struct {
	cfg   Config
	hosts []*host
	byID  map[string]*host
	// locks serialize Launch and Terminate on each host (by host ID), so
	// a Terminate never stops an agent a concurrent Launch is starting.
	locks map[string]*sync.Mutex
	bins  binaries
	log   *slog.Logger
}

var _ provider.Provider = (*Provider)(nil)

// New validates cfg, fills its defaults and reads the hosts' key files.
// The error lists every bad field, each named with its host's index:
// "hosts[1].port: 70000 is out of range".
func New(cfg Config) (*Provider, error) {
	cfg, hosts, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("ssh provider config: %w", err)
	}
	p := &Provider{cfg: cfg, hosts: hosts, byID: map[string]*host{}, locks: map[string]*sync.Mutex{}, log: cfg.Logger}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	p.log = p.log.With("component", "provider.ssh")
	for _, h := range hosts {
		p.byID[h.id] = h
		p.locks[h.id] = &sync.Mutex{}
	}
	return p, nil
}

// record is the tags file of a slot.
type record struct {
	Tags       map[string]string `json:"tags"`
	LaunchedAt time.Time         `json:"launched_at"`
}

// slot is a cluster's slot on one host, as a status script reported it.
type slot struct {
	h     *host
	conn  *conn // open until the caller closes it; nil if err
	alive bool
	rec   *record // nil: no tags file
	err   error
}

// Launch starts an agent of req.Cluster on the first listed host that runs
// none (an agent that is not alive does not count). If an agent launched
// with req.Intent is already running, Launch returns its machine and
// starts nothing. A host where the launch fails is passed over for the
// next. When no host is free, the error wraps [provider.ErrCapacity] (and
// says which hosts could not be reached).
//
// The binary goes to WORKDIR/bin/drover only if its sha256 differs from
// the local one, the token to a 0600 file of the slot (never on a command
// line), and the tags file is written before the agent starts, so List
// finds every agent Launch started even if the server dies mid-call.
func (p *Provider) Launch(ctx context.Context, req provider.LaunchRequest) (provider.Machine, error) {
	if err := validateRequest(req); err != nil {
		return provider.Machine{}, err
	}
	local := req.Agent.Binary
	if local == "" {
		local = p.cfg.Binary
	}
	bin, err := p.bins.info(local)
	if err != nil {
		return provider.Machine{}, err
	}
	slots := p.scan(ctx, req.Cluster)
	defer func() {
		for _, s := range slots {
			if s.conn != nil {
				s.conn.Close()
			}
		}
	}()
	var unreachable []error
	for _, s := range slots {
		switch {
		case s.err != nil:
			unreachable = append(unreachable, s.err)
		case s.alive && s.rec != nil && req.Intent != "" && s.rec.Tags[provider.TagIntent] == req.Intent:
			return p.machine(s.h, req.Cluster, s.rec), nil
		}
	}
	if err := ctx.Err(); err != nil {
		return provider.Machine{}, err
	}
	// A host where the launch fails (no disk, another architecture)
	// does not stop the launch: the next free host gets its turn.
	var failed []error
	busy := 0
	for _, s := range slots {
		if s.err != nil {
			continue
		}
		if s.alive {
			busy++
			continue
		}
		m, taken, err := p.launchOn(ctx, s.conn, req, local, bin)
		switch {
		case taken:
			busy++
		case err == nil:
			return m, nil
		case ctx.Err() != nil:
			return provider.Machine{}, err
		default:
			failed = append(failed, err)
		}
	}
	if len(failed) > 0 {
		return provider.Machine{}, fmt.Errorf("launch on ssh hosts: %w", errors.Join(append(failed, unreachable...)...))
	}
	return provider.Machine{}, fmt.Errorf("launch on ssh hosts: no free host for cluster %s (%d run one of its agents, %d unreachable): %w",
		req.Cluster, busy, len(unreachable), errors.Join(append([]error{provider.ErrCapacity}, unreachable...)...))
}

// validateRequest checks what the hosts' shell and file names depend on.
func validateRequest(req provider.LaunchRequest) error {
	var errs []error
	if !clusterRE.MatchString(req.Cluster) || req.Cluster == "." || req.Cluster == ".." {
		errs = append(errs, fmt.Errorf("cluster: %q must match [A-Za-z0-9_.-]+ (it names a directory on the hosts)", req.Cluster))
	}
	if req.Pool == "" {
		errs = append(errs, errors.New("pool: required"))
	}
	if req.Agent.ServerURL == "" {
		errs = append(errs, errors.New("agent.serverurl: required"))
	}
	if req.Agent.Token == "" {
		errs = append(errs, errors.New("agent.token: required"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("launch request: %w", err)
	}
	return nil
}

var clusterRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// launchOn starts req's agent through c, holding the host's lock; local
// is the binary to copy. busy says the host was taken since the scan.
func (p *Provider) launchOn(ctx context.Context, c *conn, req provider.LaunchRequest, local string, bin binaryInfo) (_ provider.Machine, busy bool, _ error) {
	h := c.h
	mu := p.locks[h.id]
	mu.Lock()
	defer mu.Unlock()
	s := p.status(ctx, c, req.Cluster)
	if s.err != nil {
		return provider.Machine{}, false, s.err
	}
	if s.alive {
		return provider.Machine{}, true, nil
	}
	out, err := c.run(ctx, "prepare work dir", prepareScript(h.WorkDir), nil)
	if err != nil {
		return provider.Machine{}, false, err
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		return provider.Machine{}, false, fmt.Errorf("host %s: prepare work dir: unexpected output %q", h.addr(), out)
	}
	wd, uname, remoteSum := lines[0], lines[1], lines[2]
	if err := bin.checkPlatform(uname); err != nil {
		return provider.Machine{}, false, fmt.Errorf("host %s: %w", h.addr(), err)
	}
	if remoteSum != bin.sha256 {
		if err := p.install(ctx, c, wd, local, bin); err != nil {
			return provider.Machine{}, false, err
		}
	}

	rec := record{Tags: map[string]string{
		provider.TagPool:    req.Pool,
		provider.TagCluster: req.Cluster,
		provider.TagIntent:  req.Intent,
		provider.TagNode:    h.Name,
	}, LaunchedAt: time.Now().UTC()}
	tags, err := json.Marshal(rec)
	if err != nil {
		return provider.Machine{}, false, fmt.Errorf("host %s: encode tags: %w", h.addr(), err)
	}
	slotAbs := path.Join(wd, slotDir(req.Cluster))
	files := []slotFile{
		{tagsFile, "write tags", tags},
		{tokenFile, "write token", []byte(req.Agent.Token + "\n")},
	}
	ca := ""
	if len(req.Agent.CACert) > 0 {
		ca = path.Join(slotAbs, caFile)
		files = append(files, slotFile{caFile, "write CA bundle", req.Agent.CACert})
	}
	for _, f := range files {
		if _, err := c.run(ctx, f.step, writeFileScript(wd, req.Cluster, f.name), bytes.NewReader(f.data)); err != nil {
			return provider.Machine{}, false, p.undo(c, wd, req.Cluster, err)
		}
	}
	agent := req.Agent
	agent.Capabilities = maps.Clone(req.Agent.Capabilities)
	if agent.Capabilities == nil && len(h.Capabilities) > 0 {
		agent.Capabilities = map[string]string{}
	}
	maps.Copy(agent.Capabilities, h.Capabilities)
	argv := append([]string{path.Join(wd, binPath)},
		agent.Args(h.Name, path.Join(slotAbs, dataDir), path.Join(slotAbs, tokenFile), ca)...)
	out, err = c.run(ctx, "start agent", startScript(wd, req.Cluster, argv), nil)
	if err != nil {
		return provider.Machine{}, false, p.undo(c, wd, req.Cluster, err)
	}
	p.log.InfoContext(ctx, "agent started", "host", h.id, "cluster", req.Cluster, "pool", req.Pool,
		"node", h.Name, "pid", strings.Fields(out)[0])
	return p.machine(h, req.Cluster, &rec), false, nil
}

// slotFile is a file Launch writes to a slot.
type slotFile struct {
	name, step string
	data       []byte
}

// install copies the local binary to the host and checks what arrived.
func (p *Provider) install(ctx context.Context, c *conn, wd, local string, bin binaryInfo) error {
	f, err := os.Open(local)
	if err != nil {
		return fmt.Errorf("drover binary: %w", err)
	}
	defer f.Close()
	out, err := c.run(ctx, "copy drover binary", installScript(wd), f)
	if err != nil {
		return err
	}
	if got := strings.TrimSpace(out); got != bin.sha256 {
		return fmt.Errorf("host %s: copy drover binary: sha256 %s arrived, %s was sent (was %s changed meanwhile?)", c.h.addr(), got, bin.sha256, local)
	}
	p.log.InfoContext(ctx, "drover binary copied", "host", c.h.id, "sha256", bin.sha256)
	return nil
}

// undo frees a slot whose launch failed midway, so its tags do not
// outlive it; the launch's error is returned with any error of the undo.
func (p *Provider) undo(c *conn, wd, cluster string, err error) error {
	// The launch's ctx may be what failed; the cleanup gets its own.
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.DialTimeout+p.cfg.StopTimeout)
	defer cancel()
	if _, uerr := c.run(ctx, "undo launch", stopScript(wd, cluster, tenths(p.cfg.StopTimeout)), nil); uerr != nil {
		return errors.Join(err, uerr)
	}
	return err
}

// Terminate stops the machine's agent: SIGTERM, up to StopTimeout for it
// to stop its tasks, then SIGKILL of its process group. It then removes
// the slot's tags, pid and token files; the log and sandboxes stay for
// post-mortems. A machine whose agent is already gone is not an error; an
// ID naming no listed host is.
func (p *Provider) Terminate(ctx context.Context, id string) error {
	hostID, cluster, ok := strings.Cut(id, "/")
	h := p.byID[hostID]
	if !ok || h == nil || !clusterRE.MatchString(cluster) {
		return fmt.Errorf("terminate %q: not a machine of this provider's hosts (USER@ADDRESS:PORT/CLUSTER)", id)
	}
	mu := p.locks[h.id]
	mu.Lock()
	defer mu.Unlock()
	c, err := p.dial(ctx, h)
	if err != nil {
		return fmt.Errorf("terminate %s: %w", id, err)
	}
	defer c.Close()
	wd := h.WorkDir
	out, err := c.run(ctx, "stop agent", stopScript(wd, cluster, tenths(p.cfg.StopTimeout)), nil)
	if err != nil {
		return fmt.Errorf("terminate %s: %w", id, err)
	}
	p.log.InfoContext(ctx, "agent terminated", "host", h.id, "cluster", cluster, "how", strings.TrimSpace(out))
	return nil
}

// tenths is d in tenths of a second, the step of the scripts' waits.
func tenths(d time.Duration) int { return int(d / (100 * time.Millisecond)) }

// List returns the machines of pool in cluster: each host whose slot of
// the cluster has a live agent tagged with pool. It asks every host
// (in parallel); if some cannot be reached, the error names each of them
// and no list is returned, since a missing machine would look terminated.
func (p *Provider) List(ctx context.Context, pool, cluster string) ([]provider.Machine, error) {
	if !clusterRE.MatchString(cluster) {
		return nil, fmt.Errorf("list: cluster %q must match [A-Za-z0-9_.-]+", cluster)
	}
	slots := p.scan(ctx, cluster)
	var errs []error
	var ms []provider.Machine
	for _, s := range slots {
		if s.conn != nil {
			s.conn.Close()
		}
		switch {
		case s.err != nil:
			errs = append(errs, s.err)
		case s.alive && s.rec != nil && s.rec.Tags[provider.TagPool] == pool && s.rec.Tags[provider.TagCluster] == cluster:
			ms = append(ms, p.machine(s.h, cluster, s.rec))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("list ssh hosts: %w", err)
	}
	return ms, nil
}

// scanParallel bounds the hosts scan talks to at once.
const scanParallel = 16

// scan connects to every host and reads its slot of cluster, in
// parallel. Slots come in the hosts' order; each open connection is the
// caller's to close.
func (p *Provider) scan(ctx context.Context, cluster string) []slot {
	slots := make([]slot, len(p.hosts))
	sem := make(chan struct{}, scanParallel)
	var wg sync.WaitGroup
	for i, h := range p.hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			c, err := p.dial(ctx, h)
			if err != nil {
				slots[i] = slot{h: h, err: err}
				return
			}
			slots[i] = p.status(ctx, c, cluster)
			if slots[i].err != nil {
				c.Close()
				slots[i].conn = nil
			}
		}()
	}
	wg.Wait()
	return slots
}

// status reads a cluster's slot through c.
func (p *Provider) status(ctx context.Context, c *conn, cluster string) slot {
	s := slot{h: c.h, conn: c}
	out, err := c.run(ctx, "read agent status", statusScript(c.h.WorkDir, cluster), nil)
	if err != nil {
		s.err = err
		return s
	}
	first, rest, _ := strings.Cut(out, "\n")
	s.alive = first == "alive"
	if strings.TrimSpace(rest) != "" {
		var rec record
		if err := json.Unmarshal([]byte(rest), &rec); err != nil {
			s.err = fmt.Errorf("host %s: %s/%s/%s: %w", c.h.addr(), c.h.WorkDir, slotDir(cluster), tagsFile, err)
			return s
		}
		s.rec = &rec
	}
	return s
}

// machine describes a slot's live agent.
func (p *Provider) machine(h *host, cluster string, rec *record) provider.Machine {
	return provider.Machine{
		ID:         h.id + "/" + cluster,
		Node:       rec.Tags[provider.TagNode],
		Pool:       rec.Tags[provider.TagPool],
		Cluster:    rec.Tags[provider.TagCluster],
		Intent:     rec.Tags[provider.TagIntent],
		State:      provider.Running,
		Address:    h.Address,
		LaunchedAt: rec.LaunchedAt,
		Tags:       maps.Clone(rec.Tags),
	}
}
