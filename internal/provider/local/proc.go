package local

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/drover-dev/drover/internal/procfs"
	"golang.org/x/sys/unix"
)

// bootID identifies the current boot of this machine. A pid and start
// time recorded before a reboot say nothing about the processes after it.
func bootID() (string, error) {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return "", fmt.Errorf("read boot id: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// allPids lists the pids in /proc.
func allPids() ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	pids := make([]int, 0, len(entries))
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// markedLeaders finds the session leaders whose environment holds
// markerEnv, by its value (a machine's directory). It is how a machine is
// found whose pid file was never written: the launching server died
// between starting the agent and recording its pid. Only a session leader
// counts, because the agent's own helpers (health checks) inherit its
// environment but not its session leadership. Processes of other users
// hide their environment; they are not ours.
func markedLeaders() (map[string]procRef, error) {
	pids, err := allPids()
	if err != nil {
		return nil, err
	}
	prefix := []byte(markerEnv + "=")
	found := map[string]procRef{}
	for _, pid := range pids {
		st, err := procfs.ReadStat(pid)
		if err != nil || st.Session != pid || !st.Live() {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "environ"))
		if err != nil {
			continue
		}
		for kv := range bytes.SplitSeq(env, []byte{0}) {
			if v, ok := bytes.CutPrefix(kv, prefix); ok {
				found[string(v)] = procRef{Pid: pid, StartTime: st.StartTime}
				break
			}
		}
	}
	return found, nil
}

// killSession sends SIGKILL to every live process of session sid, again
// and again (a member may fork between a scan and the kill) until none is
// left or the deadline passes. It reports whether the session is empty.
// The caller has made sure the session is the machine's: its leader was
// alive with the recorded start time, and Linux keeps a session's id from
// being reused as long as any member lives.
func killSession(sid int, deadline time.Time) bool {
	for {
		pids, err := allPids()
		if err != nil {
			return false
		}
		left := 0
		for _, pid := range pids {
			st, err := procfs.ReadStat(pid)
			if err != nil || st.Session != sid || !st.Live() {
				continue
			}
			left++
			_ = unix.Kill(pid, unix.SIGKILL)
		}
		if left == 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pollInterval)
	}
}
