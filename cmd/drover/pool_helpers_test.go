package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/api"
)

// The pool tests run a real 'drover server' (a faultCluster with no agents
// of its own) whose pool manager launches its agents with the real local
// provider: 'drover agent' processes under the server's
// DATA/machines/POOL. What they check is what a user of the pool sees
// through the API, and what runs on the host (/proc).

// poolGrace is the server's --node-grace in the pool tests: the default,
// since the agents a local pool launches sync at their default interval.
const poolGrace = 15 * time.Second

// newPoolCluster starts a server on loopback, with no agents.
func newPoolCluster(t *testing.T) *faultCluster {
	t.Helper()
	fc := newFaultCluster(t, "127.0.0.1", poolGrace)
	fc.startServer()
	return fc
}

// readExample reads a shipped example pool file, as written.
func readExample(t *testing.T, name string) []byte {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "..", "examples", "pools", name))
	require.NoError(t, err)
	return doc
}

// machinesDir is where the local provider keeps a pool's machines.
func (fc *faultCluster) machinesDir(pool string) string {
	return filepath.Join(fc.dir, "server", "machines", pool)
}

// getPool returns a pool with its machines, as the API shows it.
func (fc *faultCluster) getPool(name string) (api.Pool, error) {
	ctx, cancel := fc.ctx()
	defer cancel()
	return fc.c.GetPool(ctx, name)
}

// mustPool is getPool for a pool that must be there.
func (fc *faultCluster) mustPool(name string) api.Pool {
	fc.t.Helper()
	p, err := fc.getPool(name)
	require.NoError(fc.t, err, "get pool %s", name)
	return p
}

// poolNodes lists the nodes of a pool.
func (fc *faultCluster) poolNodes(name string) ([]api.Node, error) {
	ctx, cancel := fc.ctx()
	defer cancel()
	return fc.c.ListNodesInPool(ctx, name)
}

// liveMachines returns the machines of a pool that have not ended:
// launching, starting, ready, draining or terminating.
func liveMachines(p api.Pool) []api.Machine {
	var out []api.Machine
	for _, m := range p.Machines {
		if m.State != "terminated" && m.State != "failed" {
			out = append(out, m)
		}
	}
	return out
}

// machinesIn returns the machines of a pool in one state.
func machinesIn(p api.Pool, state string) []api.Machine {
	var out []api.Machine
	for _, m := range p.Machines {
		if m.State == state {
			out = append(out, m)
		}
	}
	return out
}

// describeMachines is a short line per machine, for failure messages.
func describeMachines(ms []api.Machine) string {
	var b strings.Builder
	for _, m := range ms {
		fmt.Fprintf(&b, "[%s node %s %s %q] ", m.ID, m.Node, m.State, m.Reason)
	}
	return b.String()
}

// agentProcs lists the live agent processes of a pool: the processes of
// the binary running 'agent' whose command line names the pool's machines
// directory (their --data is under it).
func (fc *faultCluster) agentProcs(pool string) []proc {
	var out []proc
	for _, p := range procsOf(fc.machinesDir(pool), false) {
		if strings.HasPrefix(p.cmdline, filepath.Join(binDir, "drover")+" agent ") {
			out = append(out, p)
		}
	}
	return out
}

// agentNodes returns the nodes of agent processes (their --name), each
// once: a child the agent has forked but not yet exec'd (a task starting)
// shows the agent's own command line for a moment.
func agentNodes(ps []proc) map[string]bool {
	out := map[string]bool{}
	for _, p := range ps {
		f := strings.Fields(p.cmdline)
		if i := slices.Index(f, "--name"); i >= 0 && i+1 < len(f) {
			out[f[i+1]] = true
		}
	}
	return out
}

// agentPid reads the pid file the local provider keeps for a machine
// (DATA/machines/POOL/NODE/pid: pid, start time and boot id) and returns
// the pid, checked to be that very process still.
func (fc *faultCluster) agentPid(pool, node string) int {
	fc.t.Helper()
	data, err := os.ReadFile(filepath.Join(fc.machinesDir(pool), node, "pid"))
	require.NoError(fc.t, err, "the local provider's pid file of node %s", node)
	var ref struct {
		Pid       int    `json:"pid"`
		StartTime uint64 `json:"start_time"`
	}
	require.NoError(fc.t, json.Unmarshal(data, &ref), "pid file of node %s: %s", node, data)
	require.True(fc.t, processAlive(ref.Pid, ref.StartTime), "the agent of node %s (pid %d) is not alive", node, ref.Pid)
	return ref.Pid
}

// poolWatch polls a pool in the background while a test runs, and keeps
// the most machines and agent processes it saw alive at once, and every
// node it saw in the pool.
type poolWatch struct {
	fc   *faultCluster
	pool string
	stop chan struct{}
	done chan struct{}

	mu         sync.Mutex
	polls      int
	peak       int // live machines
	peakAgents int // nodes with an agent process
	peakSeen   string
	nodes      map[string]api.Node
	errs       []string
}

// watchPool starts a poolWatch; stop it with (*poolWatch).end.
func (fc *faultCluster) watchPool(pool string) *poolWatch {
	w := &poolWatch{fc: fc, pool: pool, stop: make(chan struct{}), done: make(chan struct{}), nodes: map[string]api.Node{}}
	go w.run()
	fc.t.Cleanup(w.end)
	return w
}

// watchEvery is the watch's step: often enough to see a machine too many
// (a launch takes far longer), seldom enough not to load 2 cores.
const watchEvery = 100 * time.Millisecond

func (w *poolWatch) run() {
	defer close(w.done)
	t := time.NewTicker(watchEvery)
	defer t.Stop()
	for {
		w.once()
		select {
		case <-w.stop:
			return
		case <-t.C:
		}
	}
}

func (w *poolWatch) once() {
	p, err := w.fc.getPool(w.pool)
	ns, nerr := w.fc.poolNodes(w.pool)
	agents := len(agentNodes(w.fc.agentProcs(w.pool)))
	w.mu.Lock()
	defer w.mu.Unlock()
	w.polls++
	if err != nil || nerr != nil {
		// The API answers within a second here; say it once it fails.
		if len(w.errs) < 5 {
			w.errs = append(w.errs, fmt.Sprint(err, nerr))
		}
		return
	}
	if live := liveMachines(p); len(live) > w.peak {
		w.peak, w.peakSeen = len(live), describeMachines(live)
	}
	w.peakAgents = max(w.peakAgents, agents)
	for _, n := range ns {
		if _, ok := w.nodes[n.Name]; !ok {
			w.nodes[n.Name] = n
		}
	}
}

// end stops the watch and waits for it; it may be called again.
func (w *poolWatch) end() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// result returns what the watch saw, after end.
func (w *poolWatch) result() (polls, peak, peakAgents int, peakSeen string, nodes map[string]api.Node, errs []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.polls, w.peak, w.peakAgents, w.peakSeen, w.nodes, w.errs
}

// createPool creates a pool from a pool file.
func (fc *faultCluster) createPool(doc []byte) api.Pool {
	fc.t.Helper()
	ctx, cancel := fc.ctx()
	defer cancel()
	p, err := fc.c.CreatePool(ctx, doc)
	require.NoError(fc.t, err, "create pool:\n%s", doc)
	return p
}

// waitPool polls a pool until ok holds for it and returns it.
func (fc *faultCluster) waitPool(name string, within time.Duration, what string, ok func(api.Pool) bool) api.Pool {
	fc.t.Helper()
	var p api.Pool
	fc.waitFor(within, "pool "+name+": "+what, func() (bool, string) {
		var err error
		if p, err = fc.getPool(name); err != nil {
			return false, err.Error()
		}
		return ok(p), fmt.Sprintf("desired %d, actual %d, last decision %q, machines %s", p.Desired, p.Actual, p.LastDecision, describeMachines(p.Machines))
	})
	return p
}

// taskSpan returns when the first of a job's tasks started and the last
// ended, as the server recorded them.
func taskSpan(t *testing.T, j api.Job) (firstStart, lastEnd time.Time) {
	t.Helper()
	for _, tk := range j.Tasks {
		require.NotNil(t, tk.StartedAt, "task %s has no start time", tk.ID)
		require.NotNil(t, tk.FinishedAt, "task %s has no end time", tk.ID)
		if firstStart.IsZero() || tk.StartedAt.Before(firstStart) {
			firstStart = *tk.StartedAt
		}
		if tk.FinishedAt.After(lastEnd) {
			lastEnd = *tk.FinishedAt
		}
	}
	return firstStart, lastEnd
}

// waitCtx is a context for one long wait of a pool test.
func waitCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), faultWait)
}
