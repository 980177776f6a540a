package local

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/drover-dev/drover/internal/client"
	"github.com/drover-dev/drover/internal/procfs"
	"github.com/drover-dev/drover/internal/provider"
	"github.com/drover-dev/drover/internal/secret"
)

// droverBin is the real drover binary, built once by TestMain.
var droverBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "drover-local-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	droverBin = filepath.Join(dir, "drover")
	build := exec.Command("go", "build", "-o", droverBin, "github.com/drover-dev/drover/cmd/drover")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build drover:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	if code == 0 {
		// Every reaper goroutine ends with its agent, and every test
		// terminates its agents.
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// TestLifecycle drives real agents against a real server: launch, list,
// terminate, a server restart, an agent killed -9.
func TestLifecycle(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	cfg := Config{Dir: t.TempDir(), Binary: droverBin, Env: []string{"DROVER_SYNC_INTERVAL=300ms"}}
	p := newProvider(t, cfg)
	ctx := t.Context()
	req := func(node string) provider.LaunchRequest {
		return provider.LaunchRequest{
			Pool: "web", Cluster: "dev", Intent: "intent-" + node, Node: node,
			Agent: provider.Agent{ServerURL: srv.url, Token: srv.agentToken, Capabilities: map[string]string{"zone": "here"}},
		}
	}

	started := time.Now()
	for _, node := range []string{"a", "b"} {
		m, err := p.Launch(ctx, req(node))
		require.NoError(t, err)
		require.Equal(t, node, m.ID)
		require.Equal(t, provider.Running, m.State)
	}
	waitFor(t, 30*time.Second, "nodes a and b READY", func() (bool, string) {
		return nodeStates(t, srv, started)["a"] == "READY" && nodeStates(t, srv, started)["b"] == "READY", fmt.Sprint(nodeStates(t, srv, started))
	})

	want := []provider.Machine{machine("a", provider.Running), machine("b", provider.Running)}
	got, err := p.List(ctx, "web", "dev")
	require.NoError(t, err)
	require.Empty(t, cmp.Diff(want, got, cmpopts.IgnoreFields(provider.Machine{}, "LaunchedAt")))
	for _, m := range got {
		require.WithinDuration(t, started, m.LaunchedAt, time.Minute)
	}
	for _, pool := range [][2]string{{"db", "dev"}, {"web", "prod"}} {
		other, err := p.List(ctx, pool[0], pool[1])
		require.NoError(t, err)
		require.Empty(t, other, "pool %s cluster %s", pool[0], pool[1])
	}

	requireNoCmdlineHolds(t, srv.agentToken)
	refA := agentOf(t, p, "a")
	st, err := procfs.ReadStat(refA.Pid)
	require.NoError(t, err)
	require.Equal(t, refA.Pid, st.Session, "the agent leads a session of its own, apart from the server's")
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", refA.Pid))
	require.NoError(t, err)
	require.Contains(t, string(cmdline), "\x00--token-file\x00"+filepath.Join(cfg.Dir, "a", tokenFile)+"\x00")
	require.Contains(t, string(cmdline), "\x00--data\x00"+filepath.Join(cfg.Dir, "a", dataDir)+"\x00")

	require.NoError(t, p.Terminate(ctx, "a"))
	_, err = os.Stat(filepath.Join("/proc", strconv.Itoa(refA.Pid)))
	require.ErrorIs(t, err, fs.ErrNotExist, "agent a is gone and reaped")
	got, err = p.List(ctx, "web", "dev")
	require.NoError(t, err)
	require.Equal(t, []string{"b"}, ids(got))
	log, err := os.ReadFile(filepath.Join(cfg.Dir, logsDir, "a.log"))
	require.NoError(t, err)
	require.NotEmpty(t, log, "the agent's log is kept")
	require.Contains(t, string(log), `msg="agent stopped"`, "SIGTERM let the agent stop by itself")
	waitFor(t, 30*time.Second, "node a DOWN", func() (bool, string) {
		s := nodeStates(t, srv, time.Time{})
		return s["a"] == "DOWN", fmt.Sprint(s)
	})

	// The server restarts: a new Provider on the same directory finds b,
	// even without its pid file (as if the server had died before
	// writing it).
	p2 := newProvider(t, cfg)
	refB := agentOf(t, p2, "b")
	require.NoError(t, os.Remove(filepath.Join(cfg.Dir, "b", pidFile)))
	got, err = p2.List(ctx, "web", "dev")
	require.NoError(t, err)
	require.Empty(t, cmp.Diff([]provider.Machine{machine("b", provider.Running)}, got, cmpopts.IgnoreFields(provider.Machine{}, "LaunchedAt")))

	// kill -9: the machine stays listed, as not running, until terminated.
	require.NoError(t, unix.Kill(refB.Pid, unix.SIGKILL))
	waitFor(t, 10*time.Second, "b reported terminated", func() (bool, string) {
		got, err := p2.List(ctx, "web", "dev")
		require.NoError(t, err)
		return len(got) == 1 && got[0].State == provider.Terminated, fmt.Sprint(got)
	})
	_, err = p2.Launch(ctx, provider.LaunchRequest{Pool: "web", Cluster: "dev", Intent: "another", Node: "b", Agent: req("b").Agent})
	require.ErrorContains(t, err, "terminate it first")
	require.NoError(t, p2.Terminate(ctx, "b"))
	got, err = p2.List(ctx, "web", "dev")
	require.NoError(t, err)
	require.Empty(t, got)
	require.NoError(t, p2.Terminate(ctx, "b"), "terminating a machine twice")
}

// TestTerminateHangingAgent: an agent that ignores SIGTERM is killed after
// StopTimeout with everything it started.
func TestTerminateHangingAgent(t *testing.T) {
	t.Parallel()
	p := newProvider(t, Config{Dir: t.TempDir(), StopTimeout: 200 * time.Millisecond, Env: []string{"EXTRA=1"}})
	bin := writeScript(t, "trap '' TERM\nsleep 600 &\nexec sleep 600\n")
	const token = "hang-token-5b0d4c1e"
	m, err := p.Launch(t.Context(), provider.LaunchRequest{
		Pool: "p", Cluster: "c", Intent: "i", Node: "hang",
		Agent: provider.Agent{Binary: bin, ServerURL: "http://127.0.0.1:1", Token: token, CACert: []byte("not checked here")},
	})
	require.NoError(t, err)
	ref := agentOf(t, p, m.ID)
	waitFor(t, 10*time.Second, "both sleeps run", func() (bool, string) {
		members := sessionMembers(ref.Pid)
		return len(members) == 2, fmt.Sprint(members)
	})

	requireNoCmdlineHolds(t, token)
	tok, err := os.ReadFile(filepath.Join(p.cfg.Dir, "hang", tokenFile))
	require.NoError(t, err)
	require.Equal(t, token+"\n", string(tok))
	env := environ(t, ref.Pid)
	require.Equal(t, "1", env["EXTRA"])
	require.Equal(t, filepath.Join(p.cfg.Dir, "hang"), env[markerEnv])
	delete(env, "PWD") // the shell sets it
	for k := range env {
		require.True(t, slices.Contains(passedEnv, k) || k == "EXTRA" || k == markerEnv, "the agent got %s from the server's environment", k)
	}

	require.NoError(t, p.Terminate(t.Context(), "hang"))
	require.Empty(t, sessionMembers(ref.Pid), "every process of the agent's session is gone")
	_, err = os.Stat(filepath.Join(p.cfg.Dir, "hang"))
	require.ErrorIs(t, err, fs.ErrNotExist)
}

// TestLaunchSameNode: one node, one machine.
func TestLaunchSameNode(t *testing.T) {
	t.Parallel()
	p := newProvider(t, Config{Dir: t.TempDir(), Binary: writeScript(t, "exec sleep 600\n"), StopTimeout: time.Second})
	ctx := t.Context()
	req := provider.LaunchRequest{Pool: "p", Cluster: "c", Intent: "i1", Node: "n1", Agent: provider.Agent{ServerURL: "http://127.0.0.1:1", Token: "t"}}
	first, err := p.Launch(ctx, req)
	require.NoError(t, err)
	ref := agentOf(t, p, "n1")

	again, err := p.Launch(ctx, req)
	require.NoError(t, err, "the same intent again")
	require.Equal(t, first, again)
	require.Equal(t, ref, agentOf(t, p, "n1"), "no second agent")

	other := req
	other.Intent = "i2"
	_, err = p.Launch(ctx, other)
	require.ErrorContains(t, err, `node "n1": machine n1 already runs`)
	require.Equal(t, ref, agentOf(t, p, "n1"))
	require.NoError(t, p.Terminate(ctx, "n1"))
}

// TestAgentThatExits: an agent that dies at once is reported Terminated,
// and a Launch with the same intent starts it again.
func TestAgentThatExits(t *testing.T) {
	t.Parallel()
	p := newProvider(t, Config{Dir: t.TempDir(), Binary: writeScript(t, "echo no server >&2\nexit 3\n")})
	ctx := t.Context()
	req := provider.LaunchRequest{Pool: "p", Cluster: "c", Intent: "i", Node: "x", Agent: provider.Agent{ServerURL: "http://127.0.0.1:1", Token: "t"}}
	_, err := p.Launch(ctx, req)
	require.NoError(t, err)
	waitFor(t, 10*time.Second, "x reported terminated", func() (bool, string) {
		got, err := p.List(ctx, "p", "c")
		require.NoError(t, err)
		return len(got) == 1 && got[0].State == provider.Terminated, fmt.Sprint(got)
	})
	log, err := os.ReadFile(filepath.Join(p.cfg.Dir, "x", logFile))
	require.NoError(t, err)
	require.Equal(t, "no server\n", string(log))

	before := agentOf(t, p, "x")
	_, err = p.Launch(ctx, req)
	require.NoError(t, err)
	require.NotEqual(t, before, agentOf(t, p, "x"), "a new agent")
	require.NoError(t, p.Terminate(ctx, "x"))
}

// TestInterruptedLaunch: a server that died after making a machine's
// directory but before starting its agent leaves a machine that List
// reports as terminated and Terminate removes.
func TestInterruptedLaunch(t *testing.T) {
	t.Parallel()
	cfg := Config{Dir: t.TempDir(), Binary: writeScript(t, "exec sleep 600\n")}
	p := newProvider(t, cfg)
	require.NoError(t, p.prepare(p.machineDir("half"), machineTags{Node: "half", Pool: "p", Cluster: "c", Intent: "i"}, provider.Agent{Token: "t"}))
	// A launch that died before its rename leaves a temporary directory.
	require.NoError(t, os.Mkdir(filepath.Join(cfg.Dir, ".new-half-123"), 0o700))

	p2 := newProvider(t, cfg)
	got, err := p2.List(t.Context(), "p", "c")
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, "half", got[0].ID)
	require.Equal(t, provider.Terminated, got[0].State)
	require.NoError(t, p2.Terminate(t.Context(), "half"))
	got, err = p2.List(t.Context(), "p", "c")
	require.NoError(t, err)
	require.Empty(t, got)
}

func TestLaunchRejectsBadRequests(t *testing.T) {
	t.Parallel()
	good := provider.LaunchRequest{Pool: "p", Cluster: "c", Intent: "i", Node: "n", Agent: provider.Agent{ServerURL: "http://127.0.0.1:1", Token: "t"}}
	tests := []struct {
		name    string
		edit    func(*provider.LaunchRequest)
		wantErr []string
	}{
		{name: "empty node", edit: func(r *provider.LaunchRequest) { r.Node = "" }, wantErr: []string{`node ""`}},
		{name: "upper case", edit: func(r *provider.LaunchRequest) { r.Node = "Web-1" }, wantErr: []string{`node "Web-1"`}},
		{name: "path", edit: func(r *provider.LaunchRequest) { r.Node = "../etc" }, wantErr: []string{`node "../etc"`}},
		{name: "hidden", edit: func(r *provider.LaunchRequest) { r.Node = ".logs" }, wantErr: []string{`node ".logs"`}},
		{name: "too long", edit: func(r *provider.LaunchRequest) { r.Node = strings.Repeat("a", 64) }, wantErr: []string{"must be 1 to 63"}},
		{name: "everything missing", edit: func(r *provider.LaunchRequest) { *r = provider.LaunchRequest{Node: "n"} },
			wantErr: []string{"Pool: must be set", "Intent: must be set", "Agent.ServerURL: must be set", "Agent.Token: must be set"}},
		{name: "token of two lines", edit: func(r *provider.LaunchRequest) { r.Agent.Token = "a\nb" }, wantErr: []string{"Agent.Token: must be one line"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := newProvider(t, Config{Dir: t.TempDir(), Binary: "/bin/true"})
			req := good
			tt.edit(&req)
			_, err := p.Launch(t.Context(), req)
			require.Error(t, err)
			for _, w := range tt.wantErr {
				require.ErrorContains(t, err, w)
			}
			entries, err := os.ReadDir(p.cfg.Dir)
			require.NoError(t, err)
			require.Empty(t, entries, "nothing is made for a bad request")
		})
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	_, err := New(Config{StopTimeout: -time.Second, Env: []string{"NOEQUALS", markerEnv + "=x"}})
	require.Error(t, err)
	for _, w := range []string{"Dir: must be set", "StopTimeout -1s", `Env[0] "NOEQUALS"`, "Env[1]: " + markerEnv} {
		require.ErrorContains(t, err, w)
	}
}

func TestTerminateUnknown(t *testing.T) {
	t.Parallel()
	p := newProvider(t, Config{Dir: t.TempDir(), Binary: "/bin/true"})
	require.NoError(t, p.Terminate(t.Context(), "never-launched"))
	require.ErrorContains(t, p.Terminate(t.Context(), "../x"), `node "../x"`)
}

// devServer is a running `drover dev` with no local agents of its own.
type devServer struct {
	url        string
	admin      *client.Client
	agentToken string
}

// startServer starts `drover dev --nodes 0` on a free loopback port and
// waits until it answers with its tokens written. It dies with the test,
// or with the test process.
func startServer(t *testing.T) *devServer {
	t.Helper()
	for attempt := 1; ; attempt++ {
		srv, err := startServerOnce(t)
		if err == nil {
			return srv
		}
		if attempt < 3 && strings.Contains(err.Error(), "address already in use") {
			continue
		}
		t.Fatalf("start drover dev: %v", err)
	}
}

func startServerOnce(t *testing.T) (*devServer, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	data, home := t.TempDir(), t.TempDir()
	logPath := filepath.Join(home, "dev.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(droverBin, "dev", "--nodes", "0", "--data", data, "--listen", addr,
		"--node-grace", "2s", "--log-level", "info")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config")}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("drover dev did not stop on SIGTERM")
		}
	})
	devLog := func() string { b, _ := os.ReadFile(logPath); return string(b) }

	c, err := client.New("http://"+addr, nil)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-exited:
			return nil, fmt.Errorf("drover dev exited:\n%s", devLog())
		default:
		}
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		err := c.Health(ctx)
		cancel()
		admin, err1 := os.ReadFile(filepath.Join(data, "admin.token"))
		agent, err2 := os.ReadFile(filepath.Join(data, "agent.token"))
		if err == nil && err1 == nil && err2 == nil && len(admin) > 0 && len(agent) > 0 {
			return &devServer{
				url:        "http://" + addr,
				admin:      c.WithToken(secret.New(strings.TrimSpace(string(admin)))),
				agentToken: strings.TrimSpace(string(agent)),
			}, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("not ready within 30s (health: %v):\n%s", err, devLog())
		}
		time.Sleep(50 * time.Millisecond) // a bounded poll of the server's readiness
	}
}

// nodeStates returns the state of each node the server knows that synced
// after since.
func nodeStates(t *testing.T, srv *devServer, since time.Time) map[string]string {
	t.Helper()
	nodes, err := srv.admin.ListNodes(t.Context())
	require.NoError(t, err)
	out := map[string]string{}
	for _, n := range nodes {
		if n.LastSeen.After(since) {
			out[n.Name] = n.State
		}
	}
	return out
}

// newProvider makes a Provider whose test fails if any process of its
// machines outlives it.
func newProvider(t *testing.T, cfg Config) *Provider {
	t.Helper()
	p, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		var left []string
		for _, pid := range mustPids(t) {
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
			if bytes.Contains(cmdline, []byte(p.cfg.Dir)) || bytes.Contains(env, []byte(markerEnv+"="+p.cfg.Dir)) {
				if st, err := procfs.ReadStat(pid); err == nil && st.Live() {
					left = append(left, strings.ReplaceAll(string(cmdline), "\x00", " "))
					_ = unix.Kill(pid, unix.SIGKILL)
				}
			}
		}
		if len(left) > 0 {
			t.Errorf("processes left behind: %q", left)
		}
	})
	return p
}

// agentOf returns the agent process of machine id, which must be on disk.
func agentOf(t *testing.T, p *Provider, id string) procRef {
	t.Helper()
	ref, _ := p.locate(id, &marks{})
	require.NotZero(t, ref.Pid, "machine %s has an agent", id)
	return ref
}

// machine is the Machine TestLifecycle expects for node.
func machine(node string, state provider.State) provider.Machine {
	return provider.Machine{
		ID: node, Node: node, Pool: "web", Cluster: "dev", Intent: "intent-" + node,
		State: state, Address: Address,
		Tags: map[string]string{
			provider.TagPool: "web", provider.TagCluster: "dev",
			provider.TagIntent: "intent-" + node, provider.TagNode: node,
		},
	}
}

func ids(ms []provider.Machine) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

// requireNoCmdlineHolds fails if any process's command line holds s.
func requireNoCmdlineHolds(t *testing.T, s string) {
	t.Helper()
	for _, pid := range mustPids(t) {
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err == nil && bytes.Contains(cmdline, []byte(s)) {
			t.Fatalf("process %d has the token on its command line: %q", pid, cmdline)
		}
	}
}

// sessionMembers lists the live processes of session sid.
func sessionMembers(sid int) []int {
	pids, _ := allPids()
	var out []int
	for _, pid := range pids {
		if st, err := procfs.ReadStat(pid); err == nil && st.Session == sid && st.Live() {
			out = append(out, pid)
		}
	}
	return out
}

func environ(t *testing.T, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	require.NoError(t, err)
	out := map[string]string{}
	for kv := range bytes.SplitSeq(bytes.TrimRight(b, "\x00"), []byte{0}) {
		k, v, _ := strings.Cut(string(kv), "=")
		out[k] = v
	}
	return out
}

func mustPids(t *testing.T) []int {
	t.Helper()
	pids, err := allPids()
	require.NoError(t, err)
	return pids
}

// writeScript writes an executable shell script that stands in for the
// drover binary.
func writeScript(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fake-drover")
	require.NoError(t, os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755))
	return path
}

// waitFor polls cond until it holds or within passes; the last detail
// goes into the failure.
func waitFor(t *testing.T, within time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s (%s)", what, within, detail)
		}
		time.Sleep(50 * time.Millisecond) // a bounded poll of a condition
	}
}
