package sshprov

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/provider"
	"github.com/drover-dev/drover/internal/sshdtest"
)

// stopTimeout bounds a Terminate in the tests: the agent's own SIGTERM
// handling plus the provider's StopTimeout.
const stopTimeout = 30 * time.Second

// fleet is two real sshd "hosts" on loopback, a known_hosts file with
// their keys, a user key both accept, and a work dir per host.
type fleet struct {
	dir        string
	keyFile    string
	knownHosts string
	hosts      [2]*sshdtest.Server
	workDirs   [2]string
}

func setupFleet(t *testing.T) *fleet {
	t.Helper()
	f := &fleet{dir: t.TempDir()}
	f.keyFile = filepath.Join(f.dir, "id_ed25519")
	user := newKey(t, f.keyFile)
	var lines []string
	for i := range f.hosts {
		f.hosts[i] = startSSHD(t, user)
		lines = append(lines, f.hosts[i].KnownHostsLine())
		f.workDirs[i] = filepath.Join(f.dir, "host"+strconv.Itoa(i), "work")
	}
	f.knownHosts = filepath.Join(f.dir, "known_hosts")
	require.NoError(t, os.WriteFile(f.knownHosts, []byte(strings.Join(lines, "\n")+"\n"), 0o600))
	// Whatever a failed test left running dies with it.
	t.Cleanup(func() {
		for _, pid := range procsUnder(f.dir) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return f
}

// config is a provider config for the fleet: the first host with a
// derived name and a capability of its own, the second named "beta".
func (f *fleet) config(t *testing.T) Config {
	return Config{
		Hosts: []Host{
			{Address: "127.0.0.1", Port: f.hosts[0].Port, WorkDir: f.workDirs[0], Capabilities: map[string]string{"rack": "a"}},
			{Address: "127.0.0.1", Port: f.hosts[1].Port, WorkDir: f.workDirs[1], Name: "beta"},
		},
		Defaults:       Host{KeyFile: f.keyFile},
		KnownHostsFile: f.knownHosts,
		Binary:         droverBin,
		StopTimeout:    10 * time.Second,
		Logger:         slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

// procsUnder returns the live processes whose command line mentions dir.
func procsUnder(dir string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(cmdline), dir) {
			continue
		}
		if stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil {
			rest := string(stat[strings.LastIndex(string(stat), ") ")+2:])
			if strings.HasPrefix(rest, "Z") {
				continue
			}
		}
		pids = append(pids, pid)
	}
	return pids
}

// agentPID is the pid the host's slot records for its agent.
func agentPID(t *testing.T, workDir, cluster string) int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(workDir, slotDir(cluster), pidFile))
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.Fields(string(data))[0])
	require.NoError(t, err)
	return pid
}

// request asks for a machine of pool web in cluster test, which joins s.
func request(s *server, intent string) provider.LaunchRequest {
	req := requestFor("test", "web", s.url, s.agentToken)
	req.Intent, req.Node = intent, "proposed-"+intent
	return req
}

func requestFor(cluster, pool, url, token string) provider.LaunchRequest {
	return provider.LaunchRequest{
		Pool: pool, Cluster: cluster,
		Agent: provider.Agent{
			ServerURL:    url,
			Token:        token,
			Capabilities: map[string]string{"rack": "pool", "zone": "z1"},
		},
	}
}

// TestLaunchListTerminate drives the whole life of two machines on two
// real hosts with real agents joining a real server.
func TestLaunchListTerminate(t *testing.T) {
	t.Parallel()
	f := setupFleet(t)
	srv := startServer(t)
	p, err := New(f.config(t))
	require.NoError(t, err)
	ctx := context.Background()
	node0 := "127.0.0.1-" + strconv.Itoa(f.hosts[0].Port)

	m1, err := p.Launch(ctx, request(srv, "i1"))
	require.NoError(t, err)
	require.Equal(t, "root@127.0.0.1:"+strconv.Itoa(f.hosts[0].Port)+"/test", m1.ID)
	require.Equal(t, node0, m1.Node, "the host's own name, not the proposed one")
	require.Equal(t, provider.Running, m1.State)

	// The same intent again starts nothing: the launch is idempotent.
	pid1 := agentPID(t, f.workDirs[0], "test")
	again, err := p.Launch(ctx, request(srv, "i1"))
	require.NoError(t, err)
	require.Equal(t, m1.ID, again.ID)
	require.Equal(t, pid1, agentPID(t, f.workDirs[0], "test"))

	m2, err := p.Launch(ctx, request(srv, "i2"))
	require.NoError(t, err)
	require.Equal(t, "beta", m2.Node)
	require.NotEqual(t, m1.ID, m2.ID)

	ready := srv.waitReady(t, node0, "beta")
	require.Equal(t, "a", ready[node0].Attributes["rack"], "the host's capability wins over the pool's")
	require.Equal(t, "z1", ready[node0].Attributes["zone"])
	require.Equal(t, "pool", ready["beta"].Attributes["rack"])

	// The token is in a 0600 file, never on the agent's command line.
	for i, wd := range f.workDirs {
		tok := filepath.Join(wd, slotDir("test"), tokenFile)
		st, err := os.Stat(tok)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "host %d token file", i)
		require.Equal(t, srv.agentToken, strings.TrimSpace(readFile(tok)))
		pid := agentPID(t, wd, "test")
		cmdline := readFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
		require.Contains(t, cmdline, "agent")
		require.NotContains(t, cmdline, srv.agentToken)
	}

	_, err = p.Launch(ctx, request(srv, "i3"))
	require.ErrorIs(t, err, provider.ErrCapacity)
	require.ErrorContains(t, err, "no free host for cluster test (2 run one of its agents, 0 unreachable)")

	ms, err := p.List(ctx, "web", "test")
	require.NoError(t, err)
	require.Len(t, ms, 2)
	require.Equal(t, m1.ID, ms[0].ID)
	require.Equal(t, m2.ID, ms[1].ID)
	require.Equal(t, map[string]string{
		provider.TagPool: "web", provider.TagCluster: "test", provider.TagIntent: "i1", provider.TagNode: node0,
	}, ms[0].Tags)
	require.Equal(t, "i2", ms[1].Intent)
	require.Equal(t, "127.0.0.1", ms[1].Address)
	require.False(t, ms[1].LaunchedAt.IsZero())
	// All state is on the hosts: a provider made afresh (a restarted
	// server) sees the same machines.
	fresh, err := New(f.config(t))
	require.NoError(t, err)
	again2, err := fresh.List(ctx, "web", "test")
	require.NoError(t, err)
	require.Equal(t, ms, again2)
	other, err := p.List(ctx, "batch", "test")
	require.NoError(t, err)
	require.Empty(t, other, "another pool's list")

	pids := []int{agentPID(t, f.workDirs[0], "test"), agentPID(t, f.workDirs[1], "test")}
	tctx, cancel := context.WithTimeout(ctx, stopTimeout)
	defer cancel()
	require.NoError(t, p.Terminate(tctx, m1.ID))
	require.NoError(t, p.Terminate(tctx, m2.ID))
	for _, pid := range pids {
		_, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid)))
		require.True(t, os.IsNotExist(err) || isZombie(pid), "agent %d still alive after Terminate", pid)
	}
	require.Empty(t, procsUnder(f.dir), "processes left on the hosts")
	ms, err = p.List(ctx, "web", "test")
	require.NoError(t, err)
	require.Empty(t, ms)
	require.NoError(t, p.Terminate(tctx, m1.ID), "terminating a machine that is gone")
	_, err = os.Stat(filepath.Join(f.workDirs[0], slotDir("test"), tagsFile))
	require.True(t, os.IsNotExist(err), "tags file removed")
}

// isZombie says whether pid is a zombie (dead, not yet reaped).
func isZombie(pid int) bool {
	stat := readFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	i := strings.LastIndex(stat, ") ")
	return i >= 0 && strings.HasPrefix(stat[i+2:], "Z")
}

// TestRelaunchOnOneHost: a second launch on a host reuses the binary
// already there, and a different binary replaces it; an agent that does
// not stop on SIGTERM is killed after StopTimeout.
func TestRelaunchOnOneHost(t *testing.T) {
	t.Parallel()
	f := setupFleet(t)
	srv := startServer(t)
	cfg := f.config(t)
	cfg.Hosts = cfg.Hosts[:1]
	cfg.StopTimeout = time.Second
	p, err := New(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 2*stopTimeout)
	defer cancel()
	bin := filepath.Join(f.workDirs[0], binPath)

	m, err := p.Launch(ctx, request(srv, "i1"))
	require.NoError(t, err)
	first, err := os.Stat(bin)
	require.NoError(t, err)
	require.NoError(t, p.Terminate(ctx, m.ID))

	m, err = p.Launch(ctx, request(srv, "i2"))
	require.NoError(t, err)
	second, err := os.Stat(bin)
	require.NoError(t, err)
	require.True(t, os.SameFile(first, second), "the binary was copied again")
	require.Equal(t, first.ModTime(), second.ModTime())
	require.NoError(t, p.Terminate(ctx, m.ID))

	// A binary that differs (here: one byte appended, still an ELF file
	// of this machine) is copied over the old one.
	changed := filepath.Join(f.dir, "drover-changed")
	data, err := os.ReadFile(droverBin)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(changed, append(data, 0), 0o755))
	req := request(srv, "i3")
	req.Agent.Binary = changed
	m, err = p.Launch(ctx, req)
	require.NoError(t, err)
	third, err := os.Stat(bin)
	require.NoError(t, err)
	require.False(t, os.SameFile(first, third), "the changed binary was not copied")
	require.Equal(t, int64(len(data)+1), third.Size())
	srv.waitReady(t, m.Node)

	// A stopped process cannot act on SIGTERM: Terminate must fall back
	// to SIGKILL once StopTimeout has passed.
	pid := agentPID(t, f.workDirs[0], "test")
	require.NoError(t, syscall.Kill(pid, syscall.SIGSTOP))
	require.NoError(t, p.Terminate(ctx, m.ID))
	require.Empty(t, procsUnder(f.dir))
	ms, err := p.List(ctx, "web", "test")
	require.NoError(t, err)
	require.Empty(t, ms)
}

// TestHostKeyRefused: an unknown or changed host key stops the launch
// before anything runs on the host, with an error naming the host.
func TestHostKeyRefused(t *testing.T) {
	t.Parallel()
	f := setupFleet(t)
	otherKey := newKey(t, filepath.Join(f.dir, "other_host_key"))
	addr := "127.0.0.1:" + strconv.Itoa(f.hosts[0].Port)
	tests := []struct {
		name       string
		knownHosts string
		want       string
	}{
		{"unknown", f.hosts[1].KnownHostsLine() + "\n", "host " + addr + ": unknown host key ssh-ed25519 SHA256:"},
		{"changed", sshdtest.KnownHostsLine(addr, otherKey) + "\n", "host " + addr + ": host key changed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := f.config(t)
			cfg.Hosts = cfg.Hosts[:1]
			cfg.KnownHostsFile = filepath.Join(t.TempDir(), "known_hosts")
			require.NoError(t, os.WriteFile(cfg.KnownHostsFile, []byte(tt.knownHosts), 0o600))
			p, err := New(cfg)
			require.NoError(t, err)
			req := provider.LaunchRequest{Pool: "web", Cluster: "test", Intent: "i1",
				Agent: provider.Agent{ServerURL: "http://127.0.0.1:1", Token: "t"}}
			_, err = p.Launch(context.Background(), req)
			require.ErrorContains(t, err, tt.want)
			require.ErrorContains(t, err, "refusing to connect")
			_, err = os.Stat(f.workDirs[0])
			require.True(t, os.IsNotExist(err), "the work dir was made on a host with a refused key")
			_, err = p.List(context.Background(), "web", "test")
			require.ErrorContains(t, err, tt.want)
			require.ErrorContains(t, p.Terminate(context.Background(), "root@"+addr+"/test"), tt.want)
		})
	}
}
