package agent

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/archive"
)

// entry is one entry of a test archive.
type entry struct {
	name, body, link string
	typ              byte
	mode             int64
}

// tarGz builds a .tar.gz of the entries, as a user's tar would, or a
// hostile one.
func tarGz(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: e.mode, ModTime: time.Unix(1e9, 0)}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		require.NoError(t, tw.WriteHeader(h))
		if h.Typeflag == tar.TypeReg {
			_, err := tw.Write([]byte(e.body))
			require.NoError(t, err)
		}
	}
	require.NoError(t, tw.Close())
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

func sumOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// repo serves packages by SHA-256 as the server does: a func-field stand-in
// for GET /v1/agent/packages/{sha256}, which the server tests cover. It
// can be told to serve other bytes than asked for.
type repo struct {
	mu    sync.Mutex
	files map[string][]byte
}

func (r *repo) add(b []byte) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := sumOf(b)
	r.files[s] = b
	return s
}

func (r *repo) fetch(_ context.Context, sum string) (io.ReadCloser, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.files[sum]
	if !ok {
		return nil, errors.New("package " + sum + " not found")
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

type installBundle struct {
	in      *installer
	repo    *repo
	dataDir string
	// root holds the targets; outside is a directory beside them that no
	// package may touch.
	root, outside string
}

func setupInstaller(t *testing.T) *installBundle {
	t.Helper()
	b := &installBundle{repo: &repo{files: map[string][]byte{}}, dataDir: t.TempDir(), root: t.TempDir()}
	b.outside = filepath.Join(b.root, "outside")
	require.NoError(t, os.Mkdir(b.outside, 0o755))
	var err error
	b.in, err = newInstaller(b.dataDir, b.repo.fetch, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	return b
}

// pkg makes a package of the entries for the target dir.
func (b *installBundle) pkg(t *testing.T, dir string, entries ...entry) api.Package {
	t.Helper()
	data := tarGz(t, entries...)
	return api.Package{SHA256: b.repo.add(data), To: filepath.Join(b.root, dir), Size: int64(len(data))}
}

// listing is every path under dir, relative, with file contents.
func listing(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case info.Mode()&os.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out[rel] = "-> " + target
		case info.Mode().IsRegular():
			data, err := os.ReadFile(p)
			require.NoError(t, err)
			out[rel] = string(data)
		default:
			out[rel] = "/"
		}
		return nil
	}))
	return out
}

func TestInstallerInstallsAndRecords(t *testing.T) {
	t.Parallel()
	b := setupInstaller(t)
	pk := b.pkg(t, "app", entry{name: "./", typ: tar.TypeDir}, entry{name: "./bin/run", body: "#!/bin/sh\n", mode: 0o755},
		entry{name: "./conf.txt", body: "v1"}, entry{name: "./current", typ: tar.TypeSymlink, link: "conf.txt"})
	require.NoError(t, b.in.install(t.Context(), pk))

	require.Equal(t, map[string]string{".": "/", "bin": "/", "bin/run": "#!/bin/sh\n", "conf.txt": "v1", "current": "-> conf.txt"},
		listing(t, pk.To))
	info, err := os.Stat(filepath.Join(pk.To, "bin/run"))
	require.NoError(t, err)
	require.NotZero(t, info.Mode()&0o100, "an executable stays executable")
	require.Equal(t, map[string]string{pk.To: pk.SHA256}, b.in.report())
	// Only the target and the untouched outside directory remain: no
	// temporary directory, no download.
	require.Equal(t, []string{"app", "outside"}, names(t, b.root))
	require.Equal(t, []string{installedFile}, names(t, b.dataDir))

	// A restarted agent remembers what it installed, and does not
	// install it again.
	again, err := newInstaller(b.dataDir, b.repo.fetch, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	require.Equal(t, map[string]string{pk.To: pk.SHA256}, again.report())
	again.wanted = []api.Package{pk}
	require.Empty(t, again.pendingLocked(time.Now()))
	// Unless the directory is gone.
	require.NoError(t, os.RemoveAll(pk.To))
	require.Equal(t, []api.Package{pk}, again.pendingLocked(time.Now()))
}

func TestInstallerSecondPackageReplacesFirst(t *testing.T) {
	t.Parallel()
	b := setupInstaller(t)
	v1 := b.pkg(t, "app", entry{name: "old.txt", body: "v1"}, entry{name: "both.txt", body: "v1"})
	require.NoError(t, b.in.install(t.Context(), v1))
	// A task holds a file of v1 open while v2 goes in.
	held, err := os.Open(filepath.Join(v1.To, "old.txt"))
	require.NoError(t, err)
	defer held.Close()

	v2 := b.pkg(t, "app", entry{name: "both.txt", body: "v2"}, entry{name: "new.txt", body: "v2"})
	require.NoError(t, b.in.install(t.Context(), v2))
	require.Equal(t, map[string]string{".": "/", "both.txt": "v2", "new.txt": "v2"}, listing(t, v2.To))
	require.Equal(t, map[string]string{v2.To: v2.SHA256}, b.in.report())
	require.Equal(t, []string{"app", "outside"}, names(t, b.root), "the old copy is removed")
	data, err := io.ReadAll(held)
	require.NoError(t, err)
	require.Equal(t, "v1", string(data), "an open file of the old package stays readable")
}

// TestInstallerRefusesHostileArchives: whatever the archive tries, nothing
// is written outside the target, and the package installed before stays
// as it was.
func TestInstallerRefusesHostileArchives(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		entries []entry
		want    error
	}{
		{"dot-dot entry", []entry{{name: "ok.txt", body: "x"}, {name: "../outside/owned.txt", body: "owned"}}, archive.ErrUnsafePath},
		{"dot-dot inside a name", []entry{{name: "a/../../outside/owned.txt", body: "owned"}}, archive.ErrUnsafePath},
		{"absolute name", []entry{{name: "/tmp/owned.txt", body: "owned"}}, archive.ErrUnsafePath},
		{"symlink out, then a file through it", []entry{
			{name: "link", typ: tar.TypeSymlink, link: "../outside"}, {name: "link/owned.txt", body: "owned"},
		}, archive.ErrUnsafeLink},
		{"absolute symlink", []entry{{name: "link", typ: tar.TypeSymlink, link: "/etc"}}, archive.ErrUnsafeLink},
		{"symlink then file of its name", []entry{
			{name: "x", typ: tar.TypeSymlink, link: "y"}, {name: "x", body: "owned"},
		}, archive.ErrDuplicate},
		{"device", []entry{{name: "dev", typ: tar.TypeChar}}, archive.ErrEntryType},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			b := setupInstaller(t)
			v1 := b.pkg(t, "app", entry{name: "good.txt", body: "v1"})
			require.NoError(t, b.in.install(t.Context(), v1))

			bad := b.pkg(t, "app", c.entries...)
			err := b.in.install(t.Context(), bad)
			require.ErrorIs(t, err, c.want)
			require.Contains(t, err.Error(), bad.SHA256, "the error names the package")

			require.Equal(t, map[string]string{".": "/", "good.txt": "v1"}, listing(t, v1.To), "the installed package is untouched")
			require.Equal(t, map[string]string{".": "/"}, listing(t, b.outside), "nothing was written outside")
			require.Equal(t, []string{"app", "outside"}, names(t, b.root), "no half-unpacked directory is left")
			require.Equal(t, map[string]string{v1.To: v1.SHA256}, b.in.report())
			_, err = os.Lstat("/tmp/owned.txt")
			require.ErrorIs(t, err, os.ErrNotExist)
		})
	}
}

func TestInstallerRefusesWrongSHA256(t *testing.T) {
	t.Parallel()
	b := setupInstaller(t)
	pk := b.pkg(t, "app", entry{name: "a.txt", body: "real"})
	// The server (or something between) sends other bytes under the
	// package's name.
	b.repo.files[pk.SHA256] = tarGz(t, entry{name: "a.txt", body: "forged"})
	err := b.in.install(t.Context(), pk)
	require.ErrorContains(t, err, "the bytes received have SHA-256 "+sumOf(b.repo.files[pk.SHA256]))
	require.NoDirExists(t, pk.To)
	require.Nil(t, b.in.report())
	require.Equal(t, []string{"outside"}, names(t, b.root))
	require.Empty(t, names(t, b.dataDir), "the download is removed")
}

// TestInstallerKeepsOutOfForeignDirectories: a package replaces its target
// whole, so it may only take a directory drover installed, or one that is
// missing or empty.
func TestInstallerKeepsOutOfForeignDirectories(t *testing.T) {
	t.Parallel()
	b := setupInstaller(t)
	require.NoError(t, os.WriteFile(filepath.Join(b.outside, "mine.txt"), []byte("the user's"), 0o644))
	pk := b.pkg(t, "outside", entry{name: "a.txt", body: "pkg"})
	require.ErrorContains(t, b.in.install(t.Context(), pk), "is not empty, and was not installed by drover")
	require.Equal(t, map[string]string{".": "/", "mine.txt": "the user's"}, listing(t, b.outside))

	require.NoError(t, os.Mkdir(filepath.Join(b.root, "empty"), 0o755))
	pk = b.pkg(t, "empty", entry{name: "a.txt", body: "pkg"})
	require.NoError(t, b.in.install(t.Context(), pk))
	require.Equal(t, map[string]string{".": "/", "a.txt": "pkg"}, listing(t, pk.To))

	for _, to := range []string{"relative", "/", "/srv/../etc"} {
		require.ErrorContains(t, b.in.install(t.Context(), api.Package{SHA256: pk.SHA256, To: to}), "must be an absolute, clean path")
	}
}

// TestInstallerRetriesWithBackoff: a failed install is not tried again at
// every sync, but after a growing pause; a success clears it.
func TestInstallerRetriesWithBackoff(t *testing.T) {
	t.Parallel()
	b := setupInstaller(t)
	pk := b.pkg(t, "app", entry{name: "a.txt", body: "x"})
	data := b.repo.files[pk.SHA256]
	delete(b.repo.files, pk.SHA256) // the server does not have it yet

	b.in.offer([]api.Package{pk})
	b.in.runOnce(t.Context())
	b.in.mu.Lock()
	f := b.in.failed[pk.To+"\x00"+pk.SHA256]
	require.Equal(t, 1, f.tries)
	require.Empty(t, b.in.pendingLocked(time.Now()), "not retried at once")
	require.Equal(t, []api.Package{pk}, b.in.pendingLocked(f.next.Add(time.Millisecond)))
	b.in.failed[pk.To+"\x00"+pk.SHA256] = failedInstall{tries: 1, next: time.Now()} // the pause is over
	b.in.mu.Unlock()

	b.repo.files[pk.SHA256] = data
	changed := make(chan struct{}, 1)
	b.in.changed = func() { changed <- struct{}{} }
	b.in.runOnce(t.Context())
	select {
	case <-changed:
	default:
		t.Fatal("a successful install must ask for a sync that reports it")
	}
	require.Equal(t, map[string]string{pk.To: pk.SHA256}, b.in.report())
	require.Empty(t, b.in.failed)
}

// TestInstallerRemovesCrashLeftovers: the directories an install cut short
// by a crash leaves beside the target go at the next install there, and
// nothing else does.
func TestInstallerRemovesCrashLeftovers(t *testing.T) {
	t.Parallel()
	b := setupInstaller(t)
	for _, d := range []string{".app" + newSuffix + "123", ".app" + oldSuffix + "456", "app.old", ".app-other"} {
		require.NoError(t, os.Mkdir(filepath.Join(b.root, d), 0o755))
	}
	pk := b.pkg(t, "app", entry{name: "a.txt", body: "x"})
	require.NoError(t, b.in.install(t.Context(), pk))
	require.Equal(t, []string{".app-other", "app", "app.old", "outside"}, names(t, b.root))
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	out := []string{}
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}
