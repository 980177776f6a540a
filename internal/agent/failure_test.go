package agent_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/drover-dev/drover/internal/agent"
	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/client"
	"github.com/drover-dev/drover/internal/scheduler"
	"github.com/drover-dev/drover/internal/secret"
	"github.com/drover-dev/drover/internal/server"
	"github.com/drover-dev/drover/internal/store/sqlite"
)

// testDeadline bounds every wait; reaching it means a hang.
const testDeadline = time.Minute

// serverProc is a drover server (SQLite file, scheduler, HTTP) that a test
// can stop, and start again on the same store, as a restarted server.
type serverProc struct {
	client *client.Client // straight to the server, for the test's own calls
	addr   string
	stop   func()
	// agentTok is a token for agents to sync with.
	agentTok secret.String
}

func startServer(t *testing.T, dir string) *serverProc {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "drover.db"))
	require.NoError(t, err)
	sched, err := scheduler.New(scheduler.Config{Store: db})
	require.NoError(t, err)
	sched.Start(ctx)
	srv, err := server.New(server.Config{Store: db, Scheduler: sched, DataDir: dir})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, ln, time.Second) }()
	admin, agentTok := testTokens(t, srv)
	c, err := client.New("http://"+ln.Addr().String(), nil)
	require.NoError(t, err)
	p := &serverProc{client: c.WithToken(admin), addr: ln.Addr().String(), agentTok: agentTok}
	var once sync.Once
	p.stop = func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
			require.NoError(t, sched.Stop(ctx))
			require.NoError(t, srv.Close())
			require.NoError(t, db.Close())
		})
	}
	t.Cleanup(p.stop)
	return p
}

// startAgent runs an agent named node-1 until the end of the test.
func startAgent(t *testing.T, cfg agent.Config) {
	t.Helper()
	cfg.Name, cfg.CPU, cfg.Memory = "node-1", 2000, 1<<30
	cfg.Logger = slog.New(slog.DiscardHandler)
	a, err := agent.New(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
}

// proxy stands between an agent and its server and can cut the link: open
// and new connections are then closed at once (a server that is gone), or
// held open and silent (a network that drops every packet).
type proxy struct {
	ln      net.Listener
	mu      sync.Mutex
	target  string // "" while cut
	silent  bool   // while cut: hold connections, never answer
	clients map[net.Conn]bool
	ups     map[net.Conn]bool
	wg      sync.WaitGroup
	// refused gets a value for each connection closed at once by a cut.
	refused chan struct{}
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &proxy{ln: ln, target: target, clients: map[net.Conn]bool{}, ups: map[net.Conn]bool{}, refused: make(chan struct{}, 100)}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) url() string { return "http://" + p.ln.Addr().String() }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.clients[c] = true
		target, silent := p.target, p.silent
		p.mu.Unlock()
		switch {
		case target != "":
			p.wg.Add(1)
			go p.forward(c, target)
		case !silent:
			p.closeConn(p.clients, c)
			select {
			case p.refused <- struct{}{}:
			default:
			}
		}
	}
}

func (p *proxy) forward(c net.Conn, target string) {
	defer p.wg.Done()
	up, err := net.Dial("tcp", target)
	if err != nil {
		p.closeConn(p.clients, c)
		return
	}
	p.mu.Lock()
	if p.target == "" { // cut while dialling
		p.mu.Unlock()
		_ = up.Close()
		p.endClient(c)
		return
	}
	p.ups[up] = true
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		_, _ = io.Copy(up, c)
		p.closeConn(p.ups, up)
	}()
	_, _ = io.Copy(c, up)
	p.closeConn(p.ups, up)
	p.endClient(c)
}

// endClient closes a client's connection whose server side is gone, unless
// the link is cut silent: then it stays open until heal.
func (p *proxy) endClient(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.target == "" && p.silent {
		return
	}
	_ = c.Close()
	delete(p.clients, c)
}

func (p *proxy) closeConn(set map[net.Conn]bool, c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	_ = c.Close()
	delete(set, c)
}

// cut breaks the link; silent says how.
func (p *proxy) cut(silent bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.target, p.silent = "", silent
	for c := range p.ups {
		_ = c.Close()
	}
	if !silent {
		for c := range p.clients {
			_ = c.Close()
		}
	}
}

// heal links the proxy to target, and drops what a silent cut held.
func (p *proxy) heal(target string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.clients {
		_ = c.Close()
	}
	p.target, p.silent = target, false
}

func (p *proxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	p.target = ""
	for _, set := range []map[net.Conn]bool{p.clients, p.ups} {
		for c := range set {
			_ = c.Close()
		}
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// pidOf returns the pid of a task's main process from its sandbox.
func pidOf(t *testing.T, sandbox string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(sandbox, "pid"))
	require.NoError(t, err, "a running task has a pid file")
	f := strings.Fields(string(b))
	require.NotEmpty(t, f)
	pid, err := strconv.Atoi(f[0])
	require.NoError(t, err)
	return pid
}

// startTime reads the start time of a process (field 22 of its stat), as
// the exec driver records it beside the pid.
func startTime(t *testing.T, pid int) uint64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	require.NoError(t, err)
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	st, err := strconv.ParseUint(f[22-3], 10, 64)
	require.NoError(t, err)
	return st
}

// waitGone waits until process pid has ended (a zombie has): a pidfd turns
// readable when its process ends.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return
	}
	require.NoError(t, err)
	defer func() { require.NoError(t, unix.Close(fd)) }()
	for {
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, int(testDeadline.Milliseconds()))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		require.NoError(t, err)
		require.Equal(t, 1, n, "process %d still runs after %s", pid, testDeadline)
		return
	}
}

// byAttempt returns a one-instance job's tasks by attempt.
func byAttempt(j api.Job) map[int]api.Task {
	out := map[int]api.Task{}
	for _, tk := range j.Tasks {
		out[tk.Attempt] = tk
	}
	return out
}

// TestAgentStopsTasksWhenCutOff cuts an agent off from its server for
// longer than stop_after: the agent kills its task by itself, and when it
// reaches a server again it reports the task LOST, which is rescheduled.
func TestAgentStopsTasksWhenCutOff(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		silent  bool // the network drops packets (else the server is gone)
		restart bool // a new server on the same store takes over
	}{
		{name: "server gone, then restarted", restart: true},
		{name: "network drops everything, then heals", silent: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			const stopAfter = 300 * time.Millisecond
			dir := t.TempDir()
			srv := startServer(t, dir)
			px := newProxy(t, srv.addr)
			c, err := client.New(px.url(), nil)
			require.NoError(t, err)
			c = c.WithToken(srv.agentTok)
			startAgent(t, agent.Config{Client: c, DataDir: filepath.Join(dir, "agent"), SyncWait: 200 * time.Millisecond, StopAfter: stopAfter})
			submit(t, srv.client, `
job: t/dev/cut
task: {command: ["sleep", "600"], kill_grace: 1s}
retry: {attempts: 0}
reschedule: {attempts: 1, delay: 10ms}
`)
			first := waitRunning(t, srv.client, "t/dev/cut", 1).Tasks[0]
			sandbox := filepath.Join(dir, "agent", "tasks", first.ID)
			pid := pidOf(t, sandbox)

			px.cut(tt.silent)
			if tt.restart {
				srv.stop()
			}
			waitGone(t, pid)

			if tt.restart {
				srv = startServer(t, dir)
			}
			px.heal(srv.addr)
			j := waitFor(t, srv.client, "t/dev/cut", func(j api.Job) bool { return len(j.Tasks) == 2 && j.Counts["RUNNING"] == 1 })

			tasks := byAttempt(j)
			lost := tasks[1]
			require.Equal(t, first.ID, lost.ID)
			require.Equal(t, "LOST", lost.State)
			require.Equal(t, "agent_stopped", lost.Reason)
			require.Equal(t, "killed: the agent lost the server for more than 300ms (stop_after)", lost.Message)
			require.Equal(t, "RUNNING", tasks[2].State, "rescheduled")
			require.Equal(t, "node-1", tasks[2].Node)
			require.NoFileExists(t, filepath.Join(sandbox, "pid"))
			evs, err := srv.client.JobEvents(context.Background(), "t/dev/cut")
			require.NoError(t, err)
			var why []string
			for _, e := range evs {
				if e.Reason == "reschedule" {
					why = append(why, e.Message)
				}
			}
			require.Equal(t, []string{fmt.Sprintf("instance 0 attempt 2: reschedule 1 of 1 after 10ms, because task %s was LOST on node node-1 "+
				"(killed: the agent lost the server for more than 300ms (stop_after))", first.ID)}, why)
		})
	}
}

// TestAgentKeepsTasksThroughShortOutage: an outage shorter than stop_after
// costs nothing; the task runs on and no copy is made.
func TestAgentKeepsTasksThroughShortOutage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv := startServer(t, dir)
	px := newProxy(t, srv.addr)
	c, err := client.New(px.url(), nil)
	require.NoError(t, err)
	c = c.WithToken(srv.agentTok)
	startAgent(t, agent.Config{Client: c, DataDir: filepath.Join(dir, "agent"), SyncWait: 200 * time.Millisecond, StopAfter: time.Minute})
	submit(t, srv.client, `
job: t/dev/long
task: {command: ["sleep", "600"], kill_grace: 1s}
`)
	first := waitRunning(t, srv.client, "t/dev/long", 1).Tasks[0]
	pid := pidOf(t, filepath.Join(dir, "agent", "tasks", first.ID))
	fd, err := unix.PidfdOpen(pid, 0)
	require.NoError(t, err)
	defer func() { require.NoError(t, unix.Close(fd)) }()

	px.cut(false)
	// The agent's syncs fail, and it retries.
	for range 3 {
		select {
		case <-px.refused:
		case <-time.After(testDeadline):
			t.Fatal("the agent does not sync")
		}
	}
	px.heal(srv.addr)
	// A job that starts after the outage proves the agent synced again.
	submit(t, srv.client, `
job: t/dev/after
task: {command: ["sh", "-c", "exit 0"]}
`)
	require.Equal(t, "SUCCEEDED", waitEnd(t, srv.client, "t/dev/after").State)

	j, err := srv.client.GetJob(context.Background(), "t/dev/long")
	require.NoError(t, err)
	require.Len(t, j.Tasks, 1)
	require.Equal(t, "RUNNING", j.Tasks[0].State)
	n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0)
	require.NoError(t, err)
	require.Zero(t, n, "the task's process runs on")
}

// TestRestartedAgentReportsLeftovers: an agent that starts on the data
// directory of an earlier agent process, which died with tasks running,
// kills what is left of them and reports them LOST; the server reschedules
// them.
func TestRestartedAgentReportsLeftovers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv := startServer(t, dir)
	submit(t, srv.client, `
job: t/dev/left
instances: 2
task: {command: ["sh", "-c", "exit 0"]}
retry: {attempts: 0}
reschedule: {attempts: 1, delay: 10ms}
`)

	// The earlier agent: it got both tasks and said they run.
	ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
	defer cancel()
	info := api.NodeInfo{Name: "node-1", Attributes: map[string]string{"os": runtime.GOOS}, Capacity: api.Resources{CPU: 2000, Memory: 1 << 30}}
	var seq uint64
	ids := map[int]string{} // by instance
	for len(ids) < 2 {
		seq++
		resp, err := srv.client.WithToken(srv.agentTok).Sync(ctx, api.SyncRequest{Node: info, Seq: seq, Wait: api.Duration(time.Second)})
		require.NoError(t, err)
		for _, as := range resp.Assign {
			ids[as.Instance] = as.TaskID
		}
	}
	var report []api.TaskStatus
	for _, id := range ids {
		report = append(report, api.TaskStatus{TaskID: id, State: "RUNNING"})
	}
	seq++
	_, err := srv.client.WithToken(srv.agentTok).Sync(ctx, api.SyncRequest{Node: info, Seq: seq, Tasks: report})
	require.NoError(t, err)
	j, err := srv.client.GetJob(ctx, "t/dev/left")
	require.NoError(t, err)
	require.Equal(t, 2, j.Counts["RUNNING"])

	// What it left: instance 0's process runs on; instance 1's ended
	// while no agent watched.
	data := filepath.Join(dir, "agent")
	alive := exec.Command("sleep", "600")
	alive.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, alive.Start())
	t.Cleanup(func() {
		_ = alive.Process.Kill()
		_ = alive.Wait()
	})
	ended := exec.Command("true")
	require.NoError(t, ended.Start())
	endedStart := startTime(t, ended.Process.Pid)
	require.NoError(t, ended.Wait())
	for inst, pf := range map[int]string{
		0: fmt.Sprintf("%d %d\n", alive.Process.Pid, startTime(t, alive.Process.Pid)),
		1: fmt.Sprintf("%d %d\n", ended.Process.Pid, endedStart),
	} {
		sandbox := filepath.Join(data, "tasks", ids[inst])
		require.NoError(t, os.MkdirAll(sandbox, 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(sandbox, "pid"), []byte(pf), 0o600))
	}

	startAgent(t, agent.Config{Client: srv.client.WithToken(srv.agentTok), DataDir: data, SyncWait: time.Second})

	waitGone(t, alive.Process.Pid)
	j = waitEnd(t, srv.client, "t/dev/left")
	require.Equal(t, "SUCCEEDED", j.State)
	require.Len(t, j.Tasks, 4)
	msgs := map[int]string{
		0: "the agent restarted and killed the task's processes, which it could no longer watch",
		1: "the agent restarted; the task's process had already ended, its end unseen",
	}
	for _, tk := range j.Tasks {
		if tk.Attempt == 1 {
			require.Equal(t, ids[tk.Instance], tk.ID)
			require.Equal(t, "LOST", tk.State)
			require.Equal(t, "agent_restarted", tk.Reason)
			require.Equal(t, msgs[tk.Instance], tk.Message)
			continue
		}
		require.Equal(t, 2, tk.Attempt)
		require.Equal(t, "SUCCEEDED", tk.State, "rescheduled and run")
		require.Equal(t, "node-1", tk.Node)
	}
	err = alive.Wait()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, syscall.SIGKILL, ee.Sys().(syscall.WaitStatus).Signal(), "killed for real")
}
