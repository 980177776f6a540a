package archive

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// typeSocket marks a socket entry, which only zip can express.
const typeSocket = 's'

// ent describes one entry of an archive a test builds.
type ent struct {
	name string
	typ  byte // a tar type flag; zero means a regular file
	body string
	link string // target of a symbolic or hard link
	mode int64  // permission, setuid, setgid and sticky bits; zero means the usual
}

func file(name, body string) ent      { return ent{name: name, typ: tar.TypeReg, body: body} }
func dir(name string) ent             { return ent{name: name, typ: tar.TypeDir} }
func symlink(name, target string) ent { return ent{name: name, typ: tar.TypeSymlink, link: target} }
func hardlink(name, target string) ent {
	return ent{name: name, typ: tar.TypeLink, link: target}
}

// withMode returns e with mode bits m.
func (e ent) withMode(m int64) ent { e.mode = m; return e }

var modTime = time.Unix(1_700_000_000, 0)

// format is a way to build an archive from entries.
type format string

const (
	formatTar   format = "tar"
	formatTarGz format = "tgz"
	formatZip   format = "zip"
)

var allFormats = []format{formatTar, formatTarGz, formatZip}

// build writes ents as an archive of format f.
func build(tb testing.TB, f format, ents ...ent) []byte {
	tb.Helper()
	switch f {
	case formatTar:
		return tarOf(tb, ents...)
	case formatTarGz:
		return gzipOf(tb, tarOf(tb, ents...))
	case formatZip:
		return zipOf(tb, ents...)
	}
	tb.Fatalf("unknown format %q", f)
	return nil
}

// tarOf writes ents as a tar archive.
func tarOf(tb testing.TB, ents ...ent) []byte {
	tb.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: e.mode, ModTime: modTime}
		if hdr.Typeflag == 0 {
			hdr.Typeflag = tar.TypeReg
		}
		switch hdr.Typeflag {
		case tar.TypeReg:
			hdr.Size = int64(len(e.body))
			if hdr.Mode == 0 {
				hdr.Mode = 0o644
			}
		case tar.TypeDir:
			if hdr.Mode == 0 {
				hdr.Mode = 0o755
			}
		case tar.TypeSymlink:
			hdr.Mode = 0o777
		case tar.TypeChar, tar.TypeBlock:
			hdr.Devmajor, hdr.Devminor = 1, 3
		case typeSocket:
			tb.Fatalf("tar has no socket entries")
		}
		require.NoError(tb, tw.WriteHeader(hdr))
		if hdr.Size > 0 {
			_, err := io.WriteString(tw, e.body)
			require.NoError(tb, err)
		}
	}
	require.NoError(tb, tw.Close())
	return buf.Bytes()
}

// zipOf writes ents as a zip archive, deflating every entry.
func zipOf(tb testing.TB, ents ...ent) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range ents {
		fh := &zip.FileHeader{Name: e.name, Method: zip.Deflate, Modified: modTime}
		mode := fs.FileMode(e.mode & 0o777)
		if e.mode&0o4000 != 0 {
			mode |= fs.ModeSetuid
		}
		if e.mode&0o2000 != 0 {
			mode |= fs.ModeSetgid
		}
		if e.mode&0o1000 != 0 {
			mode |= fs.ModeSticky
		}
		body := e.body
		switch e.typ {
		case 0, tar.TypeReg:
			if mode.Perm() == 0 {
				mode |= 0o644
			}
		case tar.TypeDir:
			if !strings.HasSuffix(fh.Name, "/") {
				fh.Name += "/"
			}
			mode |= fs.ModeDir | 0o755
		case tar.TypeSymlink:
			mode |= fs.ModeSymlink | 0o777
			body = e.link
		case tar.TypeChar:
			mode |= fs.ModeDevice | fs.ModeCharDevice
		case tar.TypeBlock:
			mode |= fs.ModeDevice
		case tar.TypeFifo:
			mode |= fs.ModeNamedPipe
		case typeSocket:
			mode |= fs.ModeSocket
		default:
			tb.Fatalf("zip has no entries of tar type %q", e.typ)
		}
		fh.SetMode(mode)
		w, err := zw.CreateHeader(fh)
		require.NoError(tb, err)
		_, err = io.WriteString(w, body)
		require.NoError(tb, err)
	}
	require.NoError(tb, zw.Close())
	return buf.Bytes()
}

// gzipOf compresses b.
func gzipOf(tb testing.TB, b []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err := zw.Write(b)
	require.NoError(tb, err)
	require.NoError(tb, zw.Close())
	return buf.Bytes()
}

// rawHeader builds a tar header block by hand, for headers archive/tar
// will not write. magic is "ustar\x0000" (POSIX), "ustar  \x00" (GNU) or
// "" (V7).
func rawHeader(name string, typ byte, size int64, magic string) []byte {
	b := make([]byte, 512)
	copy(b[0:100], name)
	copy(b[100:108], "0000644\x00")
	copy(b[108:116], "0000000\x00")
	copy(b[116:124], "0000000\x00")
	copy(b[124:136], fmt.Sprintf("%011o\x00", size))
	copy(b[136:148], fmt.Sprintf("%011o\x00", modTime.Unix()))
	b[156] = typ
	copy(b[257:265], magic)
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

// padBlock pads b with zeros to a whole number of tar blocks.
func padBlock(b []byte) []byte {
	if n := len(b) % 512; n != 0 {
		b = append(b, make([]byte, 512-n)...)
	}
	return b
}

// paxRecord formats one PAX record, whose length counts itself.
func paxRecord(k, v string) string {
	size := len(k) + len(v) + 3 // space, '=' and newline
	size += len(fmt.Sprint(size))
	record := fmt.Sprintf("%d %s=%s\n", size, k, v)
	if len(record) != size { // the length gained a digit
		record = fmt.Sprintf("%d %s=%s\n", len(record), k, v)
	}
	return record
}

// sandbox is the directory a test extracts into, beside an "outside"
// directory that attacks aim at. Containment is proven by comparing
// everything outside dir before and after.
type sandbox struct {
	base, dir, outside string
	before             map[string]string
}

func newSandbox(tb testing.TB) *sandbox {
	tb.Helper()
	base, err := filepath.EvalSymlinks(tb.TempDir())
	require.NoError(tb, err)
	s := &sandbox{base: base, dir: filepath.Join(base, "dir"), outside: filepath.Join(base, "outside")}
	require.NoError(tb, os.Mkdir(s.dir, 0o755))
	require.NoError(tb, os.MkdirAll(filepath.Join(s.outside, "etc", "cron.d"), 0o755))
	require.NoError(tb, os.WriteFile(filepath.Join(s.outside, "secret"), []byte("secret"), 0o600))
	s.before = snapshot(tb, base, s.dir)
	return s
}

// extract extracts data into the sandbox.
func (s *sandbox) extract(tb testing.TB, data []byte, lim Limits) (Result, error) {
	tb.Helper()
	return Extract(context.Background(), bytes.NewReader(data), int64(len(data)), s.dir, lim)
}

// requireContained fails unless nothing outside dir changed and nothing in
// dir breaks the rules: only directories, regular files and links; no
// setuid, setgid or sticky bit; nothing beyond 0755; every symbolic link
// resolving inside dir.
func (s *sandbox) requireContained(tb testing.TB) {
	tb.Helper()
	require.Equal(tb, s.before, snapshot(tb, s.base, s.dir), "something outside the extraction directory changed")
	err := filepath.WalkDir(s.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		mode := fi.Mode()
		switch {
		case mode.Type() == fs.ModeSymlink:
			require.True(tb, resolvesInside(s.dir, p), "link %s leads outside", p)
		case mode.IsDir(), mode.IsRegular():
			require.Zero(tb, mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky), "%s: %v", p, mode)
			require.Zero(tb, mode.Perm()&^0o755, "%s: %v", p, mode)
		default:
			tb.Fatalf("%s: extracted a %v", p, mode.Type())
		}
		return nil
	})
	require.NoError(tb, err)
}

// snapshot describes every path under base except the tree at skip: type,
// permissions, size, link count, content digest and link target.
func snapshot(tb testing.TB, base, skip string) map[string]string {
	tb.Helper()
	snap := make(map[string]string)
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == skip {
			return filepath.SkipDir
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		desc := fmt.Sprintf("%v size=%d", fi.Mode(), fi.Size())
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			desc += fmt.Sprintf(" nlink=%d", st.Nlink)
		}
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" sha256=%x", sha256.Sum256(b))
		case fi.Mode().Type() == fs.ModeSymlink:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			desc += " -> " + t
		}
		snap[p] = desc
		return nil
	})
	require.NoError(tb, err)
	return snap
}

// resolvesInside follows the symbolic link at p with Lstat and Readlink,
// the way the kernel would, and reports whether the walk stays inside dir
// at every step. It is written apart from extractor.resolve, to check it.
func resolvesInside(dir, p string) bool {
	inside := func(q string) bool { return q == dir || strings.HasPrefix(q, dir+"/") }
	target, err := os.Readlink(p)
	if err != nil || filepath.IsAbs(target) {
		return false
	}
	cur := filepath.Dir(p)
	rem := strings.Split(target, "/")
	for hops := 0; len(rem) > 0; {
		e := rem[0]
		rem = rem[1:]
		switch e {
		case "", ".":
			continue
		case "..":
			if cur = filepath.Dir(cur); !inside(cur) {
				return false
			}
			continue
		}
		next := filepath.Join(cur, e)
		fi, err := os.Lstat(next)
		if err != nil || fi.Mode().Type() != fs.ModeSymlink {
			cur = next
			continue
		}
		if hops++; hops > maxLinkHops {
			return false
		}
		t, err := os.Readlink(next)
		if err != nil || filepath.IsAbs(t) {
			return false
		}
		rem = append(strings.Split(t, "/"), rem...)
	}
	return inside(cur)
}

// stream runs write in a goroutine that feeds the returned reader, so a
// test can extract an archive far larger than memory. Closing the reader,
// which the test's cleanup does, stops the writer; cleanup waits for it.
func stream(tb testing.TB, write func(w io.Writer) error) io.Reader {
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		pw.CloseWithError(write(pw))
	}()
	tb.Cleanup(func() {
		pr.Close()
		<-done
	})
	return pr
}

// zeros reads as an endless run of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// countFiles counts the regular files under dir.
func countFiles(tb testing.TB, dir string) int {
	tb.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return err
	})
	require.NoError(tb, err)
	return n
}
