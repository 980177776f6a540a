package agent

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// diskFullBelow is the free space under which a task's filesystem counts as
// full when the task ends. A task that fails while its disk is that full
// most likely failed because of it (it filled the disk, or a neighbour
// did), and its message says so, so nobody has to guess from an exit code.
const diskFullBelow = 1 << 20

// diskFullNote returns the clause a failed task's message ends with when
// the filesystem of its sandbox is full ("; the node's disk is full: 0 B
// free in /data/tasks/ID"), or "" when there is room or statfs fails. The
// agent itself needs no disk to keep syncing, so it carries on; the space
// comes back when somebody deletes the files.
func (t *runTask) diskFullNote() string {
	return diskFullNote(filepath.Join(t.agent.cfg.DataDir, "tasks", t.as.TaskID), diskFullBelow)
}

// diskFullNote returns the clause for dir when less than below bytes are
// free in its filesystem.
func diskFullNote(dir string, below uint64) string {
	free, err := freeBytes(dir)
	if err != nil || free >= below {
		return ""
	}
	return fmt.Sprintf("; the node's disk is full: %s free in %s", formatBytes(free), dir)
}

// freeBytes returns the bytes a task may still write on the filesystem
// holding dir. Tasks run as the agent's user, so for root that includes the
// blocks the filesystem reserves for root.
func freeBytes(dir string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	blocks := st.Bavail
	if os.Geteuid() == 0 {
		blocks = st.Bfree
	}
	return blocks * uint64(st.Bsize), nil
}

// formatBytes writes n for people: "0 B", "512 B", "4.0 KiB", "1.5 MiB".
func formatBytes(n uint64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v, unit := float64(n)/1024, 0
	for v >= 1024 && unit < 3 {
		v /= 1024
		unit++
	}
	return fmt.Sprintf("%.1f %s", v, [...]string{"KiB", "MiB", "GiB", "TiB"}[unit])
}
