package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/drover-dev/drover/internal/event"
	"github.com/drover-dev/drover/internal/store"
	"github.com/drover-dev/drover/internal/store/sqlite"
	"github.com/drover-dev/drover/internal/store/storetest"
)

// What SQLite (modernc, WAL, synchronous=FULL) answers when the disk is
// full, as measured here:
//
//	write(2) fails with ENOSPC, or writes short   SQLITE_FULL (13)
//	fsync(2) fails with ENOSPC                     SQLITE_IOERR_FSYNC (1034)
//	growing the -shm index fails                   SQLITE_IOERR_SHMSIZE (4874)
//	write(2) fails with EDQUOT (quota)             SQLITE_IOERR_WRITE (778)
//
// The driver gives no errno with the I/O errors, so the store calls an I/O
// error "no space" when the disk it hit has (almost) nothing free.

// TestDiskFullIsErrNoSpace fills the disk under a database: a write that
// needs more room fails with store.ErrNoSpace and leaves nothing behind,
// reads still work, and writes work again once space is freed.
func TestDiskFullIsErrNoSpace(t *testing.T) {
	t.Parallel()
	dir := mountTmpfs(t, "8m")
	ctx := t.Context()
	path := filepath.Join(dir, "drover.db")
	db := open(t, path)
	j := storetest.NewJob()
	require.NoError(t, db.Update(ctx, func(tx store.Tx) error { return tx.PutJob(ctx, j) }))

	filler := fill(t, dir)
	bigEvent := storetest.NewEvent(func(e *event.Event) { e.Message = strings.Repeat("m", 256<<10) })
	err := db.Update(ctx, func(tx store.Tx) error { return tx.InsertEvents(ctx, bigEvent) })
	require.ErrorIs(t, err, store.ErrNoSpace)
	t.Logf("full disk: %v", err)
	require.NoError(t, db.View(ctx, func(r store.Reader) error {
		_, err := r.GetJob(ctx, j.Key)
		return err
	}), "reads work on a full disk")
	var n int
	require.NoError(t, db.View(ctx, func(r store.Reader) error {
		es, err := r.ListEvents(ctx, store.EventFilter{})
		n = len(es)
		return err
	}))
	require.Zero(t, n, "the failed write left nothing behind")

	require.NoError(t, os.Remove(filler))
	require.NoError(t, db.Update(ctx, func(tx store.Tx) error { return tx.InsertEvents(ctx, bigEvent) }),
		"writes work again once space is freed")
	require.NoError(t, db.Close())
	require.Equal(t, "ok", integrityCheck(t, path))
}

// TestFsyncENOSPCIsErrNoSpace covers the I/O errors: a commit that fits in
// the WAL file's existing blocks (SQLite reuses the file from the start
// after a checkpoint) writes fine on a full disk, and then its fsync fails
// with ENOSPC, injected by strace, as delayed allocation or a thin volume
// would report it. SQLite says SQLITE_IOERR_FSYNC; the store must say
// store.ErrNoSpace. Without the injected error the same commit succeeds:
// on a full disk a commit that fits is still a durable commit.
func TestFsyncENOSPCIsErrNoSpace(t *testing.T) {
	t.Parallel()
	strace, err := exec.LookPath("strace")
	if err != nil {
		skipLoudly(t, "needs strace to inject ENOSPC into fsync")
	}
	dir := mountTmpfs(t, "8m")
	ctx := t.Context()
	path := filepath.Join(dir, "drover.db")
	db := open(t, path)
	for i := range 20 {
		require.NoError(t, db.Update(ctx, func(tx store.Tx) error {
			return tx.InsertEvents(ctx, storetest.NewEvent(func(e *event.Event) { e.Message = fmt.Sprint(i, strings.Repeat("m", 8<<10)) }))
		}))
	}
	// Copy every WAL frame into the database file, so the next writer
	// starts the WAL over in blocks it already has.
	raw, err := sql.Open("sqlite", "file:"+path)
	require.NoError(t, err)
	var busy, frames, copied int
	require.NoError(t, raw.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &copied))
	require.NoError(t, raw.Close())
	require.Equal(t, frames, copied, "checkpoint copied every frame")
	failFsync := []string{strace, "-f", "-qq", "-o", "/dev/null",
		"-e", "trace=fsync,fdatasync", "-e", "inject=fsync,fdatasync:error=ENOSPC"}

	// With room on the disk the store cannot tell this from any other
	// I/O error: it stays one (a 500, logged).
	require.Contains(t, runHelper(t, path, failFsync...), "helper: other error: commit: disk I/O error (1034)")

	filler := fill(t, dir)
	out := runHelper(t, path, failFsync...)
	require.Contains(t, out, "helper: no space: ", "fsync failing with ENOSPC on a full disk is store.ErrNoSpace")
	require.Contains(t, out, "(1034)", "SQLite reports SQLITE_IOERR_FSYNC")
	require.Contains(t, runHelper(t, path), "helper: committed", "a commit that fits in the WAL succeeds on a full disk")

	require.NoError(t, os.Remove(filler))
	require.NoError(t, db.Close())
	require.Equal(t, "ok", integrityCheck(t, path))
}

// TestFsyncHelper is the writer process of TestFsyncENOSPCIsErrNoSpace. It
// runs only when that test starts it.
func TestFsyncHelper(t *testing.T) {
	path := os.Getenv("DROVER_TEST_FSYNC_HELPER")
	if path == "" {
		t.Skip("run by TestFsyncENOSPCIsErrNoSpace")
	}
	ctx := context.Background()
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		fmt.Printf("helper: open: %v\n", err)
		return
	}
	defer db.Close()
	err = db.Update(ctx, func(tx store.Tx) error {
		return tx.InsertEvents(ctx, storetest.NewEvent(func(e *event.Event) { e.Message = "from the helper" }))
	})
	switch {
	case err == nil:
		fmt.Println("helper: committed")
	case errors.Is(err, store.ErrNoSpace):
		fmt.Printf("helper: no space: %v\n", err)
	default:
		fmt.Printf("helper: other error: %v\n", err)
	}
}

// runHelper runs TestFsyncHelper on the database at path in a process of
// its own, under the command in wrap if any, and returns its output.
func runHelper(t *testing.T, path string, wrap ...string) string {
	t.Helper()
	args := append(wrap, os.Args[0], "-test.run=^TestFsyncHelper$", "-test.count=1")
	cmd := exec.CommandContext(t.Context(), args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "DROVER_TEST_FSYNC_HELPER="+path)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Run(), "%s", out.String())
	t.Logf("%s", out.String())
	return out.String()
}

func integrityCheck(t *testing.T, path string) string {
	t.Helper()
	raw, err := sql.Open("sqlite", "file:"+path)
	require.NoError(t, err)
	defer raw.Close()
	var check string
	require.NoError(t, raw.QueryRowContext(t.Context(), `PRAGMA integrity_check`).Scan(&check))
	return check
}

func skipLoudly(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := t.Name() + " NOT RUN: " + fmt.Sprintf(format, args...)
	fmt.Fprintln(os.Stderr, "WARNING: "+msg)
	t.Skip(msg)
}

// mountTmpfs mounts a tmpfs of size on a fresh directory and unmounts it
// when the test ends; without root, or where mounting fails, the test is
// skipped and says so on stderr.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		skipLoudly(t, "needs root to mount a tmpfs (running as uid %d); CI runs it as root", os.Geteuid())
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		skipLoudly(t, "mount -t tmpfs -o size=%s on %s: %v", size, dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			// A process forked meanwhile by a parallel test may still
			// hold a copy of a descriptor; detach, and the space goes
			// when that is closed.
			t.Logf("umount %s: %v; detaching it", dir, err)
			_ = unix.Unmount(dir, unix.MNT_DETACH)
		}
	})
	return dir
}

// fill takes every free block of the filesystem holding dir with one file,
// and returns its path.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	require.NoError(t, err)
	defer f.Close()
	var st unix.Statfs_t
	require.NoError(t, unix.Statfs(dir, &st))
	if free := int64(st.Bfree) * st.Bsize; free > 0 {
		_ = unix.Fallocate(int(f.Fd()), 0, 0, free) // may stop short; the writes take the rest
	}
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			require.ErrorIs(t, err, unix.ENOSPC)
			break
		}
	}
	require.NoError(t, unix.Statfs(dir, &st))
	require.Zero(t, st.Bfree, "blocks free after filling %s", dir)
	return path
}
