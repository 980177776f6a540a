package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// maxLinkHops is how many symbolic links one resolution may follow, as
// Linux's MAXSYMLINKS; more is a loop.
const maxLinkHops = 40

// resolveStepsPerEntry is the work, in path elements walked, that
// resolving symbolic links may take per entry MaxFiles allows. Honest
// links take a handful of steps; a chain of links whose targets are long
// runs of elements could otherwise make each resolution walk millions.
const resolveStepsPerEntry = 64

// copyBufferSize is the chunk in which file data is copied, checked against
// the limits and the context.
const copyBufferSize = 32 << 10

// kind is what an extraction created at a path.
type kind uint8

const (
	kindNone kind = iota
	kindDir
	kindFile
	kindSymlink
)

func (k kind) String() string {
	switch k {
	case kindDir:
		return "directory"
	case kindFile:
		return "file"
	case kindSymlink:
		return "symbolic link"
	}
	return "nothing"
}

// pendingLink is a symbolic link waiting for finish.
type pendingLink struct {
	entry string // the name as the archive spells it, for errors
	name  string // cleaned
}

// extractor writes the entries of one archive beneath an [os.Root] and
// keeps what the rules need to know about them. The format readers (tar.go,
// zip.go) decode entries and call its methods; they wrap the reasons it
// returns in [ExtractError].
type extractor struct {
	root    *os.Root
	lim     Limits
	res     Result
	entries int

	// kinds holds every path this extraction created, entries and the
	// parent directories they implied, keyed by cleaned name.
	kinds map[string]kind
	// targets holds the target of every symbolic link of the archive.
	targets map[string]string
	// links lists the symbolic links in archive order; finish creates them.
	links []pendingLink
	// resolveSteps is the work left for resolve.
	resolveSteps int

	buf []byte
}

// newExtractor opens dir, which must exist, as the root of an extraction.
func newExtractor(dir string, lim Limits) (*extractor, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, &ExtractError{Reason: fmt.Errorf("open directory: %w", err)}
	}
	return &extractor{
		root:         root,
		lim:          lim,
		kinds:        make(map[string]kind),
		targets:      make(map[string]string),
		resolveSteps: resolveStepsPerEntry * lim.MaxFiles,
		buf:          make([]byte, copyBufferSize),
	}, nil
}

// close releases the root.
func (x *extractor) close() error { return x.root.Close() }

// count counts one more entry against MaxFiles.
func (x *extractor) count() error {
	if x.entries++; x.entries > x.lim.MaxFiles {
		return limitError("more than %d entries", x.lim.MaxFiles)
	}
	return nil
}

// dir creates the directory name. Repeating a directory is allowed: tar
// writes a directory both before and, to set its mode, after its contents.
func (x *extractor) dir(name string) error {
	if name == "" {
		return nil // the root itself
	}
	switch x.kinds[name] {
	case kindDir:
		return nil
	case kindNone:
	default:
		return fmt.Errorf("%w: already extracted as a %s", ErrDuplicate, x.kinds[name])
	}
	if err := x.place(name); err != nil {
		return err
	}
	if err := x.root.Mkdir(name, 0o755); err != nil {
		// A directory that was there before is reused; the root keeps
		// whatever it holds inside.
		if fi, serr := x.root.Lstat(name); !errors.Is(err, fs.ErrExist) || serr != nil || !fi.IsDir() {
			return createError(err)
		}
	}
	x.kinds[name] = kindDir
	x.res.Dirs++
	return nil
}

// file writes the regular file name from src, which holds size bytes, or
// an unknown number when size is negative. Only the execute bit of the
// archive's mode survives, as exec.
func (x *extractor) file(ctx context.Context, name string, exec bool, size int64, src io.Reader) error {
	if name == "" {
		return fmt.Errorf("%w: names the extraction root", ErrUnsafePath)
	}
	if size > x.lim.MaxFileBytes {
		return limitError("file is %d bytes, over %d", size, x.lim.MaxFileBytes)
	}
	if size > x.lim.MaxBytes-x.res.Bytes {
		return limitError("files total over %d bytes", x.lim.MaxBytes)
	}
	if err := x.place(name); err != nil {
		return err
	}
	perm := fs.FileMode(0o644)
	if exec {
		perm = 0o755
	}
	// O_EXCL: never replace or follow what is there, even a link.
	f, err := x.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return createError(err)
	}
	x.kinds[name] = kindFile
	x.res.Files++
	err = x.copy(ctx, f, src)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close: %w", cerr)
	}
	return err
}

// copy copies src to dst in chunks, stopping at the byte limits and when
// ctx ends. A Read that blocks is not interrupted: the caller unblocks it
// by closing the source.
func (x *extractor) copy(ctx context.Context, dst io.Writer, src io.Reader) error {
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		m, rerr := src.Read(x.buf)
		if m > 0 {
			if n+int64(m) > x.lim.MaxFileBytes {
				return limitError("file is over %d bytes", x.lim.MaxFileBytes)
			}
			if x.res.Bytes+int64(m) > x.lim.MaxBytes {
				return limitError("files total over %d bytes", x.lim.MaxBytes)
			}
			w, werr := dst.Write(x.buf[:m])
			n += int64(w)
			x.res.Bytes += int64(w)
			if werr != nil {
				return fmt.Errorf("write: %w", werr)
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return readError(rerr)
		}
	}
}

// symlink records the symbolic link name → target; finish creates it.
func (x *extractor) symlink(entry, name, target string) error {
	if name == "" {
		return fmt.Errorf("%w: names the extraction root", ErrUnsafePath)
	}
	if err := checkTarget(name, target, x.lim); err != nil {
		return err
	}
	if err := x.place(name); err != nil {
		return err
	}
	x.kinds[name] = kindSymlink
	x.targets[name] = target
	x.links = append(x.links, pendingLink{entry: entry, name: name})
	return nil
}

// hardlink links name to target, the raw name of a regular file this
// archive extracted before. Anything else could tie a file in the
// directory to one outside it, or to a directory or link.
func (x *extractor) hardlink(name, target string) error {
	if name == "" {
		return fmt.Errorf("%w: names the extraction root", ErrUnsafePath)
	}
	clean, err := cleanName(target, x.lim)
	if err != nil {
		return fmt.Errorf("%w: target: %w", ErrUnsafeLink, err)
	}
	if x.kinds[clean] != kindFile {
		return fmt.Errorf("%w: target %q is not a file extracted before it", ErrUnsafeLink, clean)
	}
	if err := x.place(name); err != nil {
		return err
	}
	if err := x.root.Link(clean, name); err != nil {
		return createError(err)
	}
	x.kinds[name] = kindFile
	x.res.Links++
	return nil
}

// place checks that name is new and that no parent of it is a file or a
// link of the archive, then creates its missing parents.
func (x *extractor) place(name string) error {
	if k := x.kinds[name]; k != kindNone {
		return fmt.Errorf("%w: already extracted as a %s", ErrDuplicate, k)
	}
	last := strings.LastIndexByte(name, '/')
	if last < 0 || x.kinds[name[:last]] == kindDir {
		return nil // the parents were checked when they were made
	}
	for i := 0; i <= last; i++ {
		if i < last && name[i] != '/' {
			continue
		}
		switch p := name[:i]; x.kinds[p] {
		case kindSymlink:
			return fmt.Errorf("%w: parent %q is a symbolic link", ErrUnsafeLink, p)
		case kindFile:
			return fmt.Errorf("%w: parent %q is a file", ErrDuplicate, p)
		}
	}
	parent := name[:last]
	if err := x.root.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("create parent: %w", err)
	}
	for i := 0; i <= last; i++ {
		if i == last || parent[i] == '/' {
			x.kinds[parent[:i]] = kindDir
		}
	}
	return nil
}

// finish creates the symbolic links, last so that no entry was written
// through one and every link is known when each is resolved.
func (x *extractor) finish(ctx context.Context) error {
	for _, l := range x.links {
		if err := ctx.Err(); err != nil {
			return &ExtractError{Entry: l.entry, Reason: err}
		}
		if err := x.resolve(l.name); err != nil {
			return &ExtractError{Entry: l.entry, Reason: err}
		}
		if err := x.root.Symlink(x.targets[l.name], l.name); err != nil {
			return &ExtractError{Entry: l.entry, Reason: createError(err)}
		}
		x.res.Links++
	}
	return nil
}

// resolve follows the symbolic link name the way the kernel would, through
// the other links of the archive and any link already in the directory,
// and fails if that ever climbs above the root. Components that do not
// exist are taken lexically, which can only refuse more than the kernel.
// A walk deeper than MaxDepth is refused too: no entry could be there.
func (x *extractor) resolve(name string) error {
	var cur []string // resolved elements, none of them a link
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		cur = strings.Split(name[:i], "/")
	}
	rem := strings.Split(x.targets[name], "/")
	for hops := 0; len(rem) > 0; {
		if x.resolveSteps--; x.resolveSteps < 0 {
			return limitError("symbolic links take over %d steps to resolve", resolveStepsPerEntry*x.lim.MaxFiles)
		}
		e := rem[0]
		rem = rem[1:]
		switch e {
		case "", ".":
			continue
		case "..":
			if len(cur) == 0 {
				return fmt.Errorf("%w: target leads outside the directory", ErrUnsafeLink)
			}
			cur = cur[:len(cur)-1]
			continue
		}
		if cur = append(cur, e); len(cur) > x.lim.MaxDepth {
			return limitError("link resolves through a path over %d elements deep", x.lim.MaxDepth)
		}
		target, ok := x.readlink(strings.Join(cur, "/"))
		if !ok {
			continue
		}
		if hops++; hops > maxLinkHops {
			return fmt.Errorf("%w: more than %d links deep, or a loop", ErrUnsafeLink, maxLinkHops)
		}
		if target == "" || target[0] == '/' {
			return fmt.Errorf("%w: target leads through %q to an absolute path", ErrUnsafeLink, strings.Join(cur, "/"))
		}
		cur = cur[:len(cur)-1]
		rem = append(strings.Split(target, "/"), rem...)
	}
	return nil
}

// readlink returns the target of p if p is a symbolic link of the archive
// or one already in the directory.
func (x *extractor) readlink(p string) (string, bool) {
	switch x.kinds[p] {
	case kindSymlink:
		return x.targets[p], true
	case kindNone:
	default:
		return "", false
	}
	fi, err := x.root.Lstat(p)
	if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		return "", false
	}
	target, err := x.root.Readlink(p)
	if err != nil {
		return "/", true // unreadable: treat as leading out
	}
	return target, true
}

// createError classifies a failure to create name: an existing path is a
// duplicate, whatever made it.
func createError(err error) error {
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%w: %w", ErrDuplicate, err)
	}
	return fmt.Errorf("create: %w", err)
}
