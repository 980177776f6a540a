package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/client"
)

// The pool tests drive elastic pools end to end with the real local
// provider: the server's pool manager launches, watches, drains and
// terminates real agent processes, which run real task processes. Like the
// fault tests they run one after another (they measure times) and print
// their figures with t.Logf "figure: ...", which docs/performance.md
// records:
//
//	go test ./cmd/drover -count=1 -v -run 'TestPool(BurstLocal|ScaleDownKeepsRunningTask|FixedReplacesKilledAgent)$'
//
// Every wait is a bounded poll of the API or of /proc.

// TestPoolBurstLocal is the "local provider, end to end": the
// shipped examples/pools/burst.yaml (a queue pool, min 0, max 4) gets a job
// of 40 tasks of 2s; it scales up from zero to its max, never past it, runs
// every task on its own nodes, and goes back to zero machines once they
// have been idle for idle_timeout. The scale-down runs with the pool
// updated to a copy of the file with cooldown.down 1s (the default 30s
// would remove the machines that went idle last only 30s after the first).
func TestPoolBurstLocal(t *testing.T) {
	fc := newPoolCluster(t)
	shipped := readExample(t, "burst.yaml")
	created := fc.createPool(shipped)
	require.Equal(t, "burst", created.Name)
	require.Equal(t, "queue", created.Policy)
	require.Equal(t, "10s", created.Spec.IdleTimeout)

	// With no work waiting, a round decides to launch nothing.
	p := fc.waitPool("burst", faultWait, "a first decision", func(p api.Pool) bool { return p.LastDecision != "" })
	require.Empty(t, p.Machines, "machines of an idle pool of min 0: %s", p.LastDecision)
	require.Zero(t, p.Desired, p.LastDecision)

	w := fc.watchPool("burst")
	key := "pool/burst/e2e"
	submitted := time.Now()
	fc.submit(`job: pool/burst/e2e
instances: 40
pool: burst
task:
  command: [sleep, "2"]
  resources: {cpu: 500, memory: 16MiB}
retry: {attempts: 0}
reschedule: {attempts: 0}
`)
	j := fc.waitJobEnd(key)
	requireSucceededOnce(t, j)
	require.Len(t, j.Tasks, 40, "one task per instance: no task was LOST to a machine coming or going")
	firstStart, lastEnd := taskSpan(t, j)

	// The scale-down, with scale-downs allowed a second apart.
	faster := strings.Replace(string(shipped), "idle_timeout: 10s\n", "idle_timeout: 10s\ncooldown: {down: 1s}\n", 1)
	require.NotEqual(t, string(shipped), faster, "burst.yaml has no line 'idle_timeout: 10s'")
	ctx, cancel := fc.ctx()
	_, err := fc.c.UpdatePool(ctx, "burst", []byte(faster))
	cancel()
	require.NoError(t, err)

	zero := fc.waitPool("burst", faultWait, "back to zero machines", func(p api.Pool) bool {
		return len(liveMachines(p)) == 0 && p.Actual == 0
	})
	w.end()
	polls, peak, peakAgents, peakSeen, seen, errs := w.result()
	require.Empty(t, errs, "the pool watch could not read the pool")
	require.Equal(t, 4, peak, "most live machines at once (of %d polls); want the pool's max 4 for 40 tasks; at the peak: %s", polls, peakSeen)
	require.LessOrEqual(t, peakAgents, 4, "nodes with an agent process of the pool alive at once")

	// Every task ran on a node the pool launched, which carried the
	// pool's attributes.
	perNode := map[string]int{}
	lastOn := map[string]time.Time{}
	for _, tk := range j.Tasks {
		n, ok := seen[tk.Node]
		require.True(t, ok, "task %s ran on %q, not a node of pool burst", tk.ID, tk.Node)
		require.Equal(t, "burst", n.Pool, "node %s", n.Name)
		require.Equal(t, "burst", n.Attributes["pool"], "node %s: attributes %v", n.Name, n.Attributes)
		require.Equal(t, "true", n.Attributes["burst"], "node %s: attributes %v", n.Name, n.Attributes)
		perNode[tk.Node]++
		if tk.FinishedAt.After(lastOn[tk.Node]) {
			lastOn[tk.Node] = *tk.FinishedAt
		}
	}

	// Each machine was removed by scale-down, no sooner than idle_timeout
	// after its node's last task (or its registration, if it ran none).
	require.Len(t, zero.Machines, 4, "machines of the run: %s", describeMachines(zero.Machines))
	var atZero time.Time
	for _, m := range zero.Machines {
		require.Equal(t, "terminated", m.State, "machine %s (node %s): %s", m.ID, m.Node, m.Reason)
		require.Contains(t, m.Reason, "scale-down", "machine %s (node %s)", m.ID, m.Node)
		require.NotNil(t, m.RegisteredAt, "machine %s (node %s) never registered", m.ID, m.Node)
		require.NotNil(t, m.EndedAt, "machine %s (node %s)", m.ID, m.Node)
		idleFrom := *m.RegisteredAt
		if lastOn[m.Node].After(idleFrom) {
			idleFrom = lastOn[m.Node]
		}
		idle := m.EndedAt.Sub(idleFrom)
		require.GreaterOrEqual(t, idle, 10*time.Second, "machine %s (node %s) ended %s after it went idle; want idle_timeout 10s first", m.ID, m.Node, secs(idle))
		if m.EndedAt.After(atZero) {
			atZero = *m.EndedAt
		}
	}
	// Nothing of the pool is left: no node record, no agent process.
	fc.waitFor(faultWait, "no node of pool burst listed", func() (bool, string) {
		ns, err := fc.poolNodes("burst")
		return err == nil && len(ns) == 0, fmt.Sprint(ns, err)
	})
	require.Empty(t, fc.agentProcs("burst"), "agent processes of pool burst after it went back to zero")

	var firstReady time.Time
	for _, m := range zero.Machines {
		if firstReady.IsZero() || m.RegisteredAt.Before(firstReady) {
			firstReady = *m.RegisteredAt
		}
	}
	t.Logf("figure: pool burst (queue, min 0, max 4) with 40 tasks of 2s (cpu 500 each): submit → first task RUNNING on a pool node %s (first machine recorded ready %s: the pool's round after its agent's first sync); all 40 SUCCEEDED %s after submit; tasks per node %v",
		secs(firstStart.Sub(submitted)), secs(firstReady.Sub(submitted)), secs(lastEnd.Sub(submitted)), perNode)
	t.Logf("figure: pool burst: last task done → pool at zero machines %s (idle_timeout 10s, cooldown.down 1s); peak %d machines, agents on %d nodes at once (%d polls)",
		secs(atZero.Sub(lastEnd)), peak, peakAgents, polls)
}

// TestPoolScaleDownKeepsRunningTask runs a job of one long task and short
// ones on a queue pool with short idle and cooldown times: once the short
// ones are done, the idle machines are drained and terminated, but the
// machine running the long task stays until that task has SUCCEEDED (it is
// never KILLED or LOST), and only then does the pool reach zero.
func TestPoolScaleDownKeepsRunningTask(t *testing.T) {
	fc := newPoolCluster(t)
	doc := string(readExample(t, "burst.yaml"))
	for _, r := range [][2]string{
		{"pool: burst\n", "pool: keep\n"},
		{"idle_timeout: 10s\n", "idle_timeout: 2s\ncooldown: {down: 1s}\n"},
	} {
		require.Contains(t, doc, r[0], "burst.yaml")
		doc = strings.Replace(doc, r[0], r[1], 1)
	}
	fc.createPool([]byte(doc))
	key := "pool/keep/e2e"
	long := 15 * time.Second
	fc.submit(fmt.Sprintf(`job: pool/keep/e2e
instances: 6
pool: keep
task:
  command: [sh, -c, 'if [ "$DROVER_INSTANCE" = 0 ]; then sleep %d; else sleep 1; fi']
  resources: {cpu: 1000, memory: 16MiB}
retry: {attempts: 0}
reschedule: {attempts: 0}
`, int(long.Seconds())))

	j := fc.waitJob(key, "with instance 0 RUNNING", func(j api.Job) bool { return latestTasks(j)[0].State == "RUNNING" })
	longTask := latestTasks(j)[0]
	keep := longTask.Node

	// The short tasks end and the idle machines go; the long task's stays.
	p := fc.waitPool("keep", faultWait, "only the long task's machine "+keep+" left", func(p api.Pool) bool {
		live := liveMachines(p)
		return len(live) == 1 && live[0].Node == keep && len(machinesIn(p, "terminated")) > 0
	})
	ctx, cancel := fc.ctx()
	j, err := fc.c.GetJob(ctx, key)
	cancel()
	require.NoError(t, err)
	lt := taskByID(j, longTask.ID)
	require.Equal(t, "RUNNING", lt.State, "the long task when the other machines were gone; the test needs it still running")
	for i, tk := range latestTasks(j) {
		if i != 0 {
			require.Equal(t, "SUCCEEDED", tk.State, "short task %s (instance %d)", tk.ID, i)
		}
	}
	live := liveMachines(p)[0]
	require.Contains(t, []string{"ready", "draining"}, live.State, "the long task's machine %s", live.ID)
	n, ok := fc.node(keep)
	require.True(t, ok, "node %s of the long task is not listed", keep)
	require.Contains(t, []string{"READY", "DRAINING"}, n.State, "node %s of the long task", keep)
	removed := machinesIn(p, "terminated")
	for _, m := range removed {
		require.Contains(t, m.Reason, "scale-down", "machine %s (node %s)", m.ID, m.Node)
	}

	// The long task runs to its end, and then the pool reaches zero.
	j = fc.waitJobEnd(key)
	requireSucceededOnce(t, j)
	require.Len(t, j.Tasks, 6, "one task per instance: none was KILLED or LOST")
	for _, e := range fc.jobEvents(key) {
		require.NotContains(t, []string{"KILLED", "LOST"}, e.To, "event %d: %s", e.ID, e.Message)
	}
	lt = taskByID(j, longTask.ID)
	require.Equal(t, keep, lt.Node)
	zero := fc.waitPool("keep", faultWait, "back to zero machines", func(p api.Pool) bool {
		return len(liveMachines(p)) == 0 && p.Actual == 0
	})
	i := slices.IndexFunc(zero.Machines, func(m api.Machine) bool { return m.Node == keep })
	require.GreaterOrEqual(t, i, 0, "machine of node %s", keep)
	last := zero.Machines[i]
	require.Equal(t, "terminated", last.State, last.Reason)
	require.Contains(t, last.Reason, "scale-down")
	require.True(t, last.EndedAt.After(*lt.FinishedAt), "the long task's machine ended at %s, before its task at %s", last.EndedAt, lt.FinishedAt)
	t.Logf("figure: scale-down around a running task: %d idle machines removed while the %s task ran on %s; its machine ended %s after the task did",
		len(removed), long, keep, secs(last.EndedAt.Sub(*lt.FinishedAt)))
}

// TestPoolFixedReplacesKilledAgent keeps the shipped examples/pools/
// fixed.yaml (a fixed pool of 2) at 2 after one of its agents is killed
// with SIGKILL; then 'pool destroy' refuses while the pool runs a task,
// and 'pool destroy --force' leaves no process of the pool behind.
func TestPoolFixedReplacesKilledAgent(t *testing.T) {
	fc := newPoolCluster(t)
	fc.createPool(readExample(t, "fixed.yaml"))
	const name = "services"
	ready := func(p api.Pool) bool { return len(machinesIn(p, "ready")) == 2 && len(liveMachines(p)) == 2 }
	p := fc.waitPool(name, faultWait, "2 machines ready", ready)
	ns, err := fc.poolNodes(name)
	require.NoError(t, err)
	require.Len(t, ns, 2, "nodes of pool %s", name)
	for _, n := range ns {
		require.Equal(t, "READY", n.State, "node %s", n.Name)
		require.Equal(t, "services", n.Attributes["tier"], "node %s", n.Name)
	}

	victim := machinesIn(p, "ready")[0]
	pid := fc.agentPid(name, victim.Node)
	killedAt := time.Now()
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL), "kill -9 the agent of node %s", victim.Node)

	var dead api.Machine
	p = fc.waitPool(name, faultWait, "the killed machine ended and 2 others ready", func(p api.Pool) bool {
		i := slices.IndexFunc(p.Machines, func(m api.Machine) bool { return m.ID == victim.ID })
		if i < 0 {
			return false
		}
		dead = p.Machines[i]
		return (dead.State == "terminated" || dead.State == "failed") && ready(p)
	})
	require.NotEmpty(t, dead.Reason, "the killed machine's record says why it ended")
	require.NotNil(t, dead.EndedAt)
	var replacement api.Machine
	for _, m := range machinesIn(p, "ready") {
		require.NotEqual(t, victim.ID, m.ID)
		if m.LaunchedAt.After(killedAt) {
			replacement = m
		}
	}
	require.NotEmpty(t, replacement.ID, "no machine launched after the kill: %s", describeMachines(p.Machines))
	fc.waitFor(faultWait, "the killed machine's node gone from the pool's nodes", func() (bool, string) {
		ns, err := fc.poolNodes(name)
		if err != nil {
			return false, err.Error()
		}
		var names []string
		for _, n := range ns {
			names = append(names, n.Name)
		}
		return len(ns) == 2 && !slices.Contains(names, victim.Node), fmt.Sprint(names)
	})
	t.Logf("figure: fixed pool of 2, agent kill -9: machine ended %s after the kill (%q); replacement ready %s after the kill",
		secs(dead.EndedAt.Sub(killedAt)), dead.Reason, secs(replacement.RegisteredAt.Sub(killedAt)))

	// A task on the pool: destroy refuses without --force.
	key := "pool/services/sleeper"
	fc.submit(`job: pool/services/sleeper
pool: services
task:
  command: [sleep, "600"]
  kill_grace: 1s
  resources: {cpu: 100, memory: 16MiB}
`)
	fc.waitJob(key, "RUNNING", func(j api.Job) bool { return j.Counts["RUNNING"] == 1 })
	require.NotEmpty(t, procsOf(fc.machinesDir(name), true), "the task's process under the pool's machines")
	ctx, cancel := fc.ctx()
	err = fc.c.DestroyPool(ctx, name, false)
	cancel()
	var ce *client.Error
	require.True(t, errors.As(err, &ce), "destroy without --force of a pool with machines: %v", err)
	require.Equal(t, http.StatusConflict, ce.Status, "destroy without --force: %v", err)
	require.Len(t, liveMachines(fc.mustPool(name)), 2, "machines after a refused destroy")

	// --force drains, terminates and returns once the provider has
	// confirmed: no agent, no task process is left.
	destroyAt := time.Now()
	ctx, cancel = waitCtx()
	err = fc.c.DestroyPool(ctx, name, true)
	cancel()
	require.NoError(t, err)
	took := time.Since(destroyAt)
	require.Empty(t, procsOf(fc.machinesDir(name), false), "processes of pool %s after destroy --force", name)
	_, err = fc.getPool(name)
	require.True(t, errors.As(err, &ce) && ce.Status == http.StatusNotFound, "get pool %s after destroy: %v", name, err)
	entries, err := os.ReadDir(fc.machinesDir(name))
	require.NoError(t, err)
	for _, e := range entries {
		require.True(t, strings.HasPrefix(e.Name(), "."), "machine directory %s left after destroy --force", e.Name())
	}
	// The task it ran was LOST with its machine and rescheduled: it waits
	// for a node of the pool again (there is none now).
	j := fc.waitJob(key, "its task LOST and rescheduled", func(j api.Job) bool {
		var lost, pending bool
		for _, tk := range j.Tasks {
			lost = lost || tk.State == "LOST"
			pending = pending || tk.State == "PENDING"
		}
		return lost && pending
	})
	require.Equal(t, "RUNNING", j.State, describeJob(j))
	ctx, cancel = fc.ctx()
	_, err = fc.c.KillJob(ctx, key, nil)
	cancel()
	require.NoError(t, err)
	t.Logf("figure: pool destroy --force of 2 machines, one running a task: returned after %s with no process left; the task was LOST and rescheduled",
		secs(took))
}
