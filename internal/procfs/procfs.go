// Package procfs reads what drover needs of a Linux process from
// /proc/PID/stat: its parent, group, session, state and start time. A pid
// together with its start time names one process for good, where a pid
// alone may be reused; the agent (stopping a task's process tree, reaping
// what an earlier life left) and the local provider (its agents) rely on
// that. Hand-written: the standard library has no /proc reader, and this is
// a few fields of one file.
package procfs

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Stat is what drover reads of /proc/PID/stat.
type Stat struct {
	PID     int
	State   byte // field 3: R, S, D, Z (zombie), X (dead), ...
	PPID    int  // field 4
	PGID    int  // field 5
	Session int  // field 6
	// StartTime is field 22: clock ticks after boot.
	StartTime uint64
}

// Live reports whether the process still runs: a zombie has exited and only
// waits for its parent to reap it.
func (s Stat) Live() bool { return s.State != 'Z' && s.State != 'X' }

// ReadStat reads /proc/PID/stat.
func ReadStat(pid int) (Stat, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return Stat{}, err
	}
	return ParseStat(pid, b)
}

// ParseStat parses the contents of /proc/PID/stat. The command name (field
// 2) is in parentheses and may itself hold spaces and parentheses, so the
// fields are counted from the last ')'.
func ParseStat(pid int, b []byte) (Stat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return Stat{}, fmt.Errorf("parse /proc/%d/stat: no command name", pid)
	}
	// fields[0] is field 3 (state), so field n is fields[n-3].
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 22-3+1 {
		return Stat{}, fmt.Errorf("parse /proc/%d/stat: %d fields after the name, want at least 20", pid, len(fields))
	}
	if len(fields[0]) != 1 {
		return Stat{}, fmt.Errorf("parse /proc/%d/stat: state %q", pid, fields[0])
	}
	ppid, err1 := strconv.Atoi(fields[4-3])
	pgid, err2 := strconv.Atoi(fields[5-3])
	sid, err3 := strconv.Atoi(fields[6-3])
	start, err4 := strconv.ParseUint(fields[22-3], 10, 64)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return Stat{}, fmt.Errorf("parse /proc/%d/stat: %w", pid, err)
	}
	return Stat{PID: pid, State: fields[0][0], PPID: ppid, PGID: pgid, Session: sid, StartTime: start}, nil
}
