package execdriver

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/drover-dev/drover/internal/procfs"
	"golang.org/x/sys/unix"
)

// family is the process tree of one task: the main process, everything in
// its process group, every descendant found by parent links from either,
// and whatever holds the task's output pipes after the main process ended.
//
// We walk /proc by hand. Libraries that list processes (gopsutil and the
// like) give a snapshot of pids, which is not enough: a pid can be reused
// between the walk and the signal, and a process that called setsid(2)
// leaves the group and, once its parent dies, any trace back to the task.
// So every member is held by a pidfd taken when it was found. Signals go
// through the pidfd, which cannot hit a stranger that inherited the pid, and
// members stay known after their parents die, so a SIGKILL at the end of
// the grace period reaches a setsid'd grandchild whose parent obeyed the
// SIGTERM. Processes that escaped before any walk saw them (a daemon that
// double-forked and closed its output) are out of reach; only a cgroup would
// catch those.
//
// The main process is not reaped until the family has been killed for the
// last time, so its pid, which is also the group id, cannot be reused by
// another process while we signal the group.
type family struct {
	// root is the main process's pid and its process group id.
	root int
	// members are the processes found so far, by pid.
	members map[int]member
}

// member is one process of a family.
type member struct {
	pidfd int
	// startTime (field 22 of /proc/PID/stat) tells this process apart
	// from a later one with the same pid.
	startTime uint64
}

// newFamily returns the family of the main process root, which must be a
// child of ours not yet reaped.
func newFamily(root int) *family {
	return &family{root: root, members: map[int]member{}}
}

// grow adds to the family every living process that belongs to it now:
// members of the process group and descendants of the root or of any known
// member.
func (f *family) grow() error {
	procs, err := readProcs()
	if err != nil {
		return err
	}
	children := map[int][]procfs.Stat{}
	var queue []int
	for _, p := range procs {
		children[p.PPID] = append(children[p.PPID], p)
		m, known := f.members[p.PID]
		switch {
		case p.PID == f.root, p.PGID == f.root:
			queue = append(queue, p.PID)
			f.adopt(p)
		case known && m.startTime == p.StartTime:
			// A member's pid only stands for it while its start time
			// matches; otherwise the pid is a stranger's now.
			queue = append(queue, p.PID)
		}
	}
	seen := map[int]bool{}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		if seen[pid] {
			continue
		}
		seen[pid] = true
		for _, c := range children[pid] {
			f.adopt(c)
			queue = append(queue, c.PID)
		}
	}
	return nil
}

// adoptPipeWriters adds to the family every process other than ours that
// holds the write end of one of the pipes with the given inodes. After the
// main process exited these are the processes keeping the task's output
// open, wherever they moved in the tree. Only write ends count: a process
// another goroutine of ours is forking holds copies of our read ends for a
// moment, and it is not the task's.
func (f *family) adoptPipeWriters(inodes ...uint64) error {
	want := map[string]bool{}
	for _, ino := range inodes {
		want[fmt.Sprintf("pipe:[%d]", ino)] = true
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return fmt.Errorf("list processes: %w", err)
	}
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		if !holdsWriteEnd(pid, want) {
			continue
		}
		p, err := procfs.ReadStat(pid)
		// Our own children are never the task's leftovers (those were
		// reparented away from us when the task's main process ended),
		// but one that is between fork and exec holds a copy of every
		// descriptor we have open, this pipe included, for an instant:
		// another task being started. It must not be killed for it.
		if err == nil && p.PPID != self {
			f.adopt(p)
		}
	}
	return nil
}

// signal sends sig to the process group and to every member. With SIGTERM
// it also sends SIGCONT, so a stopped process gets to handle the SIGTERM
// now rather than at SIGKILL time.
func (f *family) signal(sig unix.Signal) {
	sigs := []unix.Signal{sig}
	if sig == unix.SIGTERM {
		sigs = append(sigs, unix.SIGCONT)
	}
	for _, s := range sigs {
		// ESRCH only says everyone is gone already.
		_ = unix.Kill(-f.root, s)
		for _, m := range f.members {
			_ = unix.PidfdSendSignal(m.pidfd, s, nil, 0)
		}
	}
}

// isAlone reports whether the main process, now ended, left no child and
// no member is known: then a signal to the group reaches everything a walk
// of /proc could find but for setsid'd grandchildren of a reparented
// process, and the walk (about a millisecond with a few hundred processes)
// is skipped. Children of the unreaped main process still name it as
// parent, so its task/*/children files list them.
func (f *family) isAlone() bool {
	if len(f.members) > 0 {
		return false
	}
	tasks, err := os.ReadDir("/proc/" + strconv.Itoa(f.root) + "/task")
	if err != nil {
		return false
	}
	for _, t := range tasks {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(f.root) + "/task/" + t.Name() + "/children")
		if err != nil || len(bytes.TrimSpace(b)) > 0 {
			return false
		}
	}
	return true
}

// close releases the pidfds.
func (f *family) close() {
	for pid, m := range f.members {
		_ = unix.Close(m.pidfd)
		delete(f.members, pid)
	}
}

// adopt makes p a member, unless it is one already or is gone.
func (f *family) adopt(p procfs.Stat) {
	if m, ok := f.members[p.PID]; ok && m.startTime == p.StartTime {
		return
	}
	fd, err := unix.PidfdOpen(p.PID, 0)
	if err != nil {
		return // gone already
	}
	// The pid may have changed hands between reading its stat and
	// opening the pidfd; the start time read again after says whether
	// the pidfd holds the process we meant.
	again, err := procfs.ReadStat(p.PID)
	if err != nil || again.StartTime != p.StartTime {
		_ = unix.Close(fd)
		return
	}
	if old, ok := f.members[p.PID]; ok {
		_ = unix.Close(old.pidfd) // a dead member whose pid was reused
	}
	f.members[p.PID] = member{pidfd: fd, startTime: p.StartTime}
}

// readProcs reads the stat of every process. Processes that end during the
// walk are skipped.
func readProcs() ([]procfs.Stat, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	procs := make([]procfs.Stat, 0, len(entries))
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		p, err := procfs.ReadStat(pid)
		if err != nil {
			continue
		}
		procs = append(procs, p)
	}
	return procs, nil
}

// holdsWriteEnd reports whether process pid has an open file descriptor,
// opened for writing only, on one of the pipes in want (keyed by their
// "pipe:[INODE]" link text).
func holdsWriteEnd(pid int, want map[string]bool) bool {
	dir := filepath.Join("/proc", strconv.Itoa(pid), "fd")
	fds, err := os.ReadDir(dir)
	if err != nil {
		return false // gone, or a kernel thread
	}
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join(dir, fd.Name()))
		if err != nil || !want[link] {
			continue
		}
		info, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "fdinfo", fd.Name()))
		if err != nil {
			continue
		}
		if flags, ok := fdinfoFlags(info); ok && flags&unix.O_ACCMODE == unix.O_WRONLY {
			return true
		}
	}
	return false
}

// fdinfoFlags returns the "flags:" field (octal) of a /proc/PID/fdinfo/FD.
func fdinfoFlags(info []byte) (int, bool) {
	for line := range strings.Lines(string(info)) {
		v, ok := strings.CutPrefix(line, "flags:")
		if !ok {
			continue
		}
		flags, err := strconv.ParseInt(strings.TrimSpace(v), 8, 64)
		return int(flags), err == nil
	}
	return 0, false
}
