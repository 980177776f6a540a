package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/client"
	"github.com/drover-dev/drover/internal/pool"
	"github.com/drover-dev/drover/internal/pool/manager"
)

// The pool fault tests drive pools of a real 'drover server' (a
// faultCluster, started on its own so that it can be killed alone) through
// its API and CLI, with machines that are real processes: agents of the
// local provider, a start command that never registers, agents started
// over ssh. They check the startup watchdog and its backoff, and that a
// server killed in the middle of a launch leaks no machine and starts none
// twice. Like the other fault tests they run one after another and skip
// under -short.

// poolFault is a fault cluster driven through its pools.
type poolFault struct {
	*faultCluster
}

// newPoolFault prepares a cluster on loopback; start its server with
// startServer or startServerFailpoint.
func newPoolFault(t *testing.T) *poolFault {
	t.Helper()
	return &poolFault{newFaultCluster(t, "127.0.0.1", 3*time.Second)}
}

// startServerFailpoint starts the server with DROVER_FAILPOINT=fp, so that
// it kills itself with SIGKILL at that point of its first launch. Later
// starts (startServer) run without it.
func (pf *poolFault) startServerFailpoint(fp string) {
	pf.t.Helper()
	saved := pf.serverArgs
	// env execs the server in its own process: the pid, the log and the
	// kill are the server's.
	pf.serverArgs = append([]string{"env", "DROVER_FAILPOINT=" + fp}, saved...)
	defer func() { pf.serverArgs = saved }()
	pf.startServer()
}

// machinesDir is where the server's local provider keeps a pool's
// machines (manager.Providers): one directory per machine, named after its
// node, which is also the working directory of the machine's processes.
func (pf *poolFault) machinesDir(poolName string) string {
	return filepath.Join(pf.dir, "server", "machines", poolName)
}

// createPool creates a pool from a pool file.
func (pf *poolFault) createPool(doc string) api.Pool {
	pf.t.Helper()
	ctx, cancel := pf.ctx()
	defer cancel()
	p, err := pf.c.CreatePool(ctx, []byte(doc))
	require.NoError(pf.t, err, "create pool:\n%s", doc)
	return p
}

// pool returns a pool with its machines.
func (pf *poolFault) pool(name string) api.Pool {
	pf.t.Helper()
	ctx, cancel := pf.ctx()
	defer cancel()
	p, err := pf.c.GetPool(ctx, name)
	require.NoError(pf.t, err, "get pool %s", name)
	return p
}

// destroyPool destroys a pool with --force and checks it is gone.
func (pf *poolFault) destroyPool(name string) {
	pf.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), faultWait)
	defer cancel()
	require.NoError(pf.t, pf.c.DestroyPool(ctx, name, true), "destroy pool %s --force", name)
	_, err := pf.c.GetPool(ctx, name)
	var he *client.Error
	require.ErrorAs(pf.t, err, &he, "pool %s after destroy", name)
	require.Equal(pf.t, 404, he.Status, "pool %s after destroy: %v", name, err)
}

// poolEvents returns the events of a reason, oldest first.
func (pf *poolFault) poolEvents(reason string) []api.Event {
	pf.t.Helper()
	ctx, cancel := pf.ctx()
	defer cancel()
	es, err := pf.c.Events(ctx, reason, 0, 10000)
	require.NoError(pf.t, err, "events %s", reason)
	return es
}

// drover runs the drover CLI against the cluster as its admin and returns
// its combined output.
func (pf *poolFault) drover(args ...string) (string, error) {
	pf.t.Helper()
	ctx, cancel := pf.ctx()
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "drover"), args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + pf.dir, "DROVER_ADDR=" + pf.url}
	if tok := pf.token.Load(); tok != nil {
		cmd.Env = append(cmd.Env, "DROVER_TOKEN="+*tok)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// machineByID finds a machine of a pool.
func machineByID(p api.Pool, id string) (api.Machine, bool) {
	i := slices.IndexFunc(p.Machines, func(m api.Machine) bool { return m.ID == id })
	if i < 0 {
		return api.Machine{}, false
	}
	return p.Machines[i], true
}

// describePool is a pool's state and machines in one line, for failures.
func describePool(p api.Pool) string {
	var ms []string
	for _, m := range p.Machines {
		ms = append(ms, fmt.Sprintf("%s(%s %s %q)", m.ID, m.Node, m.State, m.Reason))
	}
	return fmt.Sprintf("desired %d actual %d failures %d backoff %v decision %q machines %v",
		p.Desired, p.Actual, p.Failures, p.BackoffUntil, p.LastDecision, ms)
}

// machineProcs lists the live processes of a pool's local machines by
// node: those whose working directory is the machine's directory (the
// agent, or whatever the pool's binary is). A machine's tasks run deeper,
// in its agent's sandboxes, and are not listed.
func (pf *poolFault) machineProcs(poolName string) map[string][]proc {
	dir := pf.machinesDir(poolName)
	out := map[string][]proc{}
	for _, p := range procsOf(dir, true) {
		if filepath.Dir(p.cwd) == dir {
			node := filepath.Base(p.cwd)
			out[node] = append(out[node], p)
		}
	}
	return out
}

// countProcs counts the processes of machineProcs.
func countProcs(byNode map[string][]proc) int {
	n := 0
	for _, ps := range byNode {
		n += len(ps)
	}
	return n
}

// listProcs shows machineProcs.
func listProcs(byNode map[string][]proc) string {
	var all []proc
	for _, ps := range byNode {
		all = append(all, ps...)
	}
	return procList(all)
}

// hangScript is a pool's agent binary that never registers: it ignores
// the agent's arguments and sleeps.
const hangScript = "#!/bin/sh\nexec sleep 600\n"

// TestPoolStartTimeoutBackoff runs a fixed pool of one whose machines never
// register (their start command hangs): each is terminated once its
// start_timeout has passed, its process gone and its record failed naming
// start_timeout, and replaced; after max_failures failures in a row the
// pool stops launching and says why, in its API, its events and 'drover
// pool show'.
func TestPoolStartTimeoutBackoff(t *testing.T) {
	pf := newPoolFault(t)
	pf.startServer()
	script := filepath.Join(pf.dir, "hang.sh")
	require.NoError(t, os.WriteFile(script, []byte(hangScript), 0o755))
	startTimeout, maxFailures := 2*time.Second, 2
	pf.createPool(fmt.Sprintf(`pool: hang
provider: local
node: {binary: %q}
min: 0
max: 1
policy: {fixed: {size: 1}}
start_timeout: %s
max_failures: %d
`, script, startTimeout, maxFailures))

	// Each machine: its process while it starts, then its failure.
	var ids []string
	for i := range maxFailures {
		var m api.Machine
		pf.waitFor(faultWait, fmt.Sprintf("machine %d of pool hang starting", i+1), func() (bool, string) {
			p := pf.pool("hang")
			for _, pm := range p.Machines {
				if !slices.Contains(ids, pm.ID) && pm.State == "starting" {
					m = pm
					return true, ""
				}
			}
			return false, describePool(p)
		})
		ids = append(ids, m.ID)
		var pid int
		var started uint64
		pf.waitFor(faultWait, "the process of machine "+m.ID, func() (bool, string) {
			ps := pf.machineProcs("hang")[m.Node]
			if len(ps) != 1 || !strings.Contains(ps[0].cmdline, "sleep 600") {
				return false, listProcs(pf.machineProcs("hang"))
			}
			pid = ps[0].pid
			var err error
			started, err = procStartTime(pid)
			return err == nil, fmt.Sprint(err)
		})
		pf.waitFor(faultWait, "machine "+m.ID+" failed", func() (bool, string) {
			p := pf.pool("hang")
			got, _ := machineByID(p, m.ID)
			m = got
			return got.State == "failed", describePool(p)
		})
		require.Contains(t, m.Reason, "start_timeout", "machine %s", m.ID)
		require.NotNil(t, m.EndedAt, "machine %s", m.ID)
		took := m.EndedAt.Sub(m.LaunchedAt)
		require.GreaterOrEqual(t, took, startTimeout, "machine %s failed %s after its launch, before its start_timeout", m.ID, secs(took))
		// How soon after start_timeout is a figure (logged), not an
		// assertion: a loaded machine may run the round late.
		// The record says failed only once the provider has stopped it.
		require.False(t, processAlive(pid, started), "machine %s failed, but its process %d lives", m.ID, pid)
		t.Logf("figure: machine %d of a pool with start_timeout %s: terminated as failed %s after its launch", i+1, startTimeout, secs(took))
	}

	// The second failure in a row backs the pool off: the round after it
	// decides not to launch, and says so.
	var p api.Pool
	pf.waitFor(faultWait, "pool hang backing off", func() (bool, string) {
		p = pf.pool("hang")
		return strings.Contains(p.LastDecision, "backs off until"), describePool(p)
	})
	require.GreaterOrEqual(t, p.Failures, maxFailures, describePool(p))
	require.NotNil(t, p.BackoffUntil, describePool(p))
	last, _ := machineByID(p, ids[len(ids)-1])
	wait := p.BackoffUntil.Sub(*last.EndedAt)
	require.InDelta(t, pool.DefaultBackoff.Seconds(), wait.Seconds(), 1, "backoff after the last failure: %s", secs(wait))
	require.Equal(t, 0, p.Actual, describePool(p))
	require.Len(t, p.Machines, maxFailures, "no launch after the backoff began: %s", describePool(p))
	for _, m := range p.Machines {
		require.Equal(t, "failed", m.State, describePool(p))
	}
	// And the rounds after it launch nothing either.
	pf.observeRounds(2, func() {
		p := pf.pool("hang")
		require.Len(t, p.Machines, maxFailures, "a launch while backing off: %s", describePool(p))
		require.Empty(t, pf.machineProcs("hang"), "processes of pool hang while it backs off")
	})
	backoffs := pf.poolEvents("pool_backoff")
	require.Len(t, backoffs, 1, "pool_backoff events")
	require.Contains(t, backoffs[0].Message, "pool hang: 2 launches in a row failed")
	require.Contains(t, backoffs[0].Message, "start_timeout")
	failed := pf.poolEvents("machine_failed")
	require.Len(t, failed, maxFailures, "machine_failed events")

	out, err := pf.drover("pool", "show", "hang")
	require.NoError(t, err, out)
	require.Regexp(t, regexp.MustCompile(`(?m)^failures: +2 in a row \(max 2\)$`), out)
	require.Regexp(t, regexp.MustCompile(`(?m)^backoff: +until \S+ \S+ \(\d+s more\)$`), out)
	require.Regexp(t, regexp.MustCompile(`(?m)^last decision: +fixed: keep 1; wants 1, has 0, but backs off until `), out)
	for _, id := range ids {
		require.Regexp(t, regexp.MustCompile(`(?m)^`+id+` +\S+ +failed +\S+ +its agent did not register within start_timeout 2s$`), out)
	}
	t.Logf("drover pool show hang:\n%s", out)

	pf.destroyPool("hang")
	require.Empty(t, procsOf(pf.machinesDir("hang"), false), "processes of pool hang after destroy --force")
}

// TestPoolLeakAfterLaunch kills the server with SIGKILL in the middle of a
// launch (DROVER_FAILPOINT) and restarts it. Killed after the provider
// started the machine but before the record says so, the restarted server
// adopts the machine, which becomes ready: one agent, never two. Killed
// after the intent was recorded but before the provider was called, it
// drops the record after start_timeout and launches a new machine; the
// dropped launch never gets a process. Either way, destroy --force leaves
// no process behind.
func TestPoolLeakAfterLaunch(t *testing.T) {
	skipIfShort(t)
	t.Run("after-launch", testPoolLeakAfterLaunch)
	t.Run("after-intent", testPoolLeakAfterIntent)
}

// leakPool is the pool file of the leak tests.
func leakPool(startTimeout time.Duration) string {
	return fmt.Sprintf(`pool: leak
provider: local
min: 0
max: 2
policy: {fixed: {size: 1}}
start_timeout: %s
`, startTimeout)
}

// createPoolDying creates a pool on a server that may kill itself (a
// failpoint) before it answers, and waits until it is dead.
func (pf *poolFault) createPoolDying(doc string) {
	pf.t.Helper()
	ctx, cancel := pf.ctx()
	defer cancel()
	_, err := pf.c.CreatePool(ctx, []byte(doc))
	// The pool manager's round may reach the failpoint between the
	// create's commit and its answer; then the answer is lost, and the
	// restarted server must show the pool.
	if err != nil {
		var he *client.Error
		require.False(pf.t, errors.As(err, &he), "create pool: the server refused it: %v", err)
		pf.t.Logf("create pool: the server died before it answered: %v", err)
	}
	select {
	case <-pf.server.exited:
	case <-time.After(faultWait):
		pf.t.Fatalf("the server did not reach its failpoint within %s:\n%s", faultWait, pf.logTail("server"))
	}
	log, _ := os.ReadFile(pf.server.logPath)
	require.Contains(pf.t, string(log), "failpoint: killing the server", "the server died, but not at its failpoint")
}

func testPoolLeakAfterLaunch(t *testing.T) {
	pf := newPoolFault(t)
	pf.startServerFailpoint("after-launch")
	pf.createPoolDying(leakPool(20 * time.Second))
	// The agent runs, though the dead server's record still says
	// launching.
	var leaked string
	pf.waitFor(faultWait, "the launched agent's process", func() (bool, string) {
		ps := pf.machineProcs("leak")
		for node := range ps {
			leaked = node
		}
		return countProcs(ps) == 1, listProcs(ps)
	})
	require.Contains(t, pf.machineProcs("leak")[leaked][0].cmdline, "drover agent")

	pf.startServer()
	restarted := pf.server.started
	var p api.Pool
	pf.waitFor(faultWait, "the leaked machine adopted and ready", func() (bool, string) {
		ps := pf.machineProcs("leak")
		require.LessOrEqual(t, countProcs(ps), 1, "two machines of a pool of one:\n%s", listProcs(ps))
		p = pf.pool("leak")
		return len(p.Machines) == 1 && p.Machines[0].State == "ready", describePool(p)
	})
	m := p.Machines[0]
	require.Equal(t, leaked, m.Node, "the ready machine is not the one launched before the kill")
	adopted := pf.poolEvents("machine_adopted")
	require.Len(t, adopted, 1, "machine_adopted events")
	require.Contains(t, adopted[0].Message, m.ID)
	require.Contains(t, adopted[0].Message, "adopted")
	n, ok := pf.node(m.Node)
	require.True(t, ok, "node %s", m.Node)
	require.Equal(t, "READY", n.State)
	require.Equal(t, "leak", n.Pool)
	// A few more rounds change nothing: one machine, one agent.
	pf.observeRounds(3, func() {
		ps := pf.machineProcs("leak")
		require.Equal(t, 1, countProcs(ps), "agents of a pool of one:\n%s", listProcs(ps))
		p = pf.pool("leak")
		require.Len(t, p.Machines, 1, describePool(p))
		require.Equal(t, "ready", p.Machines[0].State, describePool(p))
	})
	require.Empty(t, pf.poolEvents("machine_leaked"), "machine_leaked events")
	require.Equal(t, 1, countProcs(pf.machineProcs("leak")), listProcs(pf.machineProcs("leak")))
	require.NotNil(t, m.RegisteredAt, describePool(p))
	t.Logf("figure: server kill -9 after launch: the machine adopted and ready %s after the restart", secs(m.RegisteredAt.Sub(restarted)))

	pf.destroyPool("leak")
	require.Empty(t, procsOf(pf.machinesDir("leak"), false), "processes of pool leak after destroy --force")
}

// observeRounds checks invariants, which must hold at every poll, while
// the pool manager runs n more rounds (one a manager.DefaultTick). It is
// how a test sees that something does not happen (a second launch, an
// agent started twice): the manager records no event for a round that
// changes nothing, so the window is measured in time, not waited on.
func (pf *poolFault) observeRounds(n int, invariants func()) {
	pf.t.Helper()
	end := time.Now().Add(time.Duration(n) * manager.DefaultTick)
	pf.waitFor(faultWait, fmt.Sprintf("%d pool rounds", n), func() (bool, string) {
		invariants()
		return time.Now().After(end), "observing"
	})
}

func testPoolLeakAfterIntent(t *testing.T) {
	pf := newPoolFault(t)
	pf.startServerFailpoint("after-intent")
	startTimeout := 5 * time.Second
	pf.createPoolDying(leakPool(startTimeout))
	// The provider was never called: no machine, no process.
	require.Empty(t, pf.machineProcs("leak"), "processes of a launch that never reached the provider")
	entries, _ := os.ReadDir(pf.machinesDir("leak"))
	require.Empty(t, entries, "machine directories of a launch that never reached the provider")

	pf.startServer()
	restarted := pf.server.started
	var p api.Pool
	pf.waitFor(faultWait, "one machine on record", func() (bool, string) {
		p = pf.pool("leak")
		return len(p.Machines) >= 1, describePool(p)
	})
	// The record of the launch the provider never got: the oldest.
	intent := slices.MinFunc(p.Machines, func(a, b api.Machine) int { return a.LaunchedAt.Compare(b.LaunchedAt) })
	require.Contains(t, []string{"launching", "terminated"}, intent.State, "the intent after the restart: %s", describePool(p))
	pf.waitFor(faultWait, "the intent dropped and a new machine ready", func() (bool, string) {
		ps := pf.machineProcs("leak")
		require.LessOrEqual(t, countProcs(ps), 1, "two machines of a pool of one:\n%s", listProcs(ps))
		require.Empty(t, ps[intent.Node], "a process for the dropped launch %s", intent.ID)
		p = pf.pool("leak")
		dropped, _ := machineByID(p, intent.ID)
		return dropped.State == "terminated" && p.Actual == 1 && slices.ContainsFunc(p.Machines, func(m api.Machine) bool {
			return m.ID != intent.ID && m.State == "ready"
		}), describePool(p)
	})
	dropped, _ := machineByID(p, intent.ID)
	require.Equal(t, "the launch never reached the provider", dropped.Reason)
	require.NotNil(t, dropped.EndedAt)
	require.GreaterOrEqual(t, dropped.EndedAt.Sub(dropped.LaunchedAt), startTimeout, "the intent was dropped before its start_timeout")
	require.Len(t, p.Machines, 2, describePool(p))
	require.Empty(t, pf.poolEvents("machine_adopted"), "an intent that never reached the provider was adopted")
	require.Empty(t, pf.poolEvents("machine_leaked"), "machine_leaked events")
	ps := pf.machineProcs("leak")
	require.Equal(t, 1, countProcs(ps), listProcs(ps))
	var fresh api.Machine
	for _, m := range p.Machines {
		if m.ID != intent.ID {
			fresh = m
		}
	}
	require.Len(t, ps[fresh.Node], 1, "the new machine's agent: %s", listProcs(ps))
	require.NotNil(t, fresh.RegisteredAt, describePool(p))
	_, err := os.Stat(filepath.Join(pf.machinesDir("leak"), intent.Node))
	require.ErrorIs(t, err, os.ErrNotExist, "a machine directory for the dropped launch")
	t.Logf("figure: server kill -9 after intent (start_timeout %s): intent dropped %s after the restart; new machine ready %s after the restart",
		startTimeout, secs(dropped.EndedAt.Sub(restarted)), secs((*fresh.RegisteredAt).Sub(restarted)))

	pf.destroyPool("leak")
	require.Empty(t, procsOf(pf.machinesDir("leak"), false), "processes of pool leak after destroy --force")
}
