package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"golang.org/x/sys/unix"

	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/client"
	"github.com/drover-dev/drover/internal/secret"
)

// The end-to-end tests: the scripts in testdata/script drive the real drover
// binary, built once by TestMain, against a 'drover dev' cluster of their
// own (a server, real agents as processes, real task processes), each with
// its own port and data directory under the script's $WORK.
//
// Besides testscript's own commands, scripts have these:
//
//	cluster start [NODES]   start 'drover dev --nodes NODES' (default 2) on a free
//	                        port with --data $WORK/data, output to $WORK/dev.log;
//	                        wait until NODES nodes are READY; set DROVER_ADDR
//	cluster stop            SIGTERM; the process must exit 0 and leave no process
//	                        behind (agents, tasks)
//	cluster kill9           SIGKILL the dev process; its agents and their tasks
//	                        must then stop by themselves
//	cluster restart         stop, then start again on the same data dir and port
//	waitstate KEY STATE     wait until the job is in STATE
//	waittask KEY I STATE    wait until the latest task of instance I is in STATE
//	waitevent KEY REASON [RE]  wait until the job has an event with REASON (and a
//	                        message matching RE)
//	taskprocs N             wait until exactly N task processes (working dir under
//	                        $WORK/data) are alive
//	json PATH [VALUE]       the last stdout, as JSON, has PATH (equal to VALUE);
//	                        with !, it has not
//	jsonvar VAR PATH        set VAR to the value at PATH in the last stdout
//	exitcode N PROG ARGS... run PROG; it must exit with code N
//	expandenv FILE...       replace ${NAME} in the files with the script's NAME
//	tmpfs DIR SIZE          mount a tmpfs of SIZE (16m) on DIR, made if missing;
//	                        unmounted when the script ends, after its cluster is
//	                        killed. Needs root: guard the script with [tmpfs]
//	fill DIR                take every free block of DIR's filesystem (DIR/filler)
//	unfill DIR              delete DIR/filler, freeing the space again
//	httpcode CODE METHOD PATH [FILE]  send a request to $DROVER_ADDR, the body
//	                        from FILE; the answer must have status CODE; its body
//	                        becomes stdout
//	dbcheck FILE            the SQLite file passes PRAGMA integrity_check
//
// and the condition [tmpfs]: this process may mount a tmpfs (root).
//
// A PATH is dot-separated: a field name, [N] for an array's N-th element,
// [k=v,...] for the first element whose fields k are v, and # for a length:
// tasks[instance=1,attempt=2].id, [key=a/b/c].state, tasks.#.
//
// Every wait is bounded (waitTimeout); none sleeps for a fixed time.

const (
	// startTimeout bounds 'cluster start': the server up, the agents READY.
	startTimeout = 30 * time.Second
	// stopTimeout bounds 'cluster stop' and 'cluster kill9'; drover dev
	// gives its agents 15s before it kills them.
	stopTimeout = 30 * time.Second
	// waitTimeout bounds waitstate, waittask, waitevent and taskprocs.
	waitTimeout = 30 * time.Second
	// runTimeout bounds the whole run of the scripts, which normally
	// takes seconds.
	runTimeout = 3 * time.Minute
	// pollEvery is the step of the bounded polls that have no event to
	// wait on (processes, the start of a cluster).
	pollEvery = 50 * time.Millisecond
)

// binDir holds the drover binary built by TestMain.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "drover-script-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
	}
	build := exec.Command(goBin, "build", "-o", filepath.Join(dir, "drover"), ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "build drover for the script tests: %v\n", err)
		return 1
	}
	binDir = dir
	return m.Run()
}

// clusterKey is the key of a script's *cluster in its testscript values.
type clusterKey struct{}

func TestScript(t *testing.T) {
	t.Parallel()
	examples, err := filepath.Abs(filepath.Join("..", "..", "examples"))
	if err != nil {
		t.Fatal(err)
	}
	// A hung command (a job run --wait that never ends) fails the run
	// after runTimeout rather than at go test's own timeout.
	deadline := time.Now().Add(runTimeout)
	if d, ok := t.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	testscript.Run(t, testscript.Params{
		Dir:                 filepath.Join("testdata", "script"),
		Deadline:            deadline,
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
		Condition:           scriptCondition,
		Setup: func(env *testscript.Env) error {
			env.Setenv("PATH", binDir+string(os.PathListSeparator)+env.Getenv("PATH"))
			env.Setenv("EXAMPLES", examples)
			// drover dev remembers its cluster in the CLI's config dir.
			env.Setenv("XDG_CONFIG_HOME", filepath.Join(env.WorkDir, ".config"))
			c := &cluster{work: env.WorkDir, data: filepath.Join(env.WorkDir, "data")}
			env.Values[clusterKey{}] = c
			env.Defer(c.cleanup)
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"cluster":   cmdCluster,
			"waitstate": cmdWaitState,
			"waittask":  cmdWaitTask,
			"waitevent": cmdWaitEvent,
			"taskprocs": cmdTaskProcs,
			"json":      cmdJSON,
			"jsonvar":   cmdJSONVar,
			"exitcode":  cmdExitCode,
			"expandenv": cmdExpandEnv,
			"tmpfs":     cmdTmpfs,
			"fill":      cmdFill,
			"unfill":    cmdUnfill,
			"httpcode":  cmdHTTPCode,
			"dbcheck":   cmdDBCheck,
		},
	})
}

// cluster is a script's 'drover dev' process.
type cluster struct {
	work, data string
	addr       string // HOST:PORT, kept across restarts
	nodes      int
	ts         *testscript.TestScript // the script, once a command ran

	cmd     *exec.Cmd // nil when not running
	exited  chan struct{}
	waitErr error // set before exited is closed
}

func cmdCluster(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("cluster does not support !")
	}
	if len(args) == 0 {
		ts.Fatalf("usage: cluster start [NODES] | stop | kill9 | restart")
	}
	c := ts.Value(clusterKey{}).(*cluster)
	c.ts = ts
	switch {
	case args[0] == "start" && len(args) <= 2:
		nodes := 2
		if len(args) == 2 {
			n, err := strconv.Atoi(args[1])
			if err != nil || n < 1 {
				ts.Fatalf("cluster start: NODES must be a positive number, not %q", args[1])
			}
			nodes = n
		}
		c.start(ts, nodes)
	case args[0] == "stop" && len(args) == 1:
		c.stop(ts)
	case args[0] == "kill9" && len(args) == 1:
		c.kill9(ts)
	case args[0] == "restart" && len(args) == 1:
		c.stop(ts)
		c.start(ts, c.nodes)
	default:
		ts.Fatalf("usage: cluster start [NODES] | stop | kill9 | restart")
	}
}

func (c *cluster) start(ts *testscript.TestScript, nodes int) {
	if c.cmd != nil {
		ts.Fatalf("cluster start: the cluster is already running")
	}
	c.nodes = nodes
	// The first start picks a free port; another process may take it
	// before drover dev listens, so try a few.
	for attempt := 1; ; attempt++ {
		fixed := c.addr != ""
		if !fixed {
			addr, err := freeAddr()
			ts.Check(err)
			c.addr = addr
		}
		err := c.startOnce(ts)
		if err == nil {
			break
		}
		if !fixed && attempt < 3 && strings.Contains(c.logTail(20), "address already in use") {
			ts.Logf("cluster start: %s was taken; trying another port", c.addr)
			c.addr = ""
			continue
		}
		ts.Fatalf("cluster start: %v\n%s", err, c.logs())
	}
	ts.Setenv("DROVER_ADDR", "http://"+c.addr)
	ts.Logf("cluster started at http://%s with %d nodes", c.addr, nodes)
}

// startOnce starts drover dev and waits until its server answers and
// c.nodes agents that started after it are READY.
func (c *cluster) startOnce(ts *testscript.TestScript) error {
	logf, err := os.OpenFile(filepath.Join(c.work, "dev.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(filepath.Join(binDir, "drover"), "dev",
		"--data", c.data, "--listen", c.addr, "--nodes", strconv.Itoa(c.nodes), "--log-level", "info")
	cmd.Dir = c.work
	cmd.Env = []string{
		"PATH=" + ts.Getenv("PATH"),
		"HOME=" + ts.Getenv("HOME"),
		"TMPDIR=" + ts.Getenv("TMPDIR"),
		"XDG_CONFIG_HOME=" + ts.Getenv("XDG_CONFIG_HOME"),
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	// If the test process dies, so does the cluster (its agents follow
	// by themselves).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	started := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	c.cmd, c.exited, c.waitErr = cmd, make(chan struct{}), nil
	go func(exited chan struct{}) {
		c.waitErr = cmd.Wait()
		close(exited)
	}(c.exited)

	cl, err := client.New("http://"+c.addr, nil)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(startTimeout)
	state := "the server did not answer"
	for {
		select {
		case <-c.exited:
			c.cmd = nil
			return fmt.Errorf("drover dev exited while starting: %v", c.waitErr)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := cl.Health(ctx); err == nil {
			state = "no admin token yet"
			// drover dev writes the admin token once the store is ready;
			// the script's CLI and wait commands use it.
			if tok, err := os.ReadFile(filepath.Join(c.data, "admin.token")); err == nil {
				ts.Setenv("DROVER_TOKEN", strings.TrimSpace(string(tok)))
				cl = cl.WithToken(secret.New(strings.TrimSpace(string(tok))))
			}
			state = "no node is READY"
			if ns, err := cl.ListNodes(ctx); err == nil {
				var ready []string
				for _, n := range ns {
					// Nodes of an earlier run are in the store too;
					// only agents that synced since this start count.
					if n.State == "READY" && n.LastSeen.After(started) {
						ready = append(ready, n.Name)
					}
				}
				state = fmt.Sprintf("READY nodes: %q", ready)
				if len(ready) >= c.nodes {
					cancel()
					return nil
				}
			}
		}
		cancel()
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready within %s (%s)", startTimeout, state)
		}
		time.Sleep(pollEvery)
	}
}

// stop sends SIGTERM and waits for a clean exit that leaves nothing
// behind.
func (c *cluster) stop(ts *testscript.TestScript) {
	if c.cmd == nil {
		ts.Fatalf("cluster stop: the cluster is not running")
	}
	ts.Check(c.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-c.exited:
	case <-time.After(stopTimeout):
		_ = c.cmd.Process.Kill()
		<-c.exited
		c.cmd = nil
		ts.Fatalf("cluster stop: drover dev did not exit within %s of SIGTERM\n%s", stopTimeout, c.logs())
	}
	c.cmd = nil
	if c.waitErr != nil {
		ts.Fatalf("cluster stop: drover dev: %v\n%s", c.waitErr, c.logs())
	}
	// drover dev waits for its agents, and they for their tasks: by now
	// nothing of the cluster may be alive.
	if left := procsOf(c.data, false); len(left) > 0 {
		ts.Fatalf("cluster stop: processes left behind:\n%s\n%s", procList(left), c.logs())
	}
}

// kill9 SIGKILLs drover dev and waits for its agents and their tasks to
// stop by themselves.
func (c *cluster) kill9(ts *testscript.TestScript) {
	if c.cmd == nil {
		ts.Fatalf("cluster kill9: the cluster is not running")
	}
	ts.Check(c.cmd.Process.Kill())
	<-c.exited
	c.cmd = nil
	left := waitProcs(c.data, false, 0, stopTimeout)
	if len(left) > 0 {
		ts.Fatalf("cluster kill9: still alive %s after drover dev was killed:\n%s\n%s", stopTimeout, procList(left), c.logs())
	}
}

// cleanup runs at the end of every script: a cluster still running (the
// script failed) is killed with everything it started.
func (c *cluster) cleanup() {
	if c.cmd != nil {
		_ = c.cmd.Process.Kill()
		<-c.exited
		c.cmd = nil
		if c.ts != nil {
			c.ts.Logf("cleanup: killed the cluster, which was still running\n%s", c.logs())
		}
	}
	for _, p := range procsOf(c.data, false) {
		_ = syscall.Kill(p.pid, syscall.SIGKILL)
	}
}

// logs returns the end of the dev and agent logs, for failure messages.
func (c *cluster) logs() string {
	var b strings.Builder
	fmt.Fprintf(&b, "--- end of dev.log ---\n%s", c.logTail(30))
	agents, _ := filepath.Glob(filepath.Join(c.data, "agents", "*", "agent.log"))
	for _, a := range agents {
		data, _ := os.ReadFile(a)
		fmt.Fprintf(&b, "--- end of %s ---\n%s", strings.TrimPrefix(a, c.work+"/"), tail(string(data), 15))
	}
	return b.String()
}

func (c *cluster) logTail(n int) string {
	data, _ := os.ReadFile(filepath.Join(c.work, "dev.log"))
	return tail(string(data), n)
}

func tail(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "")
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// proc is a live process.
type proc struct {
	pid          int
	cmdline, cwd string
}

func procList(ps []proc) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "  pid %d: %s (in %s)\n", p.pid, p.cmdline, p.cwd)
	}
	return b.String()
}

// procsOf lists the live processes (not zombies) of a cluster whose data
// dir is dir: those whose working directory is under dir (tasks, which run
// in their sandboxes), and unless tasksOnly, those that name dir in their
// command line (drover dev, agents) or environment.
func procsOf(dir string, tasksOnly bool) []proc {
	entries, _ := os.ReadDir("/proc")
	var out []proc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		base := filepath.Join("/proc", e.Name())
		stat, err := os.ReadFile(filepath.Join(base, "stat"))
		if err != nil {
			continue // gone
		}
		// pid (comm) STATE ...; comm may hold anything, even ')'.
		if i := bytes.LastIndexByte(stat, ')'); i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' || stat[i+2] == 'X' {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join(base, "cmdline"))
		cwd, _ := os.Readlink(filepath.Join(base, "cwd"))
		p := proc{pid: pid, cmdline: strings.TrimSpace(string(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))), cwd: cwd}
		switch {
		case cwd == dir || strings.HasPrefix(cwd, dir+"/"):
			out = append(out, p)
		case tasksOnly:
		case strings.Contains(p.cmdline, dir):
			out = append(out, p)
		default:
			if env, _ := os.ReadFile(filepath.Join(base, "environ")); bytes.Contains(env, []byte(dir)) {
				out = append(out, p)
			}
		}
	}
	return out
}

// waitProcs waits up to within until exactly n processes of the cluster
// are alive, and returns the last list seen.
func waitProcs(dir string, tasksOnly bool, n int, within time.Duration) []proc {
	deadline := time.Now().Add(within)
	for {
		ps := procsOf(dir, tasksOnly)
		if len(ps) == n || time.Now().After(deadline) {
			return ps
		}
		time.Sleep(pollEvery)
	}
}

func cmdTaskProcs(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: taskprocs N")
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < 0 {
		ts.Fatalf("taskprocs: N must be a number, not %q", args[0])
	}
	dir := ts.Value(clusterKey{}).(*cluster).data
	if ps := waitProcs(dir, true, n, waitTimeout); len(ps) != n {
		ts.Fatalf("taskprocs: want %d task processes, have %d after %s:\n%s", n, len(ps), waitTimeout, procList(ps))
	}
}

// waitJob long-polls a job until ok says it is done, at most waitTimeout.
func waitJob(ts *testscript.TestScript, key, what string, ok func(api.Job) bool) api.Job {
	return waitJobWithin(ts, key, what, waitTimeout, ok)
}

// waitJobWithin is waitJob with its own time limit.
func waitJobWithin(ts *testscript.TestScript, key, what string, waitTimeout time.Duration, ok func(api.Job) bool) api.Job {
	c := scriptClient(ts)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	var index int64
	var last *api.Job
	for {
		j, err := c.WaitJob(ctx, key, index, 5*time.Second)
		if err != nil {
			if ctx.Err() != nil && last != nil {
				ts.Fatalf("job %s: not %s within %s; last seen %s", key, what, waitTimeout, describeJob(*last))
			}
			ts.Fatalf("job %s: %v", key, err)
		}
		if ok(j) {
			return j
		}
		last, index = &j, j.EventIndex
	}
}

func describeJob(j api.Job) string {
	var b strings.Builder
	fmt.Fprintf(&b, "version %d %s", j.Version, j.State)
	for _, t := range j.Tasks {
		fmt.Fprintf(&b, "; instance %d attempt %d %s", t.Instance, t.Attempt, t.State)
		if t.Reason != "" {
			fmt.Fprintf(&b, " (%s: %s)", t.Reason, t.Message)
		}
	}
	return b.String()
}

func cmdWaitState(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: waitstate KEY STATE")
	}
	waitJob(ts, args[0], args[1], func(j api.Job) bool { return j.State == args[1] })
}

func cmdWaitTask(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: waittask KEY INSTANCE STATE")
	}
	inst, err := strconv.Atoi(args[1])
	if err != nil {
		ts.Fatalf("waittask: INSTANCE must be a number, not %q", args[1])
	}
	waitJob(ts, args[0], fmt.Sprintf("with instance %d %s", inst, args[2]), func(j api.Job) bool {
		var latest *api.Task
		for i, t := range j.Tasks {
			if t.Instance == inst && (latest == nil || t.Attempt > latest.Attempt) {
				latest = &j.Tasks[i]
			}
		}
		return latest != nil && latest.State == args[2]
	})
}

func cmdWaitEvent(ts *testscript.TestScript, neg bool, args []string) {
	within := waitTimeout
	if len(args) > 0 && strings.HasPrefix(args[0], "--within=") {
		d, err := time.ParseDuration(strings.TrimPrefix(args[0], "--within="))
		ts.Check(err)
		within, args = d, args[1:]
	}
	if neg || len(args) < 2 || len(args) > 3 {
		ts.Fatalf("usage: waitevent [--within=D] KEY REASON [MESSAGE-REGEXP]")
	}
	msg := regexp.MustCompile("")
	if len(args) == 3 {
		var err error
		msg, err = regexp.Compile(args[2])
		ts.Check(err)
	}
	c := scriptClient(ts)
	var seen []api.Event
	waitJobWithin(ts, args[0], "with a matching "+args[1]+" event", within, func(api.Job) bool {
		var err error
		seen, err = c.JobEvents(context.Background(), args[0])
		ts.Check(err)
		return slices.ContainsFunc(seen, func(e api.Event) bool {
			return e.Reason == args[1] && msg.MatchString(e.Message)
		})
	})
}

func cmdExitCode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exitcode N PROG [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exitcode: N must be a number, not %q", args[0])
	}
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("exitcode: %v", err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited with code %d, want %d", args[1], got, want)
	}
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

func cmdExpandEnv(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: expandenv FILE...")
	}
	for _, f := range args {
		data := ts.ReadFile(f)
		var missing []string
		out := envRef.ReplaceAllStringFunc(data, func(ref string) string {
			name := envRef.FindStringSubmatch(ref)[1]
			v := ts.Getenv(name)
			if v == "" {
				missing = append(missing, name)
			}
			return v
		})
		if len(missing) > 0 {
			ts.Fatalf("expandenv %s: not set: %s", f, strings.Join(missing, ", "))
		}
		ts.Check(os.WriteFile(ts.MkAbs(f), []byte(out), 0o666))
	}
}

func cmdJSON(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: json PATH [VALUE]")
	}
	v, err := lookupJSON(ts.ReadFile("stdout"), args[0])
	switch {
	case len(args) == 1 && !neg && err != nil:
		ts.Fatalf("json: %v", err)
	case len(args) == 1 && neg && err == nil:
		ts.Fatalf("json: %s is %s, want nothing there", args[0], v)
	case len(args) == 2 && !neg && err != nil:
		ts.Fatalf("json: %v", err)
	case len(args) == 2 && !neg && v != args[1]:
		ts.Fatalf("json: %s is %s, want %s", args[0], v, args[1])
	case len(args) == 2 && neg && err == nil && v == args[1]:
		ts.Fatalf("json: %s is %s, want anything else", args[0], v)
	}
}

func cmdJSONVar(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: jsonvar VAR PATH")
	}
	v, err := lookupJSON(ts.ReadFile("stdout"), args[1])
	if err != nil {
		ts.Fatalf("jsonvar: %v", err)
	}
	ts.Setenv(args[0], v)
	ts.Logf("%s=%s", args[0], v)
}

// lookupJSON returns the value at path in the JSON document doc: a string
// as it is, anything else as compact JSON.
func lookupJSON(doc, path string) (string, error) {
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", fmt.Errorf("stdout is not JSON: %v", err)
	}
	segs, err := splitPath(path)
	if err != nil {
		return "", err
	}
	for i, seg := range segs {
		at := strings.Join(segs[:i+1], "")
		switch {
		case seg == "#":
			switch x := v.(type) {
			case []any:
				v = json.Number(strconv.Itoa(len(x)))
			case map[string]any:
				v = json.Number(strconv.Itoa(len(x)))
			default:
				return "", fmt.Errorf("%s: %s has no length", at, jsonText(v))
			}
		case strings.HasPrefix(seg, "["):
			arr, ok := v.([]any)
			if !ok {
				return "", fmt.Errorf("%s: not an array", at)
			}
			sel := strings.TrimSuffix(strings.TrimPrefix(seg, "["), "]")
			if n, err := strconv.Atoi(sel); err == nil {
				if n < 0 || n >= len(arr) {
					return "", fmt.Errorf("%s: the array has %d elements", at, len(arr))
				}
				v = arr[n]
				continue
			}
			idx := slices.IndexFunc(arr, func(e any) bool { return matches(e, sel) })
			if idx < 0 {
				return "", fmt.Errorf("%s: no element matches", at)
			}
			v = arr[idx]
		default:
			obj, ok := v.(map[string]any)
			if !ok {
				return "", fmt.Errorf("%s: not an object", at)
			}
			field, ok := obj[strings.TrimPrefix(seg, ".")]
			if !ok {
				return "", fmt.Errorf("%s: no such field", at)
			}
			v = field
		}
	}
	return jsonText(v), nil
}

// splitPath splits a.b[k=v].c into "a", ".b", "[k=v]", ".c".
func splitPath(path string) ([]string, error) {
	var segs []string
	for rest := path; rest != ""; {
		if rest[0] == '[' {
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				return nil, fmt.Errorf("path %q: unclosed [", path)
			}
			segs = append(segs, rest[:end+1])
			rest = rest[end+1:]
			continue
		}
		dot := rest[0] == '.'
		name := strings.TrimPrefix(rest, ".")
		end := strings.IndexAny(name, ".[")
		if end < 0 {
			end = len(name)
		}
		if end == 0 {
			return nil, fmt.Errorf("path %q: empty field name", path)
		}
		seg := name[:end]
		if seg == "#" {
			segs = append(segs, "#")
		} else if dot || len(segs) > 0 {
			segs = append(segs, "."+seg)
		} else {
			segs = append(segs, seg)
		}
		rest = name[end:]
	}
	if len(segs) == 0 {
		return nil, fmt.Errorf("empty path")
	}
	return segs, nil
}

// matches reports whether e is an object whose fields are as sel
// ("k=v,k2=v2") says.
func matches(e any, sel string) bool {
	obj, ok := e.(map[string]any)
	if !ok {
		return false
	}
	for _, kv := range strings.Split(sel, ",") {
		k, want, _ := strings.Cut(kv, "=")
		got, ok := obj[k]
		if !ok || jsonText(got) != want {
			return false
		}
	}
	return true
}

func jsonText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// scriptCondition answers the conditions of our own: [tmpfs].
func scriptCondition(cond string) (bool, error) {
	switch cond {
	case "tmpfs":
		return canMountTmpfs(), nil
	}
	return false, fmt.Errorf("unknown condition %q", cond)
}

// canMountTmpfs reports whether this process can mount a tmpfs; it tries
// once. Where it cannot, the disk-full scripts are skipped, and this says
// so on stderr, where go test without -v shows it.
var canMountTmpfs = sync.OnceValue(func() bool {
	why := ""
	if os.Geteuid() != 0 {
		why = fmt.Sprintf("not root (uid %d)", os.Geteuid())
	} else if dir, err := os.MkdirTemp("", "drover-tmpfs-probe-"); err != nil {
		why = err.Error()
	} else {
		defer os.Remove(dir)
		if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
			why = fmt.Sprintf("mount -t tmpfs: %v", err)
		} else {
			_ = unix.Unmount(dir, 0)
		}
	}
	if why != "" {
		fmt.Fprintf(os.Stderr, "WARNING: the disk-full scripts (diskfull*.txtar) are NOT RUN: they need to mount a tmpfs: %s\n", why)
		return false
	}
	return true
})

// fillerName is the file 'fill' creates.
const fillerName = "filler"

func cmdTmpfs(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: tmpfs DIR SIZE")
	}
	dir := ts.MkAbs(args[0])
	ts.Check(os.MkdirAll(dir, 0o700))
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+args[1]+",mode=0700"); err != nil {
		ts.Fatalf("mount -t tmpfs -o size=%s on %s: %v", args[1], dir, err)
	}
	c := ts.Value(clusterKey{}).(*cluster)
	ts.Defer(func() {
		// The cluster's processes may hold files there: end them first
		// (cleanup runs again later, and then finds nothing).
		c.cleanup()
		if err := unix.Unmount(dir, 0); err != nil {
			ts.Logf("umount %s: %v; detaching it", dir, err)
			_ = unix.Unmount(dir, unix.MNT_DETACH)
		}
	})
}

func cmdFill(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: fill DIR")
	}
	dir := ts.MkAbs(args[0])
	f, err := os.OpenFile(filepath.Join(dir, fillerName), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	ts.Check(err)
	defer f.Close()
	var st unix.Statfs_t
	ts.Check(unix.Statfs(dir, &st))
	// fallocate takes most of it at once and may stop short; writes take
	// the rest, down to the last block.
	if free := int64(st.Bfree) * st.Bsize; free > 0 {
		_ = unix.Fallocate(int(f.Fd()), 0, 0, free)
	}
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, unix.ENOSPC) {
				ts.Fatalf("fill %s: %v", dir, err)
			}
			break
		}
	}
	ts.Check(unix.Statfs(dir, &st))
	if st.Bfree != 0 {
		ts.Fatalf("fill %s: %d blocks still free", dir, st.Bfree)
	}
}

func cmdUnfill(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: unfill DIR")
	}
	ts.Check(os.Remove(filepath.Join(ts.MkAbs(args[0]), fillerName)))
}

func cmdHTTPCode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 3 || len(args) > 4 {
		ts.Fatalf("usage: httpcode CODE METHOD PATH [FILE]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("httpcode: CODE must be a number, not %q", args[0])
	}
	var body io.Reader
	if len(args) == 4 {
		body = strings.NewReader(ts.ReadFile(args[3]))
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, args[1], ts.Getenv("DROVER_ADDR")+args[2], body)
	ts.Check(err)
	if tok := ts.Getenv("DROVER_TOKEN"); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	ts.Check(err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	ts.Check(err)
	_, _ = ts.Stdout().Write(data)
	if resp.StatusCode != want {
		ts.Fatalf("%s %s: status %d, want %d:\n%s", args[1], args[2], resp.StatusCode, want, data)
	}
}

func cmdDBCheck(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: dbcheck FILE")
	}
	db, err := sql.Open("sqlite", "file:"+ts.MkAbs(args[0]))
	ts.Check(err)
	defer db.Close()
	var check string
	ts.Check(db.QueryRowContext(context.Background(), `PRAGMA integrity_check`).Scan(&check))
	if check != "ok" {
		ts.Fatalf("dbcheck %s: %s", args[0], check)
	}
}

// scriptClient is a client of the script's cluster, with its admin token.
func scriptClient(ts *testscript.TestScript) *client.Client {
	c, err := client.New(ts.Getenv("DROVER_ADDR"), nil)
	ts.Check(err)
	return c.WithToken(secret.New(ts.Getenv("DROVER_TOKEN")))
}
