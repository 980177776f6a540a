package sshprov

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// shRoundTrip has /bin/sh print the quoted word back.
func shRoundTrip(t testing.TB, s string) string {
	out, err := exec.Command("sh", "-c", "printf '%s' "+shq(s)).Output()
	require.NoError(t, err, "word %q quoted as %s", s, shq(s))
	return string(out)
}

func TestShq(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		"", "plain", "with space", "it's", "''", `"double"`, `back\slash`, "$HOME", "`id`", "$(id)",
		"a\nb", "*", "-n", ";rm -rf /", "tab\there", "ünïcode",
	} {
		require.Equal(t, s, shRoundTrip(t, s))
	}
	require.Equal(t, `'a' 'b c' 'd'\''e'`, shjoin([]string{"a", "b c", "d'e"}))
}

func FuzzShq(f *testing.F) {
	for _, s := range []string{"", "it's", "$(id)", "a\nb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		// A command-line argument cannot hold a NUL byte.
		for _, r := range s {
			if r == 0 {
				t.Skip()
			}
		}
		if !utf8.ValidString(s) {
			t.Skip()
		}
		require.Equal(t, s, shRoundTrip(t, s))
	})
}

// runLocal runs a remote script with the local sh, as sshd would.
func runLocal(t *testing.T, script string) string {
	t.Helper()
	out, err := exec.Command("sh", "-c", script).CombinedOutput()
	require.NoError(t, err, "%s", out)
	return string(out)
}

// TestStopScriptKillsSession: an agent that ignores SIGTERM is killed
// after the wait, and so is a child of it that has its own process group
// (as a task has), found through the agent's session.
func TestStopScriptKillsSession(t *testing.T) {
	t.Parallel()
	wd := t.TempDir()
	marker := filepath.Join(wd, "child-started")
	// The "agent" ignores SIGTERM and starts a child that moves to a
	// process group of its own (perl's setpgrp, as a task's Setpgid) and
	// records its pid.
	child := shjoin([]string{"perl", "-e", `setpgrp(0, 0); open(my $f, ">", $ARGV[0]) or die; print $f "$$\n"; close($f); exec("sleep", "1000")`, marker})
	agent := []string{"sh", "-c", "trap '' TERM; " + child + " & wait"}
	out := runLocal(t, startScript(wd, "c1", agent))
	fields := strings.Fields(out)
	require.Len(t, fields, 2, "start prints PID STARTTIME: %q", out)
	agentPID, err := strconv.Atoi(fields[0])
	require.NoError(t, err)
	var childPID int
	// A failed test leaves nothing running.
	t.Cleanup(func() {
		for _, pid := range []int{agentPID, childPID} {
			if pid > 0 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	waitFor(t, startTimeout, func(context.Context) (bool, string) {
		data, err := os.ReadFile(marker)
		if err != nil || len(strings.TrimSpace(string(data))) == 0 {
			return false, "the child did not start"
		}
		childPID, err = strconv.Atoi(strings.TrimSpace(string(data)))
		return err == nil, "bad child pid"
	})
	require.NotEqual(t, procStatField(t, agentPID, 5), procStatField(t, childPID, 5), "the child has its own process group")

	require.Equal(t, "killed\n", runLocal(t, stopScript(wd, "c1", 5)))
	for _, pid := range []int{agentPID, childPID} {
		waitFor(t, startTimeout, func(context.Context) (bool, string) {
			_, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid)))
			return os.IsNotExist(err) || isZombie(pid), fmt.Sprintf("process %d is alive", pid)
		})
	}
	require.Equal(t, "gone\n", runLocal(t, stopScript(wd, "c1", 5)))
}

// procStatField is field n (1-based, as in proc(5)) of /proc/PID/stat.
func procStatField(t *testing.T, pid, n int) string {
	t.Helper()
	stat := readFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	i := strings.LastIndex(stat, ") ")
	require.GreaterOrEqual(t, i, 0, "no process %d", pid)
	return strings.Fields(stat[i+2:])[n-3]
}
