package archive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// goodEntries is a well-behaved archive with every kind of entry the
// package accepts.
func goodEntries(tb testing.TB) []ent {
	return []ent{
		dir("bin"),
		file("bin/tool", "#!/bin/sh\n").withMode(0o4755), // setuid, stripped
		file("etc/conf", "key=value\n").withMode(0o600),
		file("./share/doc/readme", "read me\n").withMode(0o2777), // setgid and world-writable, stripped
		dir("share/").withMode(0o1777),                           // sticky, stripped; repeats an implied directory
		dir("share"),                                             // and again
		dir("./"),                                                // the root itself
		symlink("lib/tool", "../bin/tool"),
		symlink("current", "."),
		symlink("dangling", "nowhere/x"),
		symlink("up/bin", "../bin"),
		symlink("chain", "up/bin/tool"),
		file(strings.Repeat("n", MaxElementLen), "long element"),
		file(strings.TrimSuffix(strings.Repeat("d/", DefaultMaxDepth-1), "/")+"/deep", "deep"),
		file("nested.zip", string(zipOf(tb, file("inner", "not unpacked")))),
		file("empty", ""),
	}
}

func TestExtract(t *testing.T) {
	t.Parallel()
	for _, f := range allFormats {
		t.Run(string(f), func(t *testing.T) {
			t.Parallel()
			s := newSandbox(t)
			ents := goodEntries(t)
			if f != formatZip {
				ents = append(ents, hardlink("bin/tool2", "bin/tool"), hardlink("bin/tool3", "./bin//tool2"))
			}

			res, err := s.extract(t, build(t, f, ents...), Limits{})

			require.NoError(t, err)
			s.requireContained(t)
			files := map[string]string{
				"bin/tool":                         "#!/bin/sh\n",
				"etc/conf":                         "key=value\n",
				"share/doc/readme":                 "read me\n",
				"lib/tool":                         "#!/bin/sh\n", // through the link
				"chain":                            "#!/bin/sh\n",
				"current/etc/conf":                 "key=value\n",
				"up/bin/tool":                      "#!/bin/sh\n",
				"empty":                            "",
				strings.Repeat("n", MaxElementLen): "long element",
			}
			for name, want := range files {
				got, err := os.ReadFile(filepath.Join(s.dir, name))
				require.NoError(t, err, name)
				require.Equal(t, want, string(got), name)
			}
			requireMode(t, s.dir, "bin/tool", 0o755)
			requireMode(t, s.dir, "etc/conf", 0o644)
			requireMode(t, s.dir, "share/doc/readme", 0o755)
			requireMode(t, s.dir, "share", 0o755|fs.ModeDir)
			target, err := os.Readlink(filepath.Join(s.dir, "lib/tool"))
			require.NoError(t, err)
			require.Equal(t, "../bin/tool", target)
			_, err = os.Stat(filepath.Join(s.dir, "inner"))
			require.ErrorIs(t, err, os.ErrNotExist, "a nested archive was unpacked")

			want := Result{Files: 7, Dirs: 1, Links: 5} // "share" was implied before its entry
			if f != formatZip {
				want.Links += 2
				tool2, err := os.Stat(filepath.Join(s.dir, "bin/tool2"))
				require.NoError(t, err)
				tool, err := os.Stat(filepath.Join(s.dir, "bin/tool"))
				require.NoError(t, err)
				require.True(t, os.SameFile(tool, tool2))
			}
			require.Equal(t, want.Files, res.Files)
			require.Equal(t, want.Dirs, res.Dirs)
			require.Equal(t, want.Links, res.Links)
			require.Positive(t, res.Bytes)
		})
	}
}

// requireMode checks the mode of dir/name, allowing for the umask, which
// may only take bits away.
func requireMode(tb testing.TB, dir, name string, want fs.FileMode) {
	tb.Helper()
	fi, err := os.Lstat(filepath.Join(dir, name))
	require.NoError(tb, err)
	got := fi.Mode()
	require.Equal(tb, want.Type(), got.Type(), name)
	require.Zero(tb, got&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky), "%s: %v", name, got)
	require.Zero(tb, got.Perm()&^want.Perm(), "%s: %v is more than %v", name, got, want)
	require.Equal(tb, want.Perm()&0o100, got.Perm()&0o100, "%s: owner execute bit", name)
}

func TestExtractDetectsFormatByContent(t *testing.T) {
	t.Parallel()
	v7 := append(rawHeader("v7file", tar.TypeReg, 2, ""), padBlock([]byte("v7"))...)
	v7 = append(v7, make([]byte, 1024)...)
	tests := []struct {
		name string
		data []byte
		want string // a file the archive holds, or "" for an error
	}{
		{name: "tar", data: tarOf(t, file("f", "x")), want: "f"},
		{name: "tar.gz", data: gzipOf(t, tarOf(t, file("f", "x"))), want: "f"},
		{name: "zip", data: zipOf(t, file("f", "x")), want: "f"},
		{name: "V7 tar", data: v7, want: "v7file"},
		{name: "empty tar", data: tarOf(t)},
		{name: "empty zip", data: zipOf(t)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newSandbox(t)

			_, err := s.extract(t, tt.data, Limits{})

			require.NoError(t, err)
			if tt.want != "" {
				require.FileExists(t, filepath.Join(s.dir, tt.want))
			}
		})
	}
}

func TestExtractRefusesOtherFormats(t *testing.T) {
	t.Parallel()
	good := tarOf(t, file("f", strings.Repeat("x", 2000)))
	goodZip := zipOf(t, file("f", strings.Repeat("x", 2000)))
	badSum := bytes.Clone(good)
	badSum[0] = 'g' // the checksum no longer holds, and there is no ustar magic
	copy(badSum[257:], "xxxxx")
	tests := []struct {
		name string
		data []byte
	}{
		{name: "empty", data: nil},
		{name: "text", data: []byte("hello, world\n")},
		{name: "bzip2", data: []byte("BZh91AY&SY" + strings.Repeat("\x00", 600))},
		{name: "xz", data: []byte("\xfd7zXZ\x00" + strings.Repeat("\x00", 600))},
		{name: "gzip of text", data: gzipOf(t, []byte("hello, world\n"))},
		{name: "gzip of zip", data: gzipOf(t, goodZip)},
		{name: "self-extracting zip", data: append([]byte("\x7fELF"+strings.Repeat("\x00", 600)), goodZip...)},
		{name: "tar without magic or checksum", data: badSum},
		{name: "truncated tar", data: good[:1200]},
		{name: "truncated tar.gz", data: gzipOf(t, good)[:40]},
		{name: "corrupt gzip", data: append(gzipOf(t, good)[:20], bytes.Repeat([]byte{0xff}, 100)...)},
		{name: "truncated zip", data: goodZip[:len(goodZip)-10]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newSandbox(t)

			_, err := s.extract(t, tt.data, Limits{})

			require.ErrorIs(t, err, ErrFormat)
			var ee *ExtractError
			require.ErrorAs(t, err, &ee)
			s.requireContained(t)
		})
	}
}

func TestExtractReadsAtMostSize(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	data := tarOf(t, file("f", strings.Repeat("x", 2000)))

	_, err := Extract(context.Background(), bytes.NewReader(data), 1200, s.dir, Limits{})

	require.ErrorIs(t, err, ErrFormat)
}

func TestExtractZipFromReaderAt(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	data := zipOf(t, goodEntries(t)...)

	res, err := ExtractZip(context.Background(), bytes.NewReader(data), int64(len(data)), s.dir, Limits{})

	require.NoError(t, err)
	require.Equal(t, 7, res.Files)
	s.requireContained(t)

	_, err = ExtractZip(context.Background(), bytes.NewReader(data), -1, t.TempDir(), Limits{})
	require.ErrorIs(t, err, ErrFormat)
}

func TestExtractNeedsDirectory(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "missing")

	_, err := Extract(context.Background(), bytes.NewReader(tarOf(t, file("f", "x"))), -1, missing, Limits{})

	require.ErrorIs(t, err, fs.ErrNotExist)
	require.NoDirExists(t, missing)
}

func TestLimitsValidate(t *testing.T) {
	t.Parallel()

	_, err := Extract(context.Background(), bytes.NewReader(nil), 0, t.TempDir(), Limits{MaxBytes: -1, MaxRatio: -5})

	require.ErrorContains(t, err, "MaxBytes: must not be negative")
	require.ErrorContains(t, err, "MaxRatio: must not be negative")
	got, err := Limits{MaxFiles: 7}.withDefaults()
	require.NoError(t, err)
	require.Equal(t, Limits{
		MaxBytes: DefaultMaxBytes, MaxFiles: 7, MaxFileBytes: DefaultMaxFileBytes,
		MaxDepth: DefaultMaxDepth, MaxNameLen: DefaultMaxNameLen, MaxRatio: DefaultMaxRatio,
	}, got)
}

func TestExtractErrorMessage(t *testing.T) {
	t.Parallel()
	err := &ExtractError{Entry: "a\x1b[31m" + strings.Repeat("x", 1000), Reason: ErrUnsafePath}

	msg := err.Error()

	require.NotContains(t, msg, "\x1b")
	require.Less(t, len(msg), 400)
	require.ErrorIs(t, err, ErrUnsafePath)
	require.Equal(t, "extract archive: "+ErrFormat.Error(), (&ExtractError{Reason: ErrFormat}).Error())
}

// TestExtractHonoursDepthAndNameLimits checks the Limits fields reach the
// name checks.
func TestExtractHonoursDepthAndNameLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		lim  Limits
		ent  ent
	}{
		{name: "depth", lim: Limits{MaxDepth: 2}, ent: file("a/b/c", "x")},
		{name: "name", lim: Limits{MaxNameLen: 8}, ent: file("abcd/efghi", "x")},
		{name: "element", lim: Limits{MaxNameLen: 8}, ent: file("abcdefghi", "x")},
		{name: "link target", lim: Limits{MaxNameLen: 8}, ent: symlink("a", "abcdefghi")},
	}
	for _, tt := range tests {
		for _, f := range allFormats {
			t.Run(tt.name+"/"+string(f), func(t *testing.T) {
				t.Parallel()
				s := newSandbox(t)

				_, err := s.extract(t, build(t, f, tt.ent), tt.lim)

				require.ErrorIs(t, err, ErrLimit)
				require.Zero(t, countFiles(t, s.dir))
			})
		}
	}
}

// gzipLevel compresses b at level.
func gzipLevel(tb testing.TB, b []byte, level int) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, level)
	require.NoError(tb, err)
	_, err = zw.Write(b)
	require.NoError(tb, err)
	require.NoError(tb, zw.Close())
	return buf.Bytes()
}
