package local

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// procStat is what the provider reads of /proc/PID/stat.
type procStat struct {
	state     byte   // field 3: R, S, D, Z (zombie), X (dead), ...
	session   int    // field 6
	startTime uint64 // field 22: clock ticks after boot
}

// isLive reports whether the process still runs: a zombie has exited and
// only waits for its parent to reap it.
func (s procStat) isLive() bool { return s.state != 'Z' && s.state != 'X' }

// readProcStat reads /proc/PID/stat.
func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return procStat{}, err
	}
	return parseProcStat(pid, b)
}

// parseProcStat parses the contents of /proc/PID/stat. The command name
// (field 2) is in parentheses and may itself hold spaces and parentheses,
// so the fields are counted from the last ')'.
func parseProcStat(pid int, b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat: no command name", pid)
	}
	// fields[0] is field 3 (state), so field n is fields[n-3].
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 22-3+1 {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat: %d fields, want at least 20 after the name", pid, len(fields))
	}
	if len(fields[0]) != 1 {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat: state %q", pid, fields[0])
	}
	sid, err1 := strconv.Atoi(fields[6-3])
	start, err2 := strconv.ParseUint(fields[22-3], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat: %w", pid, err)
	}
	return procStat{state: fields[0][0], session: sid, startTime: start}, nil
}

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
		st, err := readProcStat(pid)
		if err != nil || st.session != pid || !st.isLive() {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "environ"))
		if err != nil {
			continue
		}
		for kv := range bytes.SplitSeq(env, []byte{0}) {
			if v, ok := bytes.CutPrefix(kv, prefix); ok {
				found[string(v)] = procRef{Pid: pid, StartTime: st.startTime}
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
			st, err := readProcStat(pid)
			if err != nil || st.session != sid || !st.isLive() {
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
