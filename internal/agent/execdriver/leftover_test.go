package execdriver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/drover-dev/drover/internal/procfs"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// readPidFile returns the pid and start time a sandbox's pid file holds.
func readPidFile(t *testing.T, dir string) (int, uint64) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, pidFile))
	require.NoError(t, err)
	f := strings.Fields(string(b))
	require.Len(t, f, 2, "pid file %q", b)
	pid, err := strconv.Atoi(f[0])
	require.NoError(t, err)
	start, err := strconv.ParseUint(f[1], 10, 64)
	require.NoError(t, err)
	return pid, start
}

// isRunning reports whether process pid has not ended (a zombie has).
func isRunning(t *testing.T, pid int) bool {
	t.Helper()
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return false
	}
	require.NoError(t, err)
	defer func() { require.NoError(t, unix.Close(fd)) }()
	n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0)
	require.NoError(t, err)
	return n == 0
}

// startSleep starts a `sleep` of the test's own, in a group of its own, and
// ends it at the end of the test.
func startSleep(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "1000")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

func TestPidFileLivesWithTheTask(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	dir := filepath.Join(parent, "task-a")
	h := start(t, Config{Dir: dir, Command: []string{"sh", "-c", "echo ready; sleep 1000"}})
	waitOutput(t, h, "ready")

	pid, startTime := readPidFile(t, dir)
	require.Equal(t, h.Pid(), pid)
	st, err := procfs.ReadStat(pid)
	require.NoError(t, err)
	require.Equal(t, st.StartTime, startTime)

	h.Kill()
	waitDone(t, h)
	require.NoFileExists(t, filepath.Join(dir, pidFile), "an ended task leaves no pid file")
	found, err := ReapLeftovers(parent)
	require.NoError(t, err)
	require.Empty(t, found, "nothing left over from a task that ended")
}

// TestReapLeftoversKillsTree sets up what a crashed agent leaves: a task's
// process tree, reparented away from us, with its pid file. The main
// process, its child and a grandchild that left the group with setsid are
// all killed.
func TestReapLeftoversKillsTree(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	dir := filepath.Join(parent, "task-a")
	require.NoError(t, os.MkdirAll(dir, 0o700))
	// The launcher starts the task as the exec driver would (a group of
	// its own, here by setsid), waits until its tree is up, and exits: the
	// task is then nobody's child, like one whose agent died.
	task := `
		echo $$ > main
		setsid sh -c 'echo $$ > escaped; exec sleep 1000' </dev/null >/dev/null 2>&1 &
		sleep 1000 &
		echo $! > child
		while [ ! -s escaped ]; do sleep 0.01; done
		echo up > ready
		wait
	`
	require.NoError(t, os.WriteFile(filepath.Join(dir, "task.sh"), []byte(task), 0o600))
	ctx, cancel := context.WithTimeout(t.Context(), testDeadline)
	defer cancel()
	launcher := exec.CommandContext(ctx, "sh", "-c", `mkfifo ready; setsid sh task.sh </dev/null >/dev/null 2>&1 & read x < ready`)
	launcher.Dir = dir
	out, err := launcher.CombinedOutput()
	require.NoError(t, err, "launcher: %s", out)
	var pids []int
	for _, f := range []string{"main", "child", "escaped"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		require.NoError(t, err)
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		require.NoError(t, err)
		// Held by a pidfd, so a failed test still kills it, and no one
		// else.
		fd, err := unix.PidfdOpen(pid, 0)
		require.NoError(t, err, "%s %d runs", f, pid)
		t.Cleanup(func() {
			_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
			_ = unix.Close(fd)
		})
		pids = append(pids, pid)
	}
	root := pids[0]
	st, err := procfs.ReadStat(root)
	require.NoError(t, err)
	require.NotEqual(t, os.Getpid(), st.PPID, "the task is not our child")
	require.NotEqual(t, root, procGroup(t, pids[2]), "the setsid grandchild left the task's group")
	require.NoError(t, writePidFile(dir, root))

	found, err := ReapLeftovers(parent)

	require.NoError(t, err)
	require.Equal(t, map[string]Leftover{"task-a": {Dir: dir, Alive: true}}, found)
	for _, pid := range pids {
		waitGone(t, pid)
	}
	require.NoFileExists(t, filepath.Join(dir, pidFile))
	found, err = ReapLeftovers(parent)
	require.NoError(t, err)
	require.Empty(t, found, "a sandbox is reaped once")
}

// TestReapLeftoversSparesStrangers: a pid file is trusted only with its
// start time, and only for a task's sandbox; whatever it says, no process
// but the task's is touched.
func TestReapLeftoversSparesStrangers(t *testing.T) {
	t.Parallel()
	ended := exec.Command("true")
	require.NoError(t, ended.Start())
	endedStat, err := procfs.ReadStat(ended.Process.Pid) // a zombie still has one
	require.NoError(t, err)
	require.NoError(t, ended.Wait())
	initStat, err := procfs.ReadStat(1)
	require.NoError(t, err)

	tests := []struct {
		name string
		// pidFile returns the pid file's content for a live stranger,
		// or false for no pid file at all.
		pidFile func(stranger procfs.Stat) (string, bool)
		want    *Leftover // nil: the sandbox is not a leftover
	}{
		{
			name:    "pid reused by a stranger",
			pidFile: func(s procfs.Stat) (string, bool) { return fmt.Sprintf("%d %d\n", s.PID, s.StartTime+1), true },
			want:    &Leftover{},
		},
		{
			name: "process ended",
			pidFile: func(procfs.Stat) (string, bool) {
				return fmt.Sprintf("%d %d\n", endedStat.PID, endedStat.StartTime), true
			},
			want: &Leftover{},
		},
		{
			name:    "init",
			pidFile: func(procfs.Stat) (string, bool) { return fmt.Sprintf("1 %d\n", initStat.StartTime), true },
			want:    &Leftover{},
		},
		{
			name:    "garbage",
			pidFile: func(s procfs.Stat) (string, bool) { return fmt.Sprintf("%d\n", s.PID), true },
			want:    &Leftover{},
		},
		{
			name:    "negative pid",
			pidFile: func(s procfs.Stat) (string, bool) { return fmt.Sprintf("-%d %d\n", s.PID, s.StartTime), true },
			want:    &Leftover{},
		},
		{
			name:    "no pid file",
			pidFile: func(procfs.Stat) (string, bool) { return "", false },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			stranger := startSleep(t)
			st, err := procfs.ReadStat(stranger.Process.Pid)
			require.NoError(t, err)
			parent := t.TempDir()
			dir := filepath.Join(parent, "task-a")
			require.NoError(t, os.MkdirAll(dir, 0o700))
			if content, ok := tt.pidFile(st); ok {
				require.NoError(t, os.WriteFile(filepath.Join(dir, pidFile), []byte(content), 0o600))
			}
			// A file beside the sandboxes is not one.
			require.NoError(t, os.WriteFile(filepath.Join(parent, pidFile), fmt.Appendf(nil, "%d %d\n", st.PID, st.StartTime), 0o600))

			found, err := ReapLeftovers(parent)

			require.NoError(t, err)
			if tt.want == nil {
				require.Empty(t, found)
			} else {
				tt.want.Dir = dir
				require.Equal(t, map[string]Leftover{"task-a": *tt.want}, found)
				require.NoFileExists(t, filepath.Join(dir, pidFile), "reaped once")
			}
			require.True(t, isRunning(t, stranger.Process.Pid), "the stranger is untouched")
			require.True(t, isRunning(t, 1))
		})
	}
}

func TestReapLeftoversNoDir(t *testing.T) {
	t.Parallel()
	found, err := ReapLeftovers(filepath.Join(t.TempDir(), "missing"))
	require.NoError(t, err)
	require.Empty(t, found)
}

// TestReapLeftoversKillsOrphanedGroup: the task's main process ended
// while no agent watched, but a child it left in its group lives on. No
// process has the recorded pid any more; the group is still the task's,
// and is killed.
func TestReapLeftoversKillsOrphanedGroup(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	dir := filepath.Join(parent, "task-orphans")
	require.NoError(t, os.MkdirAll(dir, 0o700))
	childFile := filepath.Join(dir, "child")
	cmd := exec.Command("sh", "-c", `sleep 1000 & echo $! > "$0"`, childFile)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	st, err := procfs.ReadStat(cmd.Process.Pid)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, pidFile), fmt.Appendf(nil, "%d %d\n", cmd.Process.Pid, st.StartTime), 0o600))
	require.NoError(t, cmd.Wait()) // the main process is gone and reaped
	b, err := os.ReadFile(childFile)
	require.NoError(t, err)
	child, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = unix.Kill(child, unix.SIGKILL) })
	require.True(t, isRunning(t, child))

	found, err := ReapLeftovers(parent)
	require.NoError(t, err)
	require.True(t, found["task-orphans"].Alive)
	waitGone(t, child)
}
