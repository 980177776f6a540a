package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/archive"
)

// Packages (`drover node sync`): every sync answer lists the packages of
// the node's pool, one per directory. The installer fetches each one this
// node does not have, checks its SHA-256, unpacks it (internal/archive,
// with api.PackageLimits) into a new directory beside its target, and
// swaps that in for the target, so a task never sees half a package.
// What is installed where is kept in DATA/packages.json and reported in
// every sync.

// Bounds of a failed install's retries: the first retry waits
// packageRetryMin, each next one twice as long, up to packageRetryMax.
const (
	packageRetryMin = 5 * time.Second
	packageRetryMax = 10 * time.Minute
)

// Names of the installer's files and of its directories beside a
// target: hidden, and marked as drover's, so that removing what a crash
// left never touches a directory of the user's.
const (
	installedFile = "packages.json"
	newSuffix     = ".drover-new-"
	oldSuffix     = ".drover-old-"
)

// fetchFunc opens the package named by its SHA-256.
type fetchFunc func(ctx context.Context, sum string) (io.ReadCloser, error)

// installer installs the packages of the node's pool, one at a time, off
// the sync loop.
type installer struct {
	// dir holds packages.json and, during a download, the package.
	dir   string
	fetch fetchFunc
	log   *slog.Logger
	// changed is called when what is installed changed, so the next sync
	// reports it at once.
	changed func()
	// wake has room for one signal: an offer with work to do.
	wake chan struct{}

	mu sync.Mutex
	// installed maps a target directory to the SHA-256 of the package
	// unpacked there; guarded by mu, and replaced, never changed, so
	// report can hand it out.
	installed map[string]string
	// wanted is the newest list of the pool's packages; guarded by mu.
	wanted []api.Package
	// failed holds the failed installs by target and SHA-256; guarded by
	// mu.
	failed map[string]failedInstall
}

// failedInstall is when a failed install may be tried again.
type failedInstall struct {
	tries int
	next  time.Time
}

// newInstaller returns an installer keeping its record in dir, which
// exists.
func newInstaller(dir string, fetch fetchFunc, log *slog.Logger) (*installer, error) {
	in := &installer{dir: dir, fetch: fetch, log: log, changed: func() {}, wake: make(chan struct{}, 1),
		installed: map[string]string{}, failed: map[string]failedInstall{}}
	data, err := os.ReadFile(filepath.Join(dir, installedFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return in, nil
	case err != nil:
		return nil, fmt.Errorf("read installed packages: %w", err)
	}
	if err := json.Unmarshal(data, &in.installed); err != nil {
		return nil, fmt.Errorf("read installed packages %s: %w", filepath.Join(dir, installedFile), err)
	}
	return in, nil
}

// offer takes the packages of a sync answer and wakes the installer if one
// of them is not installed yet.
func (in *installer) offer(pkgs []api.Package) {
	in.mu.Lock()
	in.wanted = pkgs
	work := len(in.pendingLocked(time.Now())) > 0
	in.mu.Unlock()
	if work {
		select {
		case in.wake <- struct{}{}:
		default:
		}
	}
}

// report returns what is installed where, for a sync request.
func (in *installer) report() map[string]string {
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.installed) == 0 {
		return nil
	}
	return in.installed
}

// run installs what offers ask for until ctx ends.
func (in *installer) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-in.wake:
		}
		in.runOnce(ctx)
	}
}

// runOnce installs every wanted package that is missing and not waiting
// for a retry, one after the other. A failure is logged and tried again
// at a later offer, after a backoff.
func (in *installer) runOnce(ctx context.Context) {
	in.mu.Lock()
	todo := in.pendingLocked(time.Now())
	in.mu.Unlock()
	for _, pk := range todo {
		err := in.install(ctx, pk)
		if ctx.Err() != nil {
			return
		}
		key := pk.To + "\x00" + pk.SHA256
		in.mu.Lock()
		if err != nil {
			f := in.failed[key]
			f.tries++
			wait := min(packageRetryMin<<min(f.tries-1, 20), packageRetryMax)
			f.next = time.Now().Add(wait)
			in.failed[key] = f
			in.mu.Unlock()
			in.log.WarnContext(ctx, "could not install package; will retry", "to", pk.To, "sha256", pk.SHA256,
				"tries", f.tries, "retry_in", wait.String(), "err", err)
			continue
		}
		delete(in.failed, key)
		in.mu.Unlock()
		in.log.InfoContext(ctx, "package installed", "to", pk.To, "sha256", pk.SHA256, "size", pk.Size)
		in.changed()
	}
}

// pendingLocked lists the wanted packages to install now: not installed
// at their target (or the target is gone), and not waiting for a retry.
func (in *installer) pendingLocked(now time.Time) []api.Package {
	var out []api.Package
	for _, pk := range in.wanted {
		if in.installed[pk.To] == pk.SHA256 {
			if _, err := os.Lstat(pk.To); err == nil {
				continue
			}
		}
		if f, ok := in.failed[pk.To+"\x00"+pk.SHA256]; ok && now.Before(f.next) {
			continue
		}
		out = append(out, pk)
	}
	return out
}

// install fetches pk, checks it, unpacks it beside pk.To and swaps it in.
// On error nothing at pk.To has changed.
func (in *installer) install(ctx context.Context, pk api.Package) error {
	if err := checkTarget(pk.To); err != nil {
		return err
	}
	in.mu.Lock()
	ours := in.installed[pk.To] != ""
	in.mu.Unlock()
	if !ours {
		if err := checkForeign(pk.To); err != nil {
			return err
		}
	}
	parent, base := filepath.Split(pk.To)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("make parent of %s: %w", pk.To, err)
	}
	removeLeftovers(parent, base)
	f, size, err := in.download(ctx, pk)
	if err != nil {
		return err
	}
	defer func() {
		_ = f.Close()
		_ = os.Remove(f.Name())
	}()
	tmp, err := os.MkdirTemp(parent, "."+base+newSuffix+"*")
	if err != nil {
		return fmt.Errorf("unpack package: %w", err)
	}
	// MkdirTemp makes the directory private; a package is for the
	// node's tasks, whatever user they run as.
	if err := os.Chmod(tmp, 0o755); err != nil {
		_ = os.RemoveAll(tmp)
		return fmt.Errorf("unpack package: %w", err)
	}
	if _, err := archive.Extract(ctx, f, size, tmp, api.PackageLimits); err != nil {
		_ = os.RemoveAll(tmp)
		return fmt.Errorf("unpack package %s: %w", pk.SHA256, err)
	}
	if err := swapIn(tmp, pk.To); err != nil {
		_ = os.RemoveAll(tmp)
		return err
	}
	return in.record(pk.To, pk.SHA256)
}

// download copies the package into a temporary file of the installer's
// directory and checks its size and SHA-256. The caller closes and removes
// the file.
func (in *installer) download(ctx context.Context, pk api.Package) (*os.File, int64, error) {
	body, err := in.fetch(ctx, pk.SHA256)
	if err != nil {
		return nil, 0, fmt.Errorf("fetch package %s: %w", pk.SHA256, err)
	}
	defer body.Close()
	f, err := os.CreateTemp(in.dir, ".package-*")
	if err != nil {
		return nil, 0, fmt.Errorf("fetch package: %w", err)
	}
	fail := func(err error) (*os.File, int64, error) {
		_ = f.Close()
		_ = os.Remove(f.Name())
		return nil, 0, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(body, api.MaxPackageSize+1))
	switch {
	case err != nil:
		return fail(fmt.Errorf("fetch package %s: %w", pk.SHA256, err))
	case n > api.MaxPackageSize:
		return fail(fmt.Errorf("fetch package %s: larger than %d bytes", pk.SHA256, api.MaxPackageSize))
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != pk.SHA256 {
		return fail(fmt.Errorf("fetch package %s: the bytes received have SHA-256 %s", pk.SHA256, got))
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fail(fmt.Errorf("fetch package: %w", err))
	}
	return f, n, nil
}

// record notes that sum is installed at to, in memory and in
// packages.json (written whole, then renamed over the old one).
func (in *installer) record(to, sum string) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	next := maps.Clone(in.installed)
	next[to] = sum
	data, err := json.MarshalIndent(next, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(in.dir, installedFile), data); err != nil {
		return fmt.Errorf("record installed package: %w", err)
	}
	in.installed = next
	return nil
}

// checkTarget refuses a target no server should send: it must be an
// absolute, clean path other than the root.
func checkTarget(to string) error {
	if !filepath.IsAbs(to) || filepath.Clean(to) != to || to == "/" {
		return fmt.Errorf("package directory %q: must be an absolute, clean path other than /", to)
	}
	return nil
}

// checkForeign lets a package take a target it did not install only if
// the target is missing or an empty directory: a package replaces its
// directory whole, and must never wipe out what someone else put there.
func checkForeign(to string) error {
	entries, err := os.ReadDir(to)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("package directory %s exists and is not a directory drover can replace: %w", to, err)
	case len(entries) > 0:
		return fmt.Errorf("package directory %s exists, is not empty, and was not installed by drover: remove it or ship the package to another directory", to)
	}
	return nil
}

// swapIn makes the directory tmp the target to: the old target, if any,
// moves aside, tmp takes its name, and the old one is removed. Between
// the two renames to is briefly missing, never half written.
func swapIn(tmp, to string) error {
	old := ""
	if _, err := os.Lstat(to); err == nil {
		parent, base := filepath.Split(to)
		old = filepath.Join(parent, "."+base+oldSuffix+strconv.FormatInt(time.Now().UnixNano(), 10))
		if err := os.Rename(to, old); err != nil {
			return fmt.Errorf("move %s aside: %w", to, err)
		}
	}
	if err := os.Rename(tmp, to); err != nil {
		if old != "" {
			_ = os.Rename(old, to)
		}
		return fmt.Errorf("install package at %s: %w", to, err)
	}
	if old != "" {
		// The new package is in place; an old copy that will not go is
		// only disk, removed with the leftovers of the next install.
		_ = os.RemoveAll(old)
	}
	return nil
}

// removeLeftovers removes the directories an install into parent/base
// that a crash cut short left beside it.
func removeLeftovers(parent, base string) {
	entries, err := os.ReadDir(parent)
	if err != nil {
		return
	}
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, "."+base+newSuffix) || strings.HasPrefix(n, "."+base+oldSuffix) {
			_ = os.RemoveAll(filepath.Join(parent, n))
		}
	}
}

// writeFileAtomic writes data to path through a synced temporary file
// renamed over it, so a crash leaves the old content or the new.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(f.Name()) }()
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
