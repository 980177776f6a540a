package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/sshdtest"
)

// TestPoolSSH is the ssh provider through a pool, against real OpenSSH
// servers: two sshd on loopback ports stand for two existing hosts, each
// with its own host key (in the pool's known_hosts file) and work dir,
// accepting the pool's client key for root. A fixed pool of two starts an
// agent on each over ssh (the server copies its own binary there); both
// register as nodes of the pool, a job of four instances with `pool: NAME`
// runs on them, and destroy --force stops both agents, which their work
// dirs show.
func TestPoolSSH(t *testing.T) {
	skipIfShort(t)
	sshdtest.SkipIfMissing(t)
	pf := newPoolFault(t)
	// The sshds' own files stay out of the cluster's directory, whose
	// processes the cluster's cleanup kills and counts as leaks.
	sshDir := t.TempDir()
	clientKey := filepath.Join(sshDir, "client_ed25519")
	authorized := sshdtest.WriteKey(t, clientKey)
	hosts := []*sshdtest.Server{
		sshdtest.Start(t, filepath.Join(sshDir, "h1"), authorized),
		sshdtest.Start(t, filepath.Join(sshDir, "h2"), authorized),
	}
	knownHosts := filepath.Join(sshDir, "known_hosts")
	require.NoError(t, os.WriteFile(knownHosts, []byte(hosts[0].KnownHostsLine()+"\n"+hosts[1].KnownHostsLine()+"\n"), 0o600))
	// The hosts' work dirs are in the cluster's directory: the agents
	// started there are the cluster's processes.
	workDirs := []string{filepath.Join(pf.dir, "hosts", "h1"), filepath.Join(pf.dir, "hosts", "h2")}

	pf.startServer()
	created := pf.createPool(fmt.Sprintf(`pool: hosts
provider: ssh
node:
  known_hosts_file: %q
  defaults: {user: root, key_file: %q}
  hosts:
    - {address: 127.0.0.1, port: %d, work_dir: %q}
    - {address: 127.0.0.1, port: %d, work_dir: %q}
min: 0
max: 2
policy: {fixed: {size: 2}}
start_timeout: 30s
capabilities: {site: adhoc}
`, knownHosts, clientKey, hosts[0].Port, workDirs[0], hosts[1].Port, workDirs[1]))
	require.Equal(t, "ssh", created.Provider)
	require.Equal(t, 2, created.Desired)

	// Both agents register; node list --pool shows them READY.
	var p api.Pool
	launched := time.Now()
	pf.waitFor(faultWait, "both machines of pool hosts ready", func() (bool, string) {
		p = pf.pool("hosts")
		ready := 0
		for _, m := range p.Machines {
			if m.State == "ready" {
				ready++
			}
		}
		return ready == 2, describePool(p)
	})
	registered := time.Since(launched)
	require.Len(t, p.Machines, 2, describePool(p))
	var nodes []string
	for _, m := range p.Machines {
		nodes = append(nodes, m.Node)
	}
	slices.Sort(nodes)
	out, err := pf.drover("node", "list", "--pool", "hosts", "-o", "json")
	require.NoError(t, err, out)
	var listed []api.Node
	require.NoError(t, json.Unmarshal([]byte(out), &listed), out)
	var names []string
	for _, n := range listed {
		names = append(names, n.Name)
		require.Equal(t, "hosts", n.Pool, "node %s", n.Name)
		require.Equal(t, "READY", n.State, "node %s", n.Name)
		require.Equal(t, "adhoc", n.Attributes["site"], "node %s: the pool's capabilities", n.Name)
	}
	slices.Sort(names)
	require.Equal(t, nodes, names, "node list --pool hosts")
	// Each host runs its own agent, from the binary copied to its work
	// dir.
	for _, wd := range workDirs {
		ps := pf.sshAgentProcs(wd)
		require.Len(t, ps, 1, "agents in %s:\n%s", wd, procList(ps))
		require.True(t, strings.HasPrefix(ps[0].cmdline, filepath.Join(wd, "bin", "drover")+" agent "), "agent in %s: %s", wd, ps[0].cmdline)
	}

	// Work for the pool runs there. Each task asks for more than half of
	// a node's CPU, so the two nodes normally share the four.
	cpu := listed[0].Capacity.CPU/2 + 1
	key := "pool/ssh/work"
	pf.submit(fmt.Sprintf(`job: %s
instances: 4
pool: hosts
task:
  command: [sh, -c, 'echo "$DROVER_NODE" > "$OUT/$DROVER_INSTANCE"; sleep 0.5']
  env: {OUT: %q}
  resources: {cpu: %d, memory: 1MiB}
`, key, pf.out, cpu))
	j := pf.waitJobEnd(key)
	requireSucceededOnce(t, j)
	used := map[string]bool{}
	for _, tk := range latestTasks(j) {
		require.Contains(t, nodes, tk.Node, "task %s ran outside pool hosts", tk.ID)
		data, err := os.ReadFile(filepath.Join(pf.out, fmt.Sprint(tk.Instance)))
		require.NoError(t, err, "instance %d's side effect", tk.Instance)
		require.Equal(t, tk.Node, strings.TrimSpace(string(data)), "instance %d ran on", tk.Instance)
		used[tk.Node] = true
	}
	// Both hosts usually share the work; under load a host may miss a
	// heartbeat (grace 3s) and its share go to the other, which is fine.
	require.NotEmpty(t, used)
	t.Logf("tasks ran on %d of the pool's 2 hosts", len(used))

	// drover node ssh reaches a node with the pool's ssh settings (its
	// host, port, key and known_hosts), by name and as POOL/N.
	if _, err := exec.LookPath("ssh"); err == nil {
		for _, target := range []string{nodes[0], "hosts/1"} {
			out, err := pf.drover("node", "ssh", target, "--", "echo", "hello", "from", "$(hostname)")
			require.NoError(t, err, "node ssh %s: %s", target, out)
			require.Contains(t, out, "hello from ", "node ssh %s", target)
		}
		out, err := pf.drover("node", "ssh", "nosuch")
		require.Error(t, err)
		require.Contains(t, out, `no machine of any pool is "nosuch"`)
	} else {
		t.Log("NOT TESTED: drover node ssh (no ssh client; Debian: openssh-client)")
	}

	destroyStart := time.Now()
	pf.destroyPool("hosts")
	destroyed := time.Since(destroyStart)
	for _, wd := range workDirs {
		require.Empty(t, pf.sshAgentProcs(wd), "agents in %s after destroy --force", wd)
		slots, err := filepath.Glob(filepath.Join(wd, "clusters", "*"))
		require.NoError(t, err)
		require.Len(t, slots, 1, "cluster slots in %s", wd)
		// The agent's slot is free: no tags, pid or token; its log stays
		// and ends with the agent's own stop.
		for _, f := range []string{"agent.tags", "agent.pid", "agent.token"} {
			_, err := os.Stat(filepath.Join(slots[0], f))
			require.ErrorIs(t, err, os.ErrNotExist, "%s in %s after destroy", f, slots[0])
		}
		log, err := os.ReadFile(filepath.Join(slots[0], "agent.log"))
		require.NoError(t, err)
		require.Contains(t, string(log), "agent stopped", "the agent's log in %s", slots[0])
	}
	require.Empty(t, procsOf(filepath.Join(pf.dir, "hosts"), false), "processes left on the hosts")
	t.Logf("figure: ssh pool of 2 hosts: both agents ready %s after create (binary copied over ssh); destroy --force took %s", secs(registered), secs(destroyed))
}

// sshAgentProcs lists the live processes started from a host's work dir:
// its agent, running the binary copied there, and the agent's tasks.
func (pf *poolFault) sshAgentProcs(workDir string) []proc {
	var out []proc
	for _, p := range procsOf(workDir, false) {
		if strings.Contains(p.cmdline, " agent ") {
			out = append(out, p)
		}
	}
	return out
}
