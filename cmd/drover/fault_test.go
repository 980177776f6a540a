package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/client"
)

// The fault tests cause real faults to a real cluster: 'drover server' and
// 'drover agent' processes of the binary TestMain built, each started on its
// own (not 'drover dev') so that each can be killed alone, running real task
// processes. They kill -9 the server and agents, and cut an agent's network
// (the agent runs in a network namespace of its own, linked to the host by
// a veth pair), then check what docs/guarantees.md promises, and print the
// figures they measured (t.Logf "figure: ..."), which docs/reliability.md
// records.
//
// They run one after another, not in parallel, so that the times they
// measure are not disturbed by each other on a small machine. Every wait is
// a bounded poll of a condition or a long poll of the API. Nothing sleeps
// for a fixed time: even a cut link stays cut until the server has seen
// the silence the test wants.

const (
	// faultTick is the server's liveness check interval
	// (scheduler.livenessTick): a silent node is DOWN at most one tick
	// after its grace ran out.
	faultTick = time.Second
	// faultSlack is what the bounds allow beyond their formula, for a
	// commit and for scheduling delays on a busy 2-core machine.
	faultSlack = 750 * time.Millisecond
	// faultWait bounds each wait of the fault tests.
	faultWait = 45 * time.Second
	// faultSync is the agents' --sync-interval in the fault tests.
	faultSync = time.Second
)

// faultCluster is a server and its agents, each a process of its own.
type faultCluster struct {
	t     *testing.T
	dir   string // everything is under it: server/, agents/NAME/, logs/, out/
	out   string // where tasks write their side effects
	url   string // http://HOST:PORT of the server
	grace time.Duration
	c     *client.Client
	// http is c's HTTP client: it sends token (an admin's API token, once
	// the server made one) as the bearer.
	http  *http.Client
	token atomic.Pointer[string]

	serverArgs []string
	server     *faultProc
	starts     int // of the server
	mu         sync.Mutex
	procs      []*faultProc // every process started, for the cleanup
}

// faultProc is one process of the cluster.
type faultProc struct {
	name    string
	argv    []string
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{}
	started time.Time
}

// newFaultCluster prepares a cluster whose server will listen on host (an
// IP) with --node-grace grace. Its cleanup kills every process it started
// and every task process under its directory.
func newFaultCluster(t *testing.T, host string, grace time.Duration) *faultCluster {
	t.Helper()
	skipIfShort(t)
	dir := t.TempDir()
	fc := &faultCluster{t: t, dir: dir, out: filepath.Join(dir, "out"), grace: grace}
	for _, d := range []string{fc.out, filepath.Join(dir, "logs"), filepath.Join(dir, "agents")} {
		require.NoError(t, os.MkdirAll(d, 0o755))
	}
	port, err := freePort(host)
	require.NoError(t, err)
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	fc.url = "http://" + addr
	fc.http = &http.Client{Transport: bearer{fc: fc, base: &http.Transport{MaxIdleConnsPerHost: 16}}}
	fc.c, err = client.New(fc.url, fc.http)
	require.NoError(t, err)
	fc.serverArgs = []string{filepath.Join(binDir, "drover"), "server", "--data", filepath.Join(dir, "server"),
		"--listen", addr, "--node-grace", grace.String(), "--log-level", "info"}
	if ip := net.ParseIP(host); !ip.IsLoopback() && serverHasFlag("--insecure-http") {
		// The partition tests' private veth link: no TLS needed there.
		fc.serverArgs = append(fc.serverArgs, "--insecure-http")
	}
	t.Cleanup(fc.cleanup)
	return fc
}

// skipIfShort skips a fault test under go test -short (make test-short):
// each takes seconds of real time.
func skipIfShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("a fault test: seconds of real time; not in -short mode")
	}
}

// bearer sends the cluster's token, if any, with every request.
type bearer struct {
	fc   *faultCluster
	base http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	if tok := b.fc.token.Load(); tok != nil {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+*tok)
	}
	return b.base.RoundTrip(r)
}

// serverHasAuth reports whether the binary's server wants credentials:
// its agents then need an agent token (the server writes one to
// DATA/agent.token), and API clients a user's token.
func serverHasAuth() bool { return strings.Contains(agentHelp(), "--token-file") }

// serverHasFlag reports whether 'drover server' takes a flag.
func serverHasFlag(flag string) bool { return strings.Contains(serverHelp(), flag) }

var (
	agentHelp  = sync.OnceValue(func() string { return droverHelp("agent") })
	serverHelp = sync.OnceValue(func() string { return droverHelp("server") })
)

func droverHelp(cmd string) string {
	out, _ := exec.Command(filepath.Join(binDir, "drover"), cmd, "--help").CombinedOutput()
	return string(out)
}

// adminPassword is how 'drover server' shows the first admin's password,
// once, on its first start.
var adminPassword = regexp.MustCompile(`created user admin with password (\S+)`)

// freePort returns a TCP port free on host just now.
func freePort(host string) (int, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (fc *faultCluster) cleanup() {
	fc.mu.Lock()
	procs := slices.Clone(fc.procs)
	fc.mu.Unlock()
	for _, p := range procs {
		if p.running() {
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	}
	// The tasks of an agent killed with -9 outlive it.
	for _, p := range procsOf(fc.dir, false) {
		_ = syscall.Kill(p.pid, syscall.SIGKILL)
	}
	if left := waitProcs(fc.dir, false, 0, 10*time.Second); len(left) > 0 {
		fc.t.Errorf("cleanup: processes still alive:\n%s", procList(left))
	}
	fc.http.CloseIdleConnections()
	if fc.t.Failed() {
		for _, p := range procs {
			data, _ := os.ReadFile(p.logPath)
			fc.t.Logf("--- end of %s ---\n%s", filepath.Base(p.logPath), tail(string(data), 25))
		}
	}
}

// start starts a process of the cluster with its output in logs/NAME.log.
func (fc *faultCluster) start(name string, argv []string) *faultProc {
	fc.t.Helper()
	logPath := filepath.Join(fc.dir, "logs", name+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	require.NoError(fc.t, err)
	defer logf.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = fc.dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + fc.dir, "TMPDIR=" + os.TempDir()}
	cmd.Stdout, cmd.Stderr = logf, logf
	// If the test process dies, so does the cluster.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &faultProc{name: name, argv: argv, logPath: logPath, cmd: cmd, exited: make(chan struct{}), started: time.Now()}
	require.NoError(fc.t, cmd.Start(), "start %s", name)
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	fc.mu.Lock()
	fc.procs = append(fc.procs, p)
	fc.mu.Unlock()
	return p
}

func (p *faultProc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// kill9 SIGKILLs the process, waits until it is gone and returns when the
// signal was sent.
func (p *faultProc) kill9(t *testing.T) time.Time {
	t.Helper()
	at := time.Now()
	require.NoError(t, p.cmd.Process.Kill(), "kill -9 %s", p.name)
	<-p.exited
	return at
}

// startServer starts the server and waits until it answers, and, if it
// wants credentials, until it has written them; the first time, it logs in
// as the first admin.
func (fc *faultCluster) startServer() {
	fc.t.Helper()
	fc.server = fc.start("server", fc.serverArgs)
	fc.starts++
	fc.waitFor(startTimeout, "the server answers /health", func() (bool, string) {
		require.True(fc.t, fc.server.running(), "the server exited while starting:\n%s", fc.logTail("server"))
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		err := fc.c.Health(ctx)
		return err == nil, fmt.Sprint(err)
	})
	if !serverHasAuth() {
		return
	}
	// The server says where agents find their token once it wrote it.
	var log []byte
	fc.waitFor(startTimeout, "the server's credentials", func() (bool, string) {
		log, _ = os.ReadFile(fc.server.logPath)
		return bytes.Count(log, []byte("agents join with the token")) >= fc.starts, "not yet"
	})
	if fc.token.Load() != nil {
		return
	}
	m := adminPassword.FindSubmatch(log)
	require.NotNil(fc.t, m, "no admin password in the server's output:\n%s", log)
	body, err := json.Marshal(map[string]string{"user": "admin", "password": string(m[1])})
	require.NoError(fc.t, err)
	resp, err := fc.http.Post(fc.url+"/v1/login", "application/json", bytes.NewReader(body))
	require.NoError(fc.t, err)
	defer resp.Body.Close()
	var tok struct{ Secret string }
	require.NoError(fc.t, json.NewDecoder(resp.Body).Decode(&tok))
	require.NotEmpty(fc.t, tok.Secret, "login as admin: %s", resp.Status)
	fc.token.Store(&tok.Secret)
}

// agentOpts are the flags of one agent.
type agentOpts struct {
	netns     string        // run it in this network namespace
	stopAfter time.Duration // default 30s
	cpu       int64         // millicores, default 2000
	caps      []string      // --capability values
}

// startAgent starts an agent named name (its --data is agents/NAME) and
// waits until its node is READY by a sync of this process.
func (fc *faultCluster) startAgent(name string, o agentOpts) *faultProc {
	fc.t.Helper()
	if o.stopAfter == 0 {
		o.stopAfter = 30 * time.Second
	}
	if o.cpu == 0 {
		o.cpu = 2000
	}
	var argv []string
	if o.netns != "" {
		argv = []string{"ip", "netns", "exec", o.netns}
	}
	argv = append(argv, filepath.Join(binDir, "drover"), "agent", "--server", fc.url,
		"--data", fc.agentDir(name), "--name", name, "--sync-interval", faultSync.String(),
		"--stop-after", o.stopAfter.String(), "--cpu", strconv.FormatInt(o.cpu, 10), "--memory", "64GiB",
		"--log-level", "info")
	for _, c := range o.caps {
		argv = append(argv, "--capability", c)
	}
	if serverHasAuth() {
		argv = append(argv, "--token-file", filepath.Join(fc.dir, "server", "agent.token"))
	}
	p := fc.start("agent-"+name, argv)
	fc.waitFor(startTimeout, "node "+name+" READY", func() (bool, string) {
		require.True(fc.t, p.running(), "agent %s exited while starting:\n%s", name, fc.logTail("agent-"+name))
		n, ok := fc.node(name)
		return ok && n.State == "READY" && n.LastSeen.After(p.started), fmt.Sprintf("%+v", n)
	})
	return p
}

func (fc *faultCluster) agentDir(name string) string { return filepath.Join(fc.dir, "agents", name) }

func (fc *faultCluster) logTail(name string) string {
	data, _ := os.ReadFile(filepath.Join(fc.dir, "logs", name+".log"))
	return tail(string(data), 25)
}

// waitFor polls cond until it holds, at most within, and fails the test
// with what cond last said if it never does. It returns how long it waited.
func (fc *faultCluster) waitFor(within time.Duration, what string, cond func() (bool, string)) time.Duration {
	fc.t.Helper()
	start := time.Now()
	deadline := start.Add(within)
	for {
		ok, detail := cond()
		if ok {
			return time.Since(start)
		}
		require.False(fc.t, time.Now().After(deadline), "not within %s: %s; last seen: %s", within, what, detail)
		time.Sleep(pollEvery)
	}
}

func (fc *faultCluster) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 10*time.Second)
}

// node returns a node as the API shows it.
func (fc *faultCluster) node(name string) (api.Node, bool) {
	ctx, cancel := fc.ctx()
	defer cancel()
	ns, err := fc.c.ListNodes(ctx)
	if err != nil {
		return api.Node{}, false
	}
	i := slices.IndexFunc(ns, func(n api.Node) bool { return n.Name == name })
	if i < 0 {
		return api.Node{}, false
	}
	return ns[i], true
}

// events GETs a list of events (an API path with its query).
func (fc *faultCluster) events(path string) []api.Event {
	fc.t.Helper()
	ctx, cancel := fc.ctx()
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fc.url+path, nil)
	require.NoError(fc.t, err)
	resp, err := fc.http.Do(req)
	require.NoError(fc.t, err)
	defer resp.Body.Close()
	require.Equal(fc.t, http.StatusOK, resp.StatusCode, "GET %s", path)
	var es []api.Event
	require.NoError(fc.t, json.NewDecoder(resp.Body).Decode(&es))
	return es
}

// nodeEvents returns the events recorded with a node (its own and its
// tasks'), oldest first.
func (fc *faultCluster) nodeEvents(name string) []api.Event {
	return fc.events("/v1/events?limit=10000&node=" + name)
}

// jobEvents returns a job's events, oldest first.
func (fc *faultCluster) jobEvents(key string) []api.Event {
	return fc.events("/v1/jobs/" + key + "/events?limit=10000")
}

func findEvent(es []api.Event, ok func(api.Event) bool) (api.Event, bool) {
	i := slices.IndexFunc(es, ok)
	if i < 0 {
		return api.Event{}, false
	}
	return es[i], true
}

// nodeDown is a node's own node_down event (its tasks' LOST events carry
// the same reason).
func nodeDown(e api.Event) bool { return e.Reason == "node_down" && e.TaskID == "" }

// submit submits a job document, which must be accepted.
func (fc *faultCluster) submit(doc string) {
	fc.t.Helper()
	ctx, cancel := fc.ctx()
	defer cancel()
	_, err := fc.c.SubmitJob(ctx, []byte(doc), "")
	require.NoError(fc.t, err, "submit:\n%s", doc)
}

// waitJob long-polls a job until ok holds for it.
func (fc *faultCluster) waitJob(key, what string, ok func(api.Job) bool) api.Job {
	fc.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), faultWait)
	defer cancel()
	var index int64
	var last api.Job
	for {
		j, err := fc.c.WaitJob(ctx, key, index, 5*time.Second)
		if err != nil {
			require.NoError(fc.t, ctx.Err(), "job %s: not %s within %s; last seen %s", key, what, faultWait, describeJob(last))
			time.Sleep(pollEvery) // the server may be restarting
			continue
		}
		if ok(j) {
			return j
		}
		last, index = j, j.EventIndex
	}
}

// waitJobEnd waits until a job has ended and returns it.
func (fc *faultCluster) waitJobEnd(key string) api.Job {
	fc.t.Helper()
	return fc.waitJob(key, "ended", func(j api.Job) bool { return j.State != "RUNNING" })
}

// latestTasks returns each instance's task with the highest attempt.
func latestTasks(j api.Job) map[int]api.Task {
	out := map[int]api.Task{}
	for _, t := range j.Tasks {
		if cur, ok := out[t.Instance]; !ok || t.Attempt > cur.Attempt {
			out[t.Instance] = t
		}
	}
	return out
}

func taskByID(j api.Job, id string) api.Task {
	i := slices.IndexFunc(j.Tasks, func(t api.Task) bool { return t.ID == id })
	if i < 0 {
		return api.Task{}
	}
	return j.Tasks[i]
}

// requireSucceededOnce checks that the job SUCCEEDED and each of its
// instances has exactly one SUCCEEDED task, its latest.
func requireSucceededOnce(t *testing.T, j api.Job) {
	t.Helper()
	require.Equal(t, "SUCCEEDED", j.State, describeJob(j))
	count := map[int]int{}
	for _, tk := range j.Tasks {
		if tk.State == "SUCCEEDED" {
			count[tk.Instance]++
		}
	}
	latest := latestTasks(j)
	var bad []string
	for i := range j.Instances {
		if count[i] != 1 || latest[i].State != "SUCCEEDED" {
			bad = append(bad, fmt.Sprintf("instance %d: %d SUCCEEDED, latest %s", i, count[i], latest[i].State))
		}
	}
	require.Empty(t, bad, "job %s: want exactly one SUCCEEDED task per instance, its latest", j.Key)
}

// taskProcs lists the live processes of one task of an agent: those whose
// working directory is in the task's sandbox.
func (fc *faultCluster) taskProcs(agent, taskID string) []proc {
	return procsOf(filepath.Join(fc.agentDir(agent), "tasks", taskID), true)
}

// agentTaskProcs lists the live task processes of an agent.
func (fc *faultCluster) agentTaskProcs(agent string) []proc {
	return procsOf(filepath.Join(fc.agentDir(agent), "tasks"), true)
}

// secs formats a duration as seconds with two decimals.
func secs(d time.Duration) string { return fmt.Sprintf("%.2fs", d.Seconds()) }

// TestFaultServerKill9 kills the server with SIGKILL while 300 tasks of 3
// jobs are in flight, and a fourth job's submission races the kill; it
// restarts the server on the same data directory once the tasks in flight
// have ended (the agents hold their ends to report). Every accepted job is
// there, the racing submission made one job, not two; every instance
// SUCCEEDED exactly once; and each instance's side effect was made by
// exactly the tasks the server recorded RUNNING.
func TestFaultServerKill9(t *testing.T) {
	fc := newFaultCluster(t, "127.0.0.1", 3*time.Second)
	fc.startServer()
	fc.startAgent("a1", agentOpts{})
	fc.startAgent("a2", agentOpts{})

	// A task appends its ID to its instance's file, then sleeps 0.2-0.9s
	// (by instance and attempt).
	doc := func(name string, instances int) string {
		return fmt.Sprintf(`job: fault/crash/%s
instances: %d
task:
  command: [sh, -c, 'echo "$DROVER_TASK_ID" >> "$OUT/$NAME-$DROVER_INSTANCE"; sleep 0.$(( (DROVER_INSTANCE * 7 + DROVER_ATTEMPT) %% 8 + 2 ))']
  env: {OUT: %q, NAME: %s}
  resources: {cpu: 50, memory: 1MiB}
retry: {attempts: 0}
reschedule: {attempts: 3, delay: 0s}
`, name, instances, fc.out, name)
	}
	jobs := map[string]int{"j1": 100, "j2": 100, "j3": 100, "j4": 10}
	for _, name := range []string{"j1", "j2", "j3"} {
		fc.submit(doc(name, jobs[name]))
	}

	// Kill once a quarter of the tasks have succeeded, with others
	// running.
	var atKill string
	fc.waitFor(faultWait, "a quarter of the tasks SUCCEEDED and some running", func() (bool, string) {
		ctx, cancel := fc.ctx()
		defer cancel()
		js, err := fc.c.ListJobs(ctx)
		if err != nil {
			return false, err.Error()
		}
		var ok, running int
		for _, j := range js {
			ok += j.Counts["SUCCEEDED"]
			running += j.Counts["RUNNING"] + j.Counts["STARTING"] + j.Counts["ASSIGNED"]
		}
		atKill = fmt.Sprintf("%d SUCCEEDED, %d ASSIGNED/STARTING/RUNNING", ok, running)
		return ok >= 75 && running > 0, atKill
	})
	// The fourth job's submission races the kill; the client retries it
	// with its idempotency key until the restarted server answers.
	type result struct {
		res api.SubmitResponse
		err error
	}
	submitted := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		res, err := fc.c.SubmitJobWithRetry(ctx, []byte(doc("j4", jobs["j4"])), "fault-crash-j4")
		submitted <- result{res, err}
	}()
	killedAt := fc.server.kill9(t)
	t.Logf("killed the server with SIGKILL at %s", atKill)
	// The agents carry on without it: the tasks in flight end, and the
	// agents keep their ends to report. Restart once they all have.
	fc.waitFor(faultWait, "the tasks in flight at the kill end", func() (bool, string) {
		ps := procsOf(filepath.Join(fc.dir, "agents"), true)
		return len(ps) == 0, fmt.Sprintf("%d task processes alive", len(ps))
	})

	fc.startServer()
	down := time.Since(killedAt)
	restarted := fc.server.started
	reconnect := fc.waitFor(faultWait, "both agents synced with the restarted server", func() (bool, string) {
		a1, _ := fc.node("a1")
		a2, _ := fc.node("a2")
		return a1.LastSeen.After(restarted) && a2.LastSeen.After(restarted), fmt.Sprintf("a1 %+v, a2 %+v", a1, a2)
	})
	r := <-submitted
	require.NoError(t, r.err, "the submission racing the kill")
	t.Logf("the submission racing the kill: version %d, created %v", r.res.Version, r.res.Created)

	done := map[string]api.Job{}
	for name := range jobs {
		done[name] = fc.waitJobEnd("fault/crash/" + name)
	}
	finished := time.Since(restarted)

	// No accepted job is missing, and the racing submission made one job
	// version, not two.
	ctx, cancel := fc.ctx()
	defer cancel()
	listed, err := fc.c.ListJobs(ctx)
	require.NoError(t, err)
	require.Len(t, listed, len(jobs), "jobs after the restart")
	again, err := fc.c.SubmitJob(ctx, []byte(doc("j4", jobs["j4"])), "fault-crash-j4")
	require.NoError(t, err)
	require.False(t, again.Created, "a retry of the racing submission created a job")
	require.Equal(t, 1, again.Version, "a retry of the racing submission")

	var lost, tasks, instances, ranTwice int
	for name, j := range done {
		require.Equal(t, 1, j.Version, j.Key)
		require.Equal(t, jobs[name], j.Instances, j.Key)
		requireSucceededOnce(t, j)
		instances += j.Instances
		// The tasks the server recorded RUNNING, by instance.
		running := map[string]bool{}
		for _, e := range fc.jobEvents(j.Key) {
			if e.To == "RUNNING" {
				running[e.TaskID] = true
			}
		}
		byInstance := map[int][]string{}
		for _, tk := range j.Tasks {
			tasks++
			if tk.State == "LOST" {
				lost++
			}
			if running[tk.ID] {
				byInstance[tk.Instance] = append(byInstance[tk.Instance], tk.ID)
			}
		}
		// Each instance's side effect holds one line per task that ran.
		// A task whose run straddled the crash may have been LOST and
		// run again, and then two tasks wrote a line; but every line must
		// come from a task the server recorded RUNNING, and every such
		// task must have written its line: nothing ran without a record,
		// nothing recorded did not run.
		var bad []string
		for i := range j.Instances {
			data, err := os.ReadFile(filepath.Join(fc.out, fmt.Sprintf("%s-%d", name, i)))
			if err != nil {
				bad = append(bad, fmt.Sprintf("instance %d: no side effect: %v", i, err))
				continue
			}
			lines := strings.Fields(string(data))
			slices.Sort(lines)
			if want := slices.Sorted(slices.Values(byInstance[i])); !slices.Equal(lines, want) {
				bad = append(bad, fmt.Sprintf("instance %d: written by tasks %q, recorded RUNNING: %q", i, lines, want))
			}
			if len(lines) > 1 {
				ranTwice++
			}
		}
		require.Empty(t, bad, "job %s: side effects", j.Key)
	}
	t.Logf("figure: server kill -9 at %s; restarted once the tasks in flight had ended, %s after the kill; both agents synced %s after it started (reconnection window = grace %s); all %d instances SUCCEEDED %s after it started",
		atKill, secs(down), secs(reconnect), fc.grace, instances, secs(finished))
	t.Logf("figure: server kill -9: %d tasks for %d instances, %d LOST; %d instances ran more than once (each run recorded)", tasks, instances, lost, ranTwice)
}

// TestFaultAgentKill9 kills one of two agents with SIGKILL while it runs
// tasks: its node is DOWN within grace + one liveness tick of the kill, and
// its tasks are LOST (node_down) and RUNNING again on the other node.
func TestFaultAgentKill9(t *testing.T) {
	grace := 3 * time.Second
	fc := newFaultCluster(t, "127.0.0.1", grace)
	fc.startServer()
	agents := map[string]*faultProc{"a1": fc.startAgent("a1", agentOpts{}), "a2": fc.startAgent("a2", agentOpts{})}
	key := "fault/agent/kill9"
	fc.submit(`job: fault/agent/kill9
instances: 4
task:
  command: [sleep, "600"]
  kill_grace: 0s
reschedule: {attempts: 2, delay: 0s}
`)
	j := fc.waitJob(key, "with 4 tasks RUNNING", func(j api.Job) bool { return j.Counts["RUNNING"] == 4 })
	victim, survivor := latestTasks(j)[0].Node, "a1"
	if victim == "a1" {
		survivor = "a2"
	}
	var onVictim []api.Task
	for _, tk := range j.Tasks {
		if tk.Node == victim {
			onVictim = append(onVictim, tk)
		}
	}
	killedAt := agents[victim].kill9(t)

	var down api.Event
	fc.waitFor(faultWait, "a node_down event for "+victim, func() (bool, string) {
		var ok bool
		down, ok = findEvent(fc.nodeEvents(victim), nodeDown)
		return ok, "none yet"
	})
	n, _ := fc.node(victim)
	require.Equal(t, "DOWN", n.State, "node %s after its node_down event", victim)
	detect := down.At.Sub(killedAt)
	require.LessOrEqual(t, detect, grace+faultTick+faultSlack, "node %s DOWN %s after the kill; want within grace %s + tick %s", victim, secs(detect), grace, faultTick)
	require.GreaterOrEqual(t, detect, grace-faultSync-faultSlack, "node %s DOWN %s after the kill: sooner than its grace %s allows", victim, secs(detect), grace)

	// Every task of the victim LOST (node_down), and its instance RUNNING
	// again on the survivor.
	j = fc.waitJob(key, "with every instance RUNNING on "+survivor, func(j api.Job) bool {
		for _, tk := range latestTasks(j) {
			if tk.Node != survivor || tk.State != "RUNNING" {
				return false
			}
		}
		return true
	})
	es := fc.jobEvents(key)
	var replaced time.Time
	for _, v := range onVictim {
		got := taskByID(j, v.ID)
		require.Equal(t, "LOST", got.State, "task %s of node %s", v.ID, victim)
		require.Equal(t, "node_down", got.Reason, "task %s of node %s", v.ID, victim)
		r := latestTasks(j)[v.Instance]
		require.Equal(t, v.Attempt+1, r.Attempt, "instance %d", v.Instance)
		e, ok := findEvent(es, func(e api.Event) bool { return e.TaskID == r.ID && e.To == "RUNNING" })
		require.True(t, ok, "no RUNNING event of task %s", r.ID)
		if e.At.After(replaced) {
			replaced = e.At
		}
	}
	// The agent died, not its node: its tasks still run, unwatched, until
	// an agent starts again on that data directory (TestFaultAgentRestart)
	// or the node goes.
	t.Logf("figure: agent kill -9 (grace %s, sync %s): node DOWN %s after the kill (bound grace + tick = %s); its %d tasks LOST and all RUNNING again on %s %s after the kill; %d orphaned task processes left on the killed agent's node",
		grace, faultSync, secs(detect), secs(grace+faultTick), len(onVictim), survivor, secs(replaced.Sub(killedAt)), len(fc.agentTaskProcs(victim)))
}

// TestFaultAgentRestart kills an agent with SIGKILL while it runs a task and
// starts it again on the same data directory and name within the grace: the
// new agent kills the task's process, which it can no longer watch, reports
// the task LOST (agent_restarted), and the task runs again; the node never
// goes DOWN.
func TestFaultAgentRestart(t *testing.T) {
	grace := 3 * time.Second
	fc := newFaultCluster(t, "127.0.0.1", grace)
	fc.startServer()
	a1 := fc.startAgent("a1", agentOpts{})
	key := "fault/agent/restart"
	fc.submit(`job: fault/agent/restart
task:
  command: [sleep, "600"]
reschedule: {attempts: 1, delay: 0s}
`)
	j := fc.waitJob(key, "RUNNING", func(j api.Job) bool { return j.Counts["RUNNING"] == 1 })
	first := j.Tasks[0]
	var old []proc
	fc.waitFor(faultWait, "the task's process", func() (bool, string) {
		old = fc.taskProcs("a1", first.ID)
		return len(old) == 1, procList(old)
	})
	pid := old[0].pid
	oldStart, err := procStartTime(pid)
	require.NoError(t, err)

	a1.kill9(t)
	require.True(t, processAlive(pid, oldStart), "the task's process died with its agent; the test needs it alive")
	restartedAt := time.Now()
	fc.start(a1.name, a1.argv)
	reaped := fc.waitFor(faultWait, "the old task's process killed by the restarted agent", func() (bool, string) {
		return !processAlive(pid, oldStart), fmt.Sprintf("pid %d alive", pid)
	})
	j = fc.waitJob(key, "with attempt 2 RUNNING", func(j api.Job) bool {
		l := latestTasks(j)[0]
		return l.Attempt == 2 && l.State == "RUNNING"
	})
	got := taskByID(j, first.ID)
	require.Equal(t, "LOST", got.State, "the first task after its agent restarted")
	require.Equal(t, "agent_restarted", got.Reason, "the first task after its agent restarted")
	es := fc.jobEvents(key)
	lostEv, _ := findEvent(es, func(e api.Event) bool { return e.TaskID == first.ID && e.To == "LOST" })
	second := latestTasks(j)[0]
	runEv, _ := findEvent(es, func(e api.Event) bool { return e.TaskID == second.ID && e.To == "RUNNING" })
	_, wentDown := findEvent(fc.nodeEvents("a1"), nodeDown)
	require.False(t, wentDown, "node a1 went DOWN though its agent came back within the grace")
	require.Empty(t, fc.taskProcs("a1", first.ID), "processes of the first task")
	t.Logf("figure: agent restart within grace %s: old task process killed %s after the restart began; task LOST (agent_restarted) %s and its replacement RUNNING %s after it; no node_down",
		grace, secs(reaped), secs(lostEv.At.Sub(restartedAt)), secs(runEv.At.Sub(restartedAt)))
}

// procStat returns the fields of /proc/PID/stat from field 3 (state) on.
func procStat(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	s := string(b)
	// pid (comm) state ...; comm may hold anything, even ')'.
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 20 {
		return nil, fmt.Errorf("pid %d: odd stat %q", pid, s)
	}
	return f, nil
}

// procStartTime returns a process's start time in clock ticks since boot
// (field 22), which tells it from a later process with the same pid.
func procStartTime(pid int) (uint64, error) {
	f, err := procStat(pid)
	if err != nil {
		return 0, err
	}
	if f[0] == "Z" || f[0] == "X" {
		return 0, fmt.Errorf("pid %d: a zombie", pid)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// processAlive reports whether pid is still the process that started at
// start, and not a zombie.
func processAlive(pid int, start uint64) bool {
	st, err := procStartTime(pid)
	return err == nil && st == start
}

// procCPU returns the CPU time a process has used, user and system (fields
// 14 and 15, in clock ticks of 10ms).
func procCPU(pid int) (time.Duration, error) {
	f, err := procStat(pid)
	if err != nil {
		return 0, err
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("pid %d: odd stat %q", pid, f)
	}
	return time.Duration(u+s) * 10 * time.Millisecond, nil
}

// TestFaultKillGraceQuiet kills a task that ignores SIGTERM, so that it
// lives out its kill_grace. The server repeats its kill order in every sync
// until the task is gone (as it repeats the kills of a returning node's
// stale tasks); meanwhile the agent must not spin through syncs: server and
// agent stay nearly idle, and the end is still reported at once.
func TestFaultKillGraceQuiet(t *testing.T) {
	fc := newFaultCluster(t, "127.0.0.1", 3*time.Second)
	fc.startServer()
	a1 := fc.startAgent("a1", agentOpts{})
	key, grace := "fault/kill/grace", 3*time.Second
	fc.submit(fmt.Sprintf(`job: %s
task:
  command: [sh, -c, "trap '' TERM; while :; do sleep 0.2; done"]
  kill_grace: %s
`, key, grace))
	fc.waitJob(key, "RUNNING", func(j api.Job) bool { return j.Counts["RUNNING"] == 1 })
	srv0, err := procCPU(fc.server.cmd.Process.Pid)
	require.NoError(t, err)
	ag0, err := procCPU(a1.cmd.Process.Pid)
	require.NoError(t, err)
	ctx, cancel := fc.ctx()
	defer cancel()
	killedAt := time.Now()
	_, err = fc.c.KillJob(ctx, key, nil)
	require.NoError(t, err)
	j := fc.waitJobEnd(key)
	took := time.Since(killedAt)
	srv1, err := procCPU(fc.server.cmd.Process.Pid)
	require.NoError(t, err)
	ag1, err := procCPU(a1.cmd.Process.Pid)
	require.NoError(t, err)
	require.Equal(t, "KILLED", j.State, describeJob(j))
	require.GreaterOrEqual(t, took, grace, "KILLED before its kill_grace ran out")
	require.LessOrEqual(t, took, grace+faultSlack, "KILLED %s after the kill; want its kill_grace %s", secs(took), grace)
	// Spinning through syncs, the pair took 90% of this machine's two
	// cores for the whole grace.
	busy := (srv1 - srv0) + (ag1 - ag0)
	require.LessOrEqual(t, busy, took/5, "server and agent used %s of CPU during a kill of %s: a storm of syncs?", secs(busy), secs(took))
	t.Logf("figure: kill of a task ignoring SIGTERM (kill_grace %s): KILLED %s after the kill; CPU meanwhile: server %s, agent %s",
		grace, secs(took), secs(srv1-srv0), secs(ag1-ag0))
}

// --- network partitions -----------------------------------------------

// netnsSeq makes the names of one run's namespaces and veths unique.
var netnsSeq atomic.Int32

// partition is a network namespace linked to the host by a veth pair: the
// host end holds hostIP/30, the namespace's end nsIP/30. A cut sets the
// namespace's end down: the host end keeps its address and its route (the
// server and the agents on the host reach hostIP as before), and the
// packets of the cut-off side are dropped, never routed anywhere else.
type partition struct {
	t              *testing.T
	ns, host, peer string
	hostIP, nsIP   string
}

// newPartition creates the namespace and veth pair, or skips the test,
// loudly, where it cannot (not root, no ip netns). Its cleanup deletes
// both.
func newPartition(t *testing.T) *partition {
	t.Helper()
	skipIfShort(t)
	skip := func(format string, args ...any) {
		t.Helper()
		msg := "NOT TESTED: the network partition tests need root and 'ip netns': " + fmt.Sprintf(format, args...)
		// On stderr too, where go test without -v shows it.
		fmt.Fprintf(os.Stderr, "\n!!! %s: %s !!!\n\n", t.Name(), msg)
		t.Skip(msg)
	}
	if os.Geteuid() != 0 {
		skip("not running as root (uid %d)", os.Geteuid())
	}
	if _, err := exec.LookPath("ip"); err != nil {
		skip("no ip command: %v", err)
	}
	id := fmt.Sprintf("%d%c", os.Getpid()%100000, 'a'+netnsSeq.Add(1)-1)
	p := &partition{t: t, ns: "drover-fault-" + id, host: "dvh" + id, peer: "dvn" + id}
	var err error
	if p.hostIP, p.nsIP, err = freeSubnet(); err != nil {
		skip("no free 10.201.x.y/30: %v", err)
	}
	if out, err := exec.Command("ip", "netns", "add", p.ns).CombinedOutput(); err != nil {
		skip("ip netns add %s: %v: %s", p.ns, err, out)
	}
	t.Cleanup(func() {
		// Deleting the host end deletes the pair; deleting the namespace
		// deletes its end. The pair may not exist yet.
		_ = exec.Command("ip", "link", "del", p.host).Run()
		if out, err := exec.Command("ip", "netns", "del", p.ns).CombinedOutput(); err != nil {
			t.Errorf("cleanup: ip netns del %s: %v: %s", p.ns, err, out)
		}
	})
	p.ip("link", "add", p.host, "type", "veth", "peer", "name", p.peer)
	p.ip("link", "set", p.peer, "netns", p.ns)
	p.ip("addr", "add", p.hostIP+"/30", "dev", p.host)
	p.ip("link", "set", p.host, "up")
	p.ip("-n", p.ns, "addr", "add", p.nsIP+"/30", "dev", p.peer)
	p.ip("-n", p.ns, "link", "set", p.peer, "up")
	p.ip("-n", p.ns, "link", "set", "lo", "up")
	t.Logf("network namespace %s (%s) linked by %s (%s) to the host", p.ns, p.nsIP, p.host, p.hostIP)
	return p
}

var (
	subnetsMu sync.Mutex
	subnets   = map[string]bool{} // handed out by this run
)

// freeSubnet returns the two host addresses of a 10.201.X.Y/30 that is
// neither used on this host (an earlier run may have left one) nor handed
// out by this run already.
func freeSubnet() (hostIP, nsIP string, err error) {
	out, err := exec.Command("ip", "-4", "-o", "addr", "show").Output()
	if err != nil {
		return "", "", err
	}
	subnetsMu.Lock()
	defer subnetsMu.Unlock()
	for x := 0; x < 256; x++ {
		for y := 0; y < 256; y += 4 {
			h, n := fmt.Sprintf("10.201.%d.%d", x, y+1), fmt.Sprintf("10.201.%d.%d", x, y+2)
			if subnets[h] || strings.Contains(string(out), " "+h+"/") || strings.Contains(string(out), " "+n+"/") {
				continue
			}
			subnets[h] = true
			return h, n, nil
		}
	}
	return "", "", fmt.Errorf("all of 10.201.0.0/16 is in use")
}

func (p *partition) ip(args ...string) {
	p.t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	require.NoError(p.t, err, "ip %s: %s", strings.Join(args, " "), out)
}

// cut sets the namespace's end of the link down and returns when.
func (p *partition) cut() time.Time {
	p.t.Helper()
	at := time.Now()
	p.ip("-n", p.ns, "link", "set", p.peer, "down")
	return at
}

// heal sets it up again and returns when.
func (p *partition) heal() time.Time {
	p.t.Helper()
	p.ip("-n", p.ns, "link", "set", p.peer, "up")
	return time.Now()
}

// ledgerScript is the task of the partition tests. It records in $LEDGER
// when it starts, when it gets SIGTERM (and exits) and when it ends by
// itself: "KIND TASK JOB INSTANCE ATTEMPT NODE UNIXTIME". Attempt 1 sleeps
// $FIRST seconds, later attempts $LATER.
const ledgerScript = `rec() { echo "$1 $DROVER_TASK_ID $DROVER_JOB $DROVER_INSTANCE $DROVER_ATTEMPT $DROVER_NODE $(date +%s.%N)" >> "$LEDGER"; }
rec start
trap 'rec term; exit 143' TERM
d=$LATER
if [ "$DROVER_ATTEMPT" = 1 ]; then d=$FIRST; fi
sleep "$d" &
wait $! && rec end
`

// ledgerJob is a job document running ledgerScript.
func (fc *faultCluster) ledgerJob(key string, instances int, first, later, extra string) string {
	fc.t.Helper()
	script := filepath.Join(fc.out, "task.sh")
	require.NoError(fc.t, os.WriteFile(script, []byte(ledgerScript), 0o644))
	return fmt.Sprintf(`job: %s
instances: %d
task:
  command: [sh, %q]
  env: {LEDGER: %q, FIRST: %q, LATER: %q}
  kill_grace: 5s
  resources: {cpu: 250, memory: 1MiB}
reschedule: {attempts: 3, delay: 0s}
%s`, key, instances, script, filepath.Join(fc.out, "ledger"), first, later, extra)
}

// ledgerEntry is one line of the ledger.
type ledgerEntry struct {
	kind, task, job, node string
	instance, attempt     int
	at                    time.Time
}

func (fc *faultCluster) ledger() []ledgerEntry {
	fc.t.Helper()
	f, err := os.Open(filepath.Join(fc.out, "ledger"))
	require.NoError(fc.t, err)
	defer f.Close()
	var out []ledgerEntry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		w := strings.Fields(sc.Text())
		require.Len(fc.t, w, 7, "ledger line %q", sc.Text())
		inst, err1 := strconv.Atoi(w[3])
		att, err2 := strconv.Atoi(w[4])
		sec, nsec, _ := strings.Cut(w[6], ".")
		s, err3 := strconv.ParseInt(sec, 10, 64)
		ns, err4 := strconv.ParseInt(nsec, 10, 64)
		for _, err := range []error{err1, err2, err3, err4} {
			require.NoError(fc.t, err, "ledger line %q", sc.Text())
		}
		out = append(out, ledgerEntry{kind: w[0], task: w[1], job: w[2], instance: inst, attempt: att, node: w[5], at: time.Unix(s, ns)})
	}
	require.NoError(fc.t, sc.Err())
	return out
}

// TestFaultPartitionLong cuts an agent's network for longer than the grace
// (shorter than its stop_after), then heals it. The node goes DOWN and its
// tasks run again on the other node; on heal, the returning agent is first
// made to kill its stale tasks, and only then gets new work; each instance
// SUCCEEDED exactly once.
func TestFaultPartitionLong(t *testing.T) {
	p := newPartition(t)
	grace, stopAfter := 3*time.Second, 20*time.Second
	fc := newFaultCluster(t, p.hostIP, grace)
	fc.startServer()
	// Only the agent to be cut off runs at first, so the job runs there.
	fc.startAgent("inside", agentOpts{netns: p.ns, stopAfter: stopAfter, cpu: 1000, caps: []string{"side=ns"}})
	first := "fault/partition/first"
	fc.submit(fc.ledgerJob(first, 4, "600", "1", ""))
	j := fc.waitJob(first, "with 4 tasks RUNNING", func(j api.Job) bool { return j.Counts["RUNNING"] == 4 })
	stale := map[string]bool{}
	for _, tk := range j.Tasks {
		stale[tk.ID] = true
	}
	fc.startAgent("outside", agentOpts{stopAfter: stopAfter, cpu: 1000})

	cutAt := p.cut()
	var down api.Event
	fc.waitFor(faultWait, "node inside DOWN", func() (bool, string) {
		var ok bool
		down, ok = findEvent(fc.nodeEvents("inside"), nodeDown)
		return ok, "no node_down event yet"
	})
	fc.waitJob(first, "with every instance RUNNING on outside", func(j api.Job) bool {
		for _, tk := range latestTasks(j) {
			if tk.Node != "outside" || tk.State != "RUNNING" {
				return false
			}
		}
		return true
	})
	var replacedAt time.Time
	for _, e := range fc.nodeEvents("outside") {
		if e.Job == first && e.To == "RUNNING" && e.At.After(replacedAt) {
			replacedAt = e.At
		}
	}
	// New work that only the cut-off node may take waits for it.
	second := "fault/partition/second"
	fc.submit(fc.ledgerJob(second, 2, "0.2", "0.2", "constraints: [{attribute: side, value: ns}]\n"))
	healAt := p.heal()

	j1, j2 := fc.waitJobEnd(first), fc.waitJobEnd(second)
	requireSucceededOnce(t, j1)
	requireSucceededOnce(t, j2)
	// The stale tasks stay LOST: what the returning agent said of them
	// (RUNNING, then KILLED) changed nothing.
	for id := range stale {
		tk := taskByID(j1, id)
		require.Equal(t, "LOST", tk.State, "stale task %s", id)
		require.Equal(t, "node_down", tk.Reason, "stale task %s", id)
	}
	for _, tk := range j2.Tasks {
		require.Equal(t, "inside", tk.Node, "task %s of %s", tk.ID, second)
	}

	// Fencing, by the ledger the tasks wrote: every stale task got its
	// SIGTERM after the heal, and died, before any task of new work
	// started on the returning node.
	var lastKill, firstNew time.Time
	starts := map[string]time.Time{}
	killed := map[string]bool{}
	for _, e := range fc.ledger() {
		switch {
		case e.kind == "start":
			starts[e.task] = e.at
			if e.job == second && (firstNew.IsZero() || e.at.Before(firstNew)) {
				firstNew = e.at
			}
		case e.kind == "term" && stale[e.task]:
			killed[e.task] = true
			if e.at.After(lastKill) {
				lastKill = e.at
			}
		}
	}
	require.Equal(t, slices.Sorted(maps.Keys(stale)), slices.Sorted(maps.Keys(killed)), "stale tasks stopped on the returning node")
	require.True(t, lastKill.After(healAt), "a stale task was stopped at %s, before the heal at %s", lastKill, healAt)
	require.True(t, firstNew.After(lastKill), "new work started on the returning node at %s, before its last stale task was stopped at %s", firstNew, lastKill)
	// The events agree: the node returned, then new work started there.
	// (Its placement may be recorded before the stale tasks are dead: the
	// server withholds the assignment until the agent no longer reports
	// them.)
	es := fc.nodeEvents("inside")
	returned, ok := findEvent(es, func(e api.Event) bool { return e.Reason == "node_returned" })
	require.True(t, ok, "no node_returned event for inside")
	for _, e := range es {
		if e.Job == second && e.To == "STARTING" {
			require.Greater(t, e.ID, returned.ID, "task %s of new work STARTING before the node returned", e.TaskID)
		}
	}
	require.Empty(t, fc.agentTaskProcs("inside"), "task processes alive on the returning node")
	// How long a stale task and its replacement both ran.
	var overlap time.Duration
	for _, tk := range j1.Tasks {
		if !stale[tk.ID] {
			overlap = max(overlap, lastKill.Sub(starts[tk.ID]))
		}
	}
	t.Logf("figure: partition of %s (grace %s, stop_after %s): node DOWN %s after the cut; replacements RUNNING %s after the cut; stale tasks stopped %s after the heal; new work started on the node %s after the last stale task stopped; a task and its replacement both ran for at most %s",
		secs(healAt.Sub(cutAt)), grace, stopAfter, secs(down.At.Sub(cutAt)), secs(replacedAt.Sub(cutAt)), secs(lastKill.Sub(healAt)), secs(firstNew.Sub(lastKill)), secs(overlap))
}

// TestFaultPartitionShort cuts an agent's network for less than the grace
// (until the server has heard nothing from it for a second): the node never
// goes DOWN and its task runs on, untouched.
func TestFaultPartitionShort(t *testing.T) {
	p := newPartition(t)
	grace := 4 * time.Second
	fc := newFaultCluster(t, p.hostIP, grace)
	fc.startServer()
	fc.startAgent("inside", agentOpts{netns: p.ns})
	key := "fault/partition/short"
	fc.submit(`job: fault/partition/short
task:
  command: [sleep, "600"]
`)
	j := fc.waitJob(key, "RUNNING", func(j api.Job) bool { return j.Counts["RUNNING"] == 1 })
	cutAt := p.cut()
	var before, after api.Node
	fc.waitFor(faultWait, "the server hears nothing from inside for 1s", func() (bool, string) {
		before, _ = fc.node("inside")
		return time.Since(before.LastSeen) >= time.Second && time.Since(cutAt) >= time.Second, "last seen " + before.LastSeen.String()
	})
	healAt := p.heal()
	fc.waitFor(faultWait, "inside syncs again after the heal", func() (bool, string) {
		after, _ = fc.node("inside")
		return after.LastSeen.After(healAt), "last seen " + after.LastSeen.String()
	})
	// Had the node been declared DOWN, it would have been before this
	// sync: the event would be there.
	for _, e := range fc.nodeEvents("inside") {
		require.NotContains(t, []string{"node_down", "node_returned"}, e.Reason, "a cut shorter than the grace: %s", e.Message)
	}
	require.Equal(t, "READY", after.State)
	ctx, cancel := fc.ctx()
	defer cancel()
	j2, err := fc.c.GetJob(ctx, key)
	require.NoError(t, err)
	require.Len(t, j2.Tasks, 1, describeJob(j2))
	require.Equal(t, j.Tasks[0].ID, j2.Tasks[0].ID)
	require.Equal(t, "RUNNING", j2.Tasks[0].State)
	t.Logf("figure: partition shorter than grace %s: link cut for %s; the server heard nothing from the node for %s; no node_down, the task untouched",
		grace, secs(healAt.Sub(cutAt)), secs(after.LastSeen.Sub(before.LastSeen)))
}

// TestFaultPartitionStopAfter cuts an agent's network for longer than its
// stop_after: the cut-off agent stops its own tasks, so a task and its
// replacement run at once for at most stop_after - grace; on heal, nothing
// of the stale tasks is left, and the server's record of them stands.
func TestFaultPartitionStopAfter(t *testing.T) {
	p := newPartition(t)
	grace, stopAfter := 2*time.Second, 5*time.Second
	fc := newFaultCluster(t, p.hostIP, grace)
	fc.startServer()
	fc.startAgent("inside", agentOpts{netns: p.ns, stopAfter: stopAfter, cpu: 1000})
	key := "fault/partition/stopafter"
	fc.submit(fc.ledgerJob(key, 2, "600", "1", ""))
	j := fc.waitJob(key, "with 2 tasks RUNNING", func(j api.Job) bool { return j.Counts["RUNNING"] == 2 })
	stale := map[string]api.Task{}
	for _, tk := range j.Tasks {
		stale[tk.ID] = tk
	}
	fc.startAgent("outside", agentOpts{stopAfter: stopAfter, cpu: 1000})

	cutAt := p.cut()
	// Wait for every stale task's SIGTERM in the ledger.
	kills := map[string]time.Time{}
	fc.waitFor(stopAfter+faultWait, "the cut-off agent stops its tasks", func() (bool, string) {
		for _, e := range fc.ledger() {
			if _, ok := stale[e.task]; ok && e.kind == "term" {
				kills[e.task] = e.at
			}
		}
		return len(kills) == len(stale), fmt.Sprintf("%d of %d stopped", len(kills), len(stale))
	})
	var lastKill time.Time
	for _, at := range kills {
		if at.After(lastKill) {
			lastKill = at
		}
	}
	// The node's last sync is the last the server heard before the cut.
	last, _ := fc.node("inside")
	selfKill := lastKill.Sub(last.LastSeen)
	require.LessOrEqual(t, selfKill, stopAfter+faultSlack, "the cut-off agent stopped its tasks %s after its last sync; want stop_after %s", secs(selfKill), stopAfter)
	require.GreaterOrEqual(t, selfKill, stopAfter-faultSync-faultSlack, "the cut-off agent stopped its tasks %s after its last sync, before its stop_after %s", secs(selfKill), stopAfter)
	// Meanwhile the node went DOWN and its tasks ran again elsewhere.
	j = fc.waitJobEnd(key)
	requireSucceededOnce(t, j)
	starts := map[string]time.Time{}
	for _, e := range fc.ledger() {
		if e.kind == "start" {
			starts[e.task] = e.at
		}
	}
	var overlap time.Duration
	for _, tk := range j.Tasks {
		if _, ok := stale[tk.ID]; ok {
			continue
		}
		for id, old := range stale {
			if old.Instance == tk.Instance {
				overlap = max(overlap, kills[id].Sub(starts[tk.ID]))
			}
		}
	}
	window := stopAfter - grace
	require.LessOrEqual(t, overlap, window+faultSlack, "a task and its replacement ran at once for %s; want at most stop_after - grace = %s", secs(overlap), window)

	// On heal the agent tells what it did (LOST, agent_stopped); the
	// server's record stands.
	healAt := p.heal()
	fc.waitFor(faultWait, "inside syncs again after the heal", func() (bool, string) {
		n, _ := fc.node("inside")
		return n.LastSeen.After(healAt) && n.State == "READY", fmt.Sprintf("%+v", n)
	})
	ctx, cancel := fc.ctx()
	defer cancel()
	j, err := fc.c.GetJob(ctx, key)
	require.NoError(t, err)
	for id := range stale {
		tk := taskByID(j, id)
		require.Equal(t, "LOST", tk.State, "stale task %s", id)
		require.Equal(t, "node_down", tk.Reason, "stale task %s", id)
	}
	requireSucceededOnce(t, j)
	require.Empty(t, fc.agentTaskProcs("inside"), "task processes alive on the cut-off node")
	t.Logf("figure: partition past stop_after %s (grace %s; healed %s after the cut, once the job was done): the cut-off agent stopped its tasks %s after its last sync; a task and its replacement ran at once for at most %s (window stop_after - grace = %s)",
		stopAfter, grace, secs(healAt.Sub(cutAt)), secs(selfKill), secs(overlap), window)
}
