package server

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/archive"
	"github.com/drover-dev/drover/internal/auth"
	"github.com/drover-dev/drover/internal/event"
	"github.com/drover-dev/drover/internal/pool"
	"github.com/drover-dev/drover/internal/store"
)

// Packages (`drover node sync`): a user uploads a .tar.gz for a pool and a
// directory; the server keeps the file under its SHA-256 and records it in
// the pool; every sync of a node of the pool lists the pool's packages,
// and the agent fetches and unpacks those it does not have yet. Nodes that
// join later get them on their first sync.
//
//	PUT /v1/pools/{name}/packages?to=DIR   pool:write:NAME; body: the .tar.gz
//	GET /v1/agent/packages/{sha256}?node=N  agents; only a package of N's pool

// MaxPackageBody bounds a package upload.
const MaxPackageBody = api.MaxPackageSize

// Bounds on what an agent reports of its packages, which the server keeps
// in memory: a node has few package directories.
const (
	maxReportedPackages = 64
	maxPackageDirLen    = 1024
)

// staleUpload is how old a temporary file of the packages directory must
// be before a sweep removes it: left by an upload cut off by a crash.
const staleUpload = time.Hour

// packageStore holds the uploaded packages (DATA/packages/SHA256.tar.gz)
// and what each node's agent last reported it installed.
type packageStore struct {
	dir string
	// mu makes an upload's rename, its record in the pool and the sweep
	// of files no pool refers to one step, so a sweep never removes a
	// file an upload is about to record.
	mu sync.Mutex
	// reportMu guards reports: node name → directory → SHA256. Kept in
	// memory only: every sync of an agent says it all again.
	reportMu sync.Mutex
	reports  map[string]map[string]string
}

func newPackageStore(dataDir string) *packageStore {
	return &packageStore{dir: filepath.Join(dataDir, "packages"), reports: map[string]map[string]string{}}
}

// packageRoutes registers the package routes.
func (s *Server) packageRoutes() {
	s.handle("PUT /v1/pools/{name}/packages", mayPool(auth.VerbWrite), s.wrap(s.putPackage))
	s.handle("GET /v1/agent/packages/{sha256}", agentOnly, s.wrap(s.agentPackage))
}

// putPackage stores an uploaded package and makes it the pool's package
// for its directory.
func (s *Server) putPackage(w http.ResponseWriter, r *http.Request) (int, any, error) {
	if s.pools == nil {
		return 0, nil, errNoPools
	}
	ctx := r.Context()
	name := r.PathValue("name")
	to := r.URL.Query().Get("to")
	if err := checkPackageDir(to); err != nil {
		return 0, nil, badRequestf("to", "%s", err)
	}
	if _, _, err := s.pools.Get(ctx, name); err != nil {
		return 0, nil, notFound("pool "+name, err)
	}
	tmp, sum, size, err := s.pkgs.receive(ctx, http.MaxBytesReader(w, r.Body, MaxPackageBody))
	if err != nil {
		return 0, nil, err
	}
	defer func() { _ = os.Remove(tmp) }() // gone already once kept
	pk := pool.Package{SHA256: sum, To: to, Size: size, AddedAt: s.now()}
	if err := s.pkgs.keep(ctx, s.store, tmp, name, pk); err != nil {
		return 0, nil, notFound("pool "+name, err)
	}
	return s.poolAnswer(r, name)
}

// checkPackageDir checks the directory a package is unpacked into: an
// absolute, clean path, not the root. The agent replaces it whole.
func checkPackageDir(to string) error {
	switch {
	case to == "":
		return errors.New("is required: the absolute directory to unpack the package into on each node")
	case len(to) > maxPackageDirLen:
		return fmt.Errorf("is %d bytes, over %d", len(to), maxPackageDirLen)
	case strings.ContainsFunc(to, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return fmt.Errorf("%q holds a control character", to)
	case !filepath.IsAbs(to):
		return fmt.Errorf("%q must be an absolute path", to)
	case to == "/":
		return errors.New(`must not be "/": the package replaces the whole directory`)
	case filepath.Clean(to) != to:
		return fmt.Errorf("%q must be a clean path (%q)", to, filepath.Clean(to))
	}
	return nil
}

// receive copies an upload to a temporary file of the packages directory,
// synced, and checks that it unpacks within [api.PackageLimits] — by
// unpacking it once into a scratch directory, so a package every node
// would refuse is refused here, with the reason, instead. It returns the
// file and the archive's SHA-256 and size.
func (ps *packageStore) receive(ctx context.Context, body io.Reader) (tmp, sum string, size int64, err error) {
	if err := os.MkdirAll(ps.dir, 0o700); err != nil {
		return "", "", 0, fmt.Errorf("packages directory: %w", err)
	}
	br := bufio.NewReader(body)
	head, err := br.Peek(2)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return "", "", 0, err
	}
	if len(head) < 2 || head[0] != 0x1f || head[1] != 0x8b {
		return "", "", 0, badRequestf("body", "is not a .tar.gz: a package is a gzip-compressed tar archive")
	}
	f, err := os.CreateTemp(ps.dir, ".upload-*")
	if err != nil {
		return "", "", 0, fmt.Errorf("store package: %w", err)
	}
	defer func() {
		_ = f.Close()
		if err != nil {
			_ = os.Remove(f.Name())
		}
	}()
	h := sha256.New()
	if size, err = io.Copy(io.MultiWriter(f, h), br); err != nil {
		return "", "", 0, err
	}
	if err = f.Sync(); err != nil {
		return "", "", 0, fmt.Errorf("store package: %w", err)
	}
	if _, err = f.Seek(0, io.SeekStart); err != nil {
		return "", "", 0, fmt.Errorf("store package: %w", err)
	}
	scratch, err := os.MkdirTemp(ps.dir, ".check-*")
	if err != nil {
		return "", "", 0, fmt.Errorf("check package: %w", err)
	}
	_, err = archive.Extract(ctx, f, size, scratch, api.PackageLimits)
	if rerr := os.RemoveAll(scratch); err == nil && rerr != nil {
		err = fmt.Errorf("check package: %w", rerr)
	}
	if err != nil {
		for _, bad := range []error{archive.ErrFormat, archive.ErrUnsafePath, archive.ErrUnsafeLink, archive.ErrDuplicate, archive.ErrEntryType, archive.ErrLimit} {
			if errors.Is(err, bad) {
				return "", "", 0, badRequestf("body", "the package cannot be unpacked: %s", err)
			}
		}
		return "", "", 0, err
	}
	return f.Name(), hex.EncodeToString(h.Sum(nil)), size, nil
}

// keep names the received file by its SHA-256, records pk as pool name's
// package for pk.To (replacing the one before) with an event, and removes
// the package files no pool refers to any more.
func (ps *packageStore) keep(ctx context.Context, st store.Store, tmp, name string, pk pool.Package) error {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if err := os.Rename(tmp, ps.path(pk.SHA256)); err != nil {
		return fmt.Errorf("store package: %w", err)
	}
	if err := syncDir(ps.dir); err != nil {
		return fmt.Errorf("store package: %w", err)
	}
	err := st.Update(ctx, func(tx store.Tx) error {
		p, err := tx.GetPool(ctx, name)
		if err != nil {
			return fmt.Errorf("pool %s: %w", name, err)
		}
		p.Packages = slices.DeleteFunc(p.Packages, func(q pool.Package) bool { return q.To == pk.To })
		p.Packages = append(p.Packages, pk)
		if err := tx.PutPool(ctx, p); err != nil {
			return err
		}
		return tx.InsertEvents(ctx, event.Event{At: pk.AddedAt, Reason: event.PoolChanged,
			Message: fmt.Sprintf("pool %s: package %s (%d bytes) ships to %s on every node", name, pk.SHA256, pk.Size, pk.To)})
	})
	// Swept even when the record failed: the file is then on no record.
	if serr := ps.sweepLocked(ctx, st); err == nil {
		err = serr
	}
	return err
}

// sweepLocked removes the package files no pool refers to (replaced, or
// their pool destroyed) and temporary files a crash left. The caller
// holds mu.
func (ps *packageStore) sweepLocked(ctx context.Context, st store.Store) error {
	used := map[string]bool{}
	err := st.View(ctx, func(rd store.Reader) error {
		pools, err := rd.ListPools(ctx)
		for _, p := range pools {
			for _, pk := range p.Packages {
				used[ps.path(pk.SHA256)] = true
			}
		}
		return err
	})
	if err != nil {
		return err
	}
	entries, err := os.ReadDir(ps.dir)
	if err != nil {
		return fmt.Errorf("sweep packages: %w", err)
	}
	var errs []error
	for _, e := range entries {
		p := filepath.Join(ps.dir, e.Name())
		if strings.HasPrefix(e.Name(), ".") {
			if info, err := e.Info(); err != nil || time.Since(info.ModTime()) < staleUpload {
				continue // an upload in progress
			}
		} else if used[p] || !strings.HasSuffix(e.Name(), ".tar.gz") {
			continue
		}
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// path is where the package sum is kept.
func (ps *packageStore) path(sum string) string { return filepath.Join(ps.dir, sum+".tar.gz") }

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// agentPackage sends a package to the agent of the node in ?node=, if it
// is a package of that node's pool and the calling token registered the
// node. Anything else is a package that does not exist.
func (s *Server) agentPackage(w http.ResponseWriter, r *http.Request) (int, any, error) {
	ctx := r.Context()
	sum := r.PathValue("sha256")
	missing := &notFoundError{what: "package " + sum}
	if !validSHA256(sum) {
		return 0, nil, badRequestf("sha256", "%q is not a hex SHA-256", sum)
	}
	nodeName := r.URL.Query().Get("node")
	var ok bool
	err := s.store.View(ctx, func(rd store.Reader) error {
		n, err := rd.GetNode(ctx, nodeName)
		if errors.Is(err, store.ErrNotFound) || (err == nil && n.TokenID != principalOf(r).TokenID) {
			return nil
		} else if err != nil {
			return err
		}
		p, err := rd.GetPool(ctx, n.Attributes[pool.AttrPool])
		if errors.Is(err, store.ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		ok = slices.ContainsFunc(p.Packages, func(pk pool.Package) bool { return pk.SHA256 == sum })
		return nil
	})
	if err != nil {
		return 0, nil, err
	}
	if !ok {
		return 0, nil, missing
	}
	f, err := os.Open(s.pkgs.path(sum))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil, missing // replaced since the check
	} else if err != nil {
		return 0, nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return 0, nil, err
	}
	w.Header().Set("Content-Type", "application/gzip")
	http.ServeContent(w, r, "", info.ModTime(), f)
	return 0, nil, nil
}

// validSHA256 reports whether s is a lowercase hex SHA-256.
func validSHA256(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// syncPackages is agentSync's package step, once the node is known to be
// the token's: it keeps what the agent reports it installed, and gives it
// the packages of its pool.
func (s *Server) syncPackages(ctx context.Context, req api.SyncRequest, resp *api.SyncResponse) error {
	s.pkgs.report(req.Node.Name, req.Packages)
	name := req.Node.Attributes[pool.AttrPool]
	if name == "" {
		return nil
	}
	var p pool.Pool
	err := s.store.View(ctx, func(rd store.Reader) error {
		var err error
		p, err = rd.GetPool(ctx, name)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil // a pool destroyed under its nodes
	} else if err != nil {
		return err
	}
	for _, pk := range p.Packages {
		resp.Packages = append(resp.Packages, api.Package{SHA256: pk.SHA256, To: pk.To, Size: pk.Size})
	}
	return nil
}

// report keeps what node's agent says it installed. What no honest agent
// sends (too many entries, bad directories or sums) is left out.
func (ps *packageStore) report(node string, installed map[string]string) {
	kept := map[string]string{}
	for to, sum := range installed {
		if len(kept) == maxReportedPackages {
			break
		}
		if checkPackageDir(to) == nil && validSHA256(sum) {
			kept[to] = sum
		}
	}
	ps.reportMu.Lock()
	defer ps.reportMu.Unlock()
	if len(kept) == 0 {
		delete(ps.reports, node)
		return
	}
	ps.reports[node] = kept
}

// reported returns what node's agent last said it installed (nil if
// nothing, or nothing since the server started).
func (ps *packageStore) reported(node string) map[string]string {
	ps.reportMu.Lock()
	defer ps.reportMu.Unlock()
	return ps.reports[node]
}
