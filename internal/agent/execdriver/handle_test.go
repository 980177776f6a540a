package execdriver

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/drover-dev/drover/internal/procfs"
	"github.com/drover-dev/drover/internal/tasklog"
)

// agentOnlyVar is set in the test process, standing for the agent's own
// settings, which must never reach a task.
const agentOnlyVar = "DROVER_AGENT_SECRET"

// testDeadline bounds every wait of a test. It is far above what any wait
// needs, so reaching it means a hang, not a slow machine.
const testDeadline = 60 * time.Second

func TestMain(m *testing.M) {
	if err := os.Setenv(agentOnlyVar, "agent-only"); err != nil {
		panic(err)
	}
	goleak.VerifyTestMain(m)
}

// start starts cfg, with a fresh sandbox when cfg.Dir is empty. At the end
// of the test the task is killed, waited for, and its logs are closed.
func start(t *testing.T, cfg Config) *Handle {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	h, err := Start(cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		h.Kill()
		waitDone(t, h)
		require.NoError(t, h.Stdout().Close())
		require.NoError(t, h.Stderr().Close())
	})
	return h
}

// waitDone waits until h is done and returns its result.
func waitDone(t *testing.T, h *Handle) Result {
	t.Helper()
	select {
	case <-h.Done():
		return h.Result()
	case <-time.After(testDeadline):
		t.Fatalf("task %d not done after %s", h.Pid(), testDeadline)
		return Result{}
	}
}

// readLog returns every byte l still keeps.
func readLog(t *testing.T, l *tasklog.Log) string {
	t.Helper()
	var b strings.Builder
	buf := make([]byte, 64<<10)
	off := l.Start()
	for {
		n, start, err := l.ReadAt(off, buf)
		if errors.Is(err, io.EOF) {
			return b.String()
		}
		require.NoError(t, err)
		b.Write(buf[:n])
		off = start + int64(n)
	}
}

// waitOutput follows the task's stdout until it holds want.
func waitOutput(t *testing.T, h *Handle, want string) {
	t.Helper()
	deadline := time.After(testDeadline)
	for {
		changed := h.Stdout().Changed()
		out := readLog(t, h.Stdout())
		if strings.Contains(out, want) {
			return
		}
		select {
		case <-changed:
		case <-h.Done():
			require.Contains(t, readLog(t, h.Stdout()), want, "task ended; stderr: %s", readLog(t, h.Stderr()))
			return
		case <-deadline:
			t.Fatalf("stdout does not hold %q after %s: %q", want, testDeadline, out)
		}
	}
}

// readPids reads the pids a test script wrote to file in its work dir.
func readPids(t *testing.T, dir, file string) []int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "work", file))
	require.NoError(t, err, "the script writes its pids before anything can stop it")
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(f)
		require.NoError(t, err)
		pids = append(pids, pid)
	}
	require.NotEmpty(t, pids)
	return pids
}

// waitGone waits until process pid has ended (a zombie counts as ended).
// A pidfd turns readable when its process ends, so this waits on the event
// itself.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return
	}
	require.NoError(t, err)
	defer func() { require.NoError(t, unix.Close(fd)) }()
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, int(testDeadline.Milliseconds()))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		require.NoError(t, err)
		require.Equal(t, 1, n, "process %d still runs after %s", pid, testDeadline)
		return
	}
}

// procGroup returns the process group of pid.
func procGroup(t *testing.T, pid int) int {
	t.Helper()
	p, err := procfs.ReadStat(pid)
	require.NoError(t, err)
	return p.PGID
}

func TestExit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		command     []string
		wantCode    int
		wantSignal  string
		wantMessage string
	}{
		{name: "exit 0", command: []string{"sh", "-c", "exit 0"}, wantCode: 0, wantMessage: "exit code 0"},
		{name: "exit 3", command: []string{"sh", "-c", "exit 3"}, wantCode: 3, wantMessage: "exit code 3"},
		{name: "binary from PATH", command: []string{"true"}, wantCode: 0, wantMessage: "exit code 0"},
		{
			name: "own signal", command: []string{"sh", "-c", "kill -KILL $$"},
			wantCode: -1, wantSignal: "SIGKILL", wantMessage: "killed by signal SIGKILL",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			before := time.Now()
			h := start(t, Config{Command: tt.command})
			require.Positive(t, h.Pid())
			got := waitDone(t, h)

			require.Equal(t, tt.wantCode, got.ExitCode)
			require.Equal(t, tt.wantSignal, got.Signal)
			require.Equal(t, ReasonExited, got.Reason)
			require.Equal(t, tt.wantMessage, got.Message)
			require.False(t, got.StartedAt.Before(before))
			require.False(t, got.FinishedAt.Before(got.StartedAt))

			h.Kill() // after the end: changes nothing
			require.Equal(t, got, h.Result())
		})
	}
}

func TestOutput(t *testing.T) {
	t.Parallel()

	t.Run("stdout and stderr", func(t *testing.T) {
		t.Parallel()
		h := start(t, Config{Command: []string{"sh", "-c", "echo out; echo err >&2; echo more"}})
		waitDone(t, h)
		require.Equal(t, "out\nmore\n", readLog(t, h.Stdout()))
		require.Equal(t, "err\n", readLog(t, h.Stderr()))
	})

	t.Run("chatty task within the log caps", func(t *testing.T) {
		t.Parallel()
		const total = 30_000_000
		logCfg := tasklog.Config{MaxSegmentBytes: 256 << 10, MaxSegments: 3}
		dir := t.TempDir()
		h := start(t, Config{
			Dir:     dir,
			Command: []string{"sh", "-c", "yes | head -c " + strconv.Itoa(total)},
			Log:     logCfg,
		})
		res := waitDone(t, h)
		require.Equal(t, 0, res.ExitCode, res.Message)

		// Done means every byte went through the log.
		out := h.Stdout()
		require.EqualValues(t, total, out.End())
		capBytes := logCfg.MaxSegmentBytes * int64(logCfg.MaxSegments)
		require.LessOrEqual(t, out.End()-out.Start(), capBytes)
		kept := readLog(t, out)
		require.EqualValues(t, out.End()-out.Start(), len(kept))
		for i := range kept {
			want := byte('y')
			if (out.Start()+int64(i))%2 == 1 {
				want = '\n'
			}
			if kept[i] != want {
				t.Fatalf("byte at offset %d is %q, want %q", out.Start()+int64(i), kept[i], want)
			}
		}

		entries, err := os.ReadDir(filepath.Join(dir, "logs"))
		require.NoError(t, err)
		var used int64
		for _, e := range entries {
			fi, err := e.Info()
			require.NoError(t, err)
			require.LessOrEqual(t, fi.Size(), logCfg.MaxSegmentBytes, e.Name())
			used += fi.Size()
		}
		require.LessOrEqual(t, used, 2*capBytes, "stdout and stderr together")
	})
}

func TestEnvironment(t *testing.T) {
	t.Parallel()
	agentPath := os.Getenv("PATH")
	if agentPath == "" {
		agentPath = defaultPath
	}
	tests := []struct {
		name string
		env  map[string]string
		// want lists the variables beyond LANG and TZ, which pass when set.
		want func(dir string) map[string]string
	}{
		{
			name: "base and task variables",
			env:  map[string]string{"DROVER_X": "42", "GREETING": "hello world"},
			want: func(dir string) map[string]string {
				return map[string]string{
					"PATH":     agentPath,
					"HOME":     filepath.Join(dir, "work"),
					"TMPDIR":   filepath.Join(dir, "tmp"),
					"DROVER_X": "42",
					"GREETING": "hello world",
				}
			},
		},
		{
			name: "task variables win",
			env:  map[string]string{"PATH": "/usr/bin:/bin", "HOME": "/nowhere"},
			want: func(dir string) map[string]string {
				return map[string]string{
					"PATH":   "/usr/bin:/bin",
					"HOME":   "/nowhere",
					"TMPDIR": filepath.Join(dir, "tmp"),
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			h := start(t, Config{Dir: dir, Command: []string{"env"}, Env: tt.env})
			res := waitDone(t, h)
			require.Equal(t, 0, res.ExitCode, res.Message)

			want := tt.want(dir)
			for _, k := range []string{"LANG", "TZ"} {
				if v, ok := os.LookupEnv(k); ok {
					want[k] = v
				}
			}
			got := map[string]string{}
			for line := range strings.Lines(readLog(t, h.Stdout())) {
				k, v, _ := strings.Cut(strings.TrimSuffix(line, "\n"), "=")
				got[k] = v
			}
			require.Equal(t, want, got)
			require.NotContains(t, got, agentOnlyVar)
		})
	}
}

func TestSandbox(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "task-1")
	h := start(t, Config{Dir: dir, Command: []string{"sh", "-c", "pwd -P; touch made-here; touch \"$TMPDIR/tmp-file\""}})
	res := waitDone(t, h)
	require.Equal(t, 0, res.ExitCode, res.Message+": "+readLog(t, h.Stderr()))

	realWork, err := filepath.EvalSymlinks(filepath.Join(dir, "work"))
	require.NoError(t, err)
	require.Equal(t, realWork+"\n", readLog(t, h.Stdout()))
	require.FileExists(t, filepath.Join(dir, "work", "made-here"))
	require.FileExists(t, filepath.Join(dir, "tmp", "tmp-file"))
	fi, err := os.Stat(dir)
	require.NoError(t, err)
	require.Equal(t, fs.FileMode(0o700), fi.Mode().Perm())
}

func TestStartErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// prepare may put files into the sandbox before Start.
		prepare     func(t *testing.T, dir string)
		command     []string
		env         map[string]string
		wantMessage string
		wantIs      error
	}{
		{
			name:        "not in PATH",
			command:     []string{"nosuchcmd", "arg"},
			wantMessage: `exec: "nosuchcmd": executable file not found in $PATH`,
			wantIs:      exec.ErrNotFound,
		},
		{
			name:        "not in the task's PATH",
			command:     []string{"sh", "-c", "true"},
			env:         map[string]string{"PATH": "/nonexistent"},
			wantMessage: `exec: "sh": executable file not found in $PATH`,
			wantIs:      exec.ErrNotFound,
		},
		{
			name:        "missing path",
			command:     []string{"./missing.sh"},
			wantMessage: `exec: "./missing.sh": no such file or directory`,
			wantIs:      fs.ErrNotExist,
		},
		{
			name: "not executable",
			prepare: func(t *testing.T, dir string) {
				require.NoError(t, os.MkdirAll(filepath.Join(dir, "work"), 0o700))
				require.NoError(t, os.WriteFile(filepath.Join(dir, "work", "run.sh"), []byte("#!/bin/sh\n"), 0o600))
			},
			command:     []string{"./run.sh"},
			wantMessage: `exec: "./run.sh": permission denied`,
			wantIs:      fs.ErrPermission,
		},
		{
			name: "relative PATH entries are skipped",
			prepare: func(t *testing.T, dir string) {
				require.NoError(t, os.MkdirAll(filepath.Join(dir, "work", "bin"), 0o700))
				require.NoError(t, os.WriteFile(filepath.Join(dir, "work", "bin", "hello"), []byte("#!/bin/sh\n"), 0o700))
			},
			command:     []string{"hello"},
			env:         map[string]string{"PATH": "bin:/usr/bin"},
			wantMessage: `exec: "hello": executable file not found in $PATH`,
			wantIs:      exec.ErrNotFound,
		},
		{
			name: "not a program",
			prepare: func(t *testing.T, dir string) {
				require.NoError(t, os.MkdirAll(filepath.Join(dir, "work"), 0o700))
				require.NoError(t, os.WriteFile(filepath.Join(dir, "work", "data"), []byte("\x00\x01\x02\x03"), 0o700))
			},
			command:     []string{"./data"},
			wantMessage: `exec: "./data": exec format error`,
			wantIs:      unix.ENOEXEC,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if tt.prepare != nil {
				tt.prepare(t, dir)
			}
			h, err := Start(Config{Dir: dir, Command: tt.command, Env: tt.env})
			require.Nil(t, h)
			var startErr *StartError
			require.ErrorAs(t, err, &startErr)
			require.EqualError(t, err, tt.wantMessage)
			require.ErrorIs(t, err, tt.wantIs)
			for _, sub := range []string{"work", "tmp", "logs"} {
				require.DirExists(t, filepath.Join(dir, sub))
			}
		})
	}

	t.Run("invalid config", func(t *testing.T) {
		t.Parallel()
		_, err := Start(Config{
			Env:       map[string]string{"A=B": "x"},
			Timeout:   -time.Second,
			KillGrace: -time.Second,
		})
		var startErr *StartError
		require.False(t, errors.As(err, &startErr), "a bad config is not the command's fault")
		for _, want := range []string{"Dir: must not be empty", "Command: must not be empty", `Env["A=B"]`, "Timeout: must not be negative", "KillGrace: must not be negative"} {
			require.ErrorContains(t, err, want)
		}
	})
}

func TestTaskPath(t *testing.T) {
	t.Parallel()
	bin := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(bin, "hello"), []byte("#!/bin/sh\necho hello from $0\n"), 0o700))
	h := start(t, Config{
		Command: []string{"hello"},
		Env:     map[string]string{"PATH": "/usr/bin:/bin:" + bin},
	})
	res := waitDone(t, h)
	require.Equal(t, 0, res.ExitCode, res.Message)
	require.Equal(t, "hello from "+filepath.Join(bin, "hello")+"\n", readLog(t, h.Stdout()))
}

func TestTimeoutKillsTree(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := start(t, Config{
		Dir:     dir,
		Command: []string{"sh", "-c", "sleep 1000 & echo $! > pids; sleep 1000"},
		Timeout: time.Second,
	})
	res := waitDone(t, h)

	require.Equal(t, ReasonTimeout, res.Reason)
	require.Equal(t, "timed out after 1s", res.Message)
	require.Equal(t, -1, res.ExitCode)
	require.Equal(t, "SIGTERM", res.Signal)
	require.GreaterOrEqual(t, res.FinishedAt.Sub(res.StartedAt), time.Second)
	for _, pid := range readPids(t, dir, "pids") {
		waitGone(t, pid)
	}
}

func TestKillTree(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// The escaped child calls setsid(1) before it reports its pid, so by
	// "ready" it is in a session and group of its own, and its output is
	// not the task's: only the walk of parent links can find it.
	script := `
		mkfifo escaped
		setsid sh -c 'echo $$ > escaped; exec sleep 1000' >/dev/null 2>&1 </dev/null &
		read escaped < escaped
		sleep 1000 &
		echo "$escaped $!" > pids
		echo ready
		wait
	`
	h := start(t, Config{Dir: dir, Command: []string{"sh", "-c", script}})
	waitOutput(t, h, "ready")
	pids := readPids(t, dir, "pids")
	escaped := pids[0]
	require.NotEqual(t, h.Pid(), procGroup(t, escaped), "the setsid child left the task's group")
	require.Equal(t, Result{}, h.Result(), "no result before Done")

	h.Kill()
	h.Kill()
	res := waitDone(t, h)

	require.Equal(t, ReasonKilled, res.Reason)
	require.Equal(t, "killed on request", res.Message)
	require.Equal(t, "SIGTERM", res.Signal)
	for _, pid := range pids {
		waitGone(t, pid)
	}
}

func TestKillGraceEscalates(t *testing.T) {
	t.Parallel()
	const grace = 300 * time.Millisecond
	// An ignored signal stays ignored across exec, so sleep ignores
	// SIGTERM too.
	h := start(t, Config{
		Command:   []string{"sh", "-c", "trap '' TERM; echo ready; sleep 1000"},
		KillGrace: grace,
	})
	waitOutput(t, h, "ready")

	killedAt := time.Now()
	h.Kill()
	res := waitDone(t, h)

	require.Equal(t, ReasonKilled, res.Reason)
	require.Equal(t, "SIGKILL", res.Signal)
	require.Equal(t, -1, res.ExitCode)
	require.GreaterOrEqual(t, res.FinishedAt.Sub(killedAt), grace, "SIGKILL only after the grace period")
}

func TestKillWakesStoppedTask(t *testing.T) {
	t.Parallel()
	// The task handles SIGTERM but is stopped when Kill comes: only with a
	// SIGCONT does it get to run its handler before the grace period ends.
	h := start(t, Config{
		Command:   []string{"sh", "-c", "trap 'exit 7' TERM; echo ready; kill -STOP $$; sleep 1000"},
		KillGrace: testDeadline,
	})
	waitOutput(t, h, "ready")
	h.Kill()
	res := waitDone(t, h)

	require.Equal(t, ReasonKilled, res.Reason)
	require.Equal(t, 7, res.ExitCode, "the SIGTERM handler ran")
	require.Empty(t, res.Signal)
}

func TestLeftoversDoNotOutliveTask(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		script string
	}{
		{
			name:   "background child holding the output",
			script: "sleep 1000 & echo $! > pids",
		},
		{
			name:   "background child with its own output",
			script: "sleep 1000 >/dev/null 2>&1 & echo $! > pids",
		},
		{
			// setsid -f forks, so the sleep is an orphan in its own
			// session by the time the task ends: only the pipe it holds
			// leads back to the task.
			name:   "escaped orphan holding the output",
			script: `mkfifo p; setsid -f sh -c 'echo $$ > p; exec sleep 1000'; cat p > pids`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			h := start(t, Config{Dir: dir, Command: []string{"sh", "-c", tt.script + "; echo bye"}})
			res := waitDone(t, h)

			require.Equal(t, ReasonExited, res.Reason)
			require.Equal(t, 0, res.ExitCode, res.Message)
			require.Equal(t, "bye\n", readLog(t, h.Stdout()))
			for _, pid := range readPids(t, dir, "pids") {
				waitGone(t, pid)
			}
		})
	}
}

// TestRunAsUser: with a Credential, the task runs as that user, with no
// capabilities and no supplementary groups, can write its HOME and TMPDIR,
// and cannot write what belongs to root.
func TestRunAsUser(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("WARNING: TestRunAsUser NOT RUN: switching users needs root")
	}
	root := t.TempDir()
	// The task's user must be able to cross every directory above its
	// sandbox (t.TempDir makes a private parent too).
	require.NoError(t, os.Chmod(filepath.Dir(root), 0o711))
	require.NoError(t, os.Chmod(root, 0o711))
	secret := filepath.Join(root, "root-only")
	require.NoError(t, os.WriteFile(secret, []byte("x"), 0o600))
	h := start(t, Config{Dir: filepath.Join(root, "task"), Credential: &Credential{UID: 65534, GID: 65534},
		Command: []string{"sh", "-c", `id -u; id -G; grep CapEff /proc/self/status; touch "$HOME/h" "$TMPDIR/t" && echo wrote; cat ` + secret + ` || echo denied`}})
	waitDone(t, h)
	out := readLog(t, h.Stdout())
	require.Equal(t, 0, h.Result().ExitCode, out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Equal(t, []string{"65534", "65534", "CapEff:\t0000000000000000", "wrote", "denied"}, lines)
}
