package execdriver

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/drover-dev/drover/internal/procfs"
	"golang.org/x/sys/unix"
)

// pidFile names the file in a sandbox that says which process runs the
// task while it runs: "PID STARTTIME". An agent that restarts finds the
// tasks of its previous life by these files.
const pidFile = "pid"

// writePidFile records the task's main process in its sandbox.
func writePidFile(dir string, pid int) error {
	st, err := procfs.ReadStat(pid)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, pidFile), fmt.Appendf(nil, "%d %d\n", pid, st.StartTime), 0o600)
}

// removePidFile marks the task as ended.
func removePidFile(dir string) { _ = os.Remove(filepath.Join(dir, pidFile)) }

// Leftover is a task of an earlier agent process found in a sandbox.
type Leftover struct {
	Dir string
	// Alive says the task's main process was still running (and has now
	// been killed, with its tree).
	Alive bool
}

// ReapLeftovers finds the sandboxes under dir whose task was running when
// an earlier agent process stopped without ending it (killed, crashed), and
// kills what is left of each task's process tree. A pid is trusted only
// with the start time recorded beside it, so a stranger that reused the
// pid is never touched. It returns one Leftover per such sandbox, by
// sandbox directory name.
func ReapLeftovers(dir string) (map[string]Leftover, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, err
	}
	out := map[string]Leftover{}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		sandbox := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(filepath.Join(sandbox, pidFile))
		if err != nil {
			continue // ended normally, or never started
		}
		lo := Leftover{Dir: sandbox}
		fields := strings.Fields(string(b))
		if len(fields) == 2 {
			pid, err1 := strconv.Atoi(fields[0])
			start, err2 := strconv.ParseUint(fields[1], 10, 64)
			if err1 == nil && err2 == nil && pid > 1 {
				st, err := procfs.ReadStat(pid)
				switch {
				case err == nil && st.StartTime == start:
					lo.Alive = true
					f := newFamily(pid)
					_ = f.grow()
					f.signal(unix.SIGKILL)
					f.close()
				case err != nil && unix.Kill(-pid, 0) == nil:
					// The main process is gone but its group lives on
					// (children it left). No process has the pid, and
					// Linux does not hand out a pid that is still a
					// group's id, so the group is the task's.
					lo.Alive = true
					_ = unix.Kill(-pid, unix.SIGKILL)
				}
			}
		}
		removePidFile(sandbox)
		out[e.Name()] = lo
	}
	return out, nil
}
