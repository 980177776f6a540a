package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/auth"
	"github.com/drover-dev/drover/internal/client"
	"github.com/drover-dev/drover/internal/scheduler"
	"github.com/drover-dev/drover/internal/server"
	"github.com/drover-dev/drover/internal/store/sqlite"
)

func TestDiskFullNote(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name  string
		dir   string
		below uint64
		want  string // a regexp; "" means no note
	}{
		{"room left", dir, 0, ""},
		{"below the threshold", dir, math.MaxUint64, `^; the node's disk is full: \d+(\.\d)? [KMGT]?i?B free in ` + dir + `$`},
		{"no such dir", filepath.Join(dir, "missing"), math.MaxUint64, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := diskFullNote(tt.dir, tt.below)
			if tt.want == "" {
				require.Empty(t, got)
				return
			}
			require.Regexp(t, tt.want, got)
		})
	}
}

func TestFormatBytes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		n    uint64
		want string
	}{
		{0, "0 B"},
		{1023, "1023 B"},
		{1024, "1.0 KiB"},
		{1536 << 10, "1.5 MiB"},
		{3 << 30, "3.0 GiB"},
		{5 << 40, "5.0 TiB"},
		{5 << 50, "5120.0 TiB"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, formatBytes(tt.n))
		})
	}
}

// TestTaskFillsDisk: the agent's data dir is a small tmpfs and a task
// writes until the disk is full. The task ends FAILED with a message that
// says the node's disk is full; the agent stays healthy and runs the next
// task, both while the disk is still full and after the file is deleted.
func TestTaskFillsDisk(t *testing.T) {
	t.Parallel()
	data := mountTmpfs(t, "16m")
	ctx := context.Background()
	dir := t.TempDir() // the server's, on the ordinary disk
	db, err := sqlite.Open(ctx, filepath.Join(dir, "drover.db"))
	require.NoError(t, err)
	sched, err := scheduler.New(scheduler.Config{Store: db})
	require.NoError(t, err)
	sched.Start(ctx)
	srv, err := server.New(server.Config{Store: db, Scheduler: sched, DataDir: dir})
	require.NoError(t, err)
	hs := httptest.NewServer(srv)
	_, err = srv.Bootstrap(ctx)
	require.NoError(t, err)
	_, adminTok, err := srv.CreateToken(ctx, auth.APIToken, "admin", "test", nil, 0)
	require.NoError(t, err)
	_, agentTok, err := srv.CreateToken(ctx, auth.AgentToken, "", "agents", nil, 0)
	require.NoError(t, err)
	c, err := client.New(hs.URL, nil)
	require.NoError(t, err)
	a, err := New(Config{Client: c.WithToken(agentTok), DataDir: data, Name: "node-1",
		CPU: 2000, Memory: 1 << 30, SyncWait: time.Second, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	actx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(actx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
		hs.CloseClientConnections()
		hs.Close()
		require.NoError(t, sched.Stop(ctx))
		require.NoError(t, srv.Close())
		require.NoError(t, db.Close())
	})

	filler := runJob(t, c.WithToken(adminTok), "disk/dev/filler", `[sh, -c, 'dd if=/dev/zero of=big bs=1M']`)
	require.Equal(t, "FAILED", filler.State)
	require.NotNil(t, filler.ExitCode)
	require.Equal(t, 1, *filler.ExitCode)
	sandbox := filepath.Join(data, "tasks", filler.ID)
	require.Regexp(t, `^exit code 1; .*; the node's disk is full: \d+(\.\d)? (B|KiB) free in `+regexp.QuoteMeta(sandbox)+`$`, filler.Message)
	t.Logf("the filler's message: %s", filler.Message)

	// The disk is still full: the agent runs the next task all the same
	// (its output has nowhere to go, and the message says that too).
	next := runJob(t, c.WithToken(adminTok), "disk/dev/still-full", `[echo, still full]`)
	require.Equal(t, "SUCCEEDED", next.State, next.Message)
	t.Logf("the next task's message: %s", next.Message)

	// Space back: the next task runs and its output is kept.
	require.NoError(t, os.Remove(filepath.Join(sandbox, "work", "big")))
	after := runJob(t, c.WithToken(adminTok), "disk/dev/after", `[echo, after]`)
	require.Equal(t, "SUCCEEDED", after.State, after.Message)
	rc, err := c.WithToken(adminTok).TaskLogs(ctx, after.ID, "stdout", 0, false)
	require.NoError(t, err)
	out, err := io.ReadAll(rc)
	require.NoError(t, rc.Close())
	require.NoError(t, err)
	require.Equal(t, "after\n", string(out))
}

// runJob runs a one-instance job to its end and returns its task.
func runJob(t *testing.T, c *client.Client, key, command string) api.Task {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	doc := fmt.Sprintf("job: %s\ntask:\n  command: %s\nretry: {attempts: 0}\n", key, command)
	_, err := c.SubmitJob(ctx, []byte(doc), "")
	require.NoError(t, err)
	for {
		j, err := c.WaitJobEnd(ctx, key, 10*time.Second)
		require.NoError(t, err, "job %s did not end", key)
		if j.State == "RUNNING" {
			continue
		}
		require.Len(t, j.Tasks, 1, "job %s", key)
		return j.Tasks[0]
	}
}

// mountTmpfs mounts a tmpfs of size on a fresh directory and unmounts it
// when the test ends. Without root, or where mounting fails, the test is
// skipped and says so on stderr, where go test without -v shows it.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	skip := func(format string, args ...any) {
		msg := t.Name() + " NOT RUN: " + fmt.Sprintf(format, args...)
		fmt.Fprintln(os.Stderr, "WARNING: "+msg)
		t.Skip(msg)
	}
	if os.Geteuid() != 0 {
		skip("needs root to mount a tmpfs (running as uid %d); CI runs it as root", os.Geteuid())
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		skip("mount -t tmpfs -o size=%s on %s: %v", size, dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil && !errors.Is(err, unix.EINVAL) {
			// A process forked meanwhile may still hold a copy of a
			// descriptor; detach, and the space goes when it is closed.
			t.Logf("umount %s: %v; detaching it", dir, err)
			_ = unix.Unmount(dir, unix.MNT_DETACH)
		}
	})
	return dir
}
