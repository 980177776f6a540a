package archive

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// zeroTar writes a tar archive of n files of size zero bytes each,
// generating the data as it goes.
func zeroTar(w io.Writer, n int, size int64) error {
	tw := tar.NewWriter(w)
	for i := range n {
		hdr := &tar.Header{Name: fmt.Sprintf("zeros%d", i), Typeflag: tar.TypeReg, Mode: 0o644, Size: size, ModTime: modTime}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.CopyN(tw, zeros{}, size); err != nil {
			return err
		}
	}
	return tw.Close()
}

// gzipBomb streams a tar.gz of n files of size zeros each, compressed as
// hard as gzip can (about 1,000 to 1), without holding it in memory.
func gzipBomb(tb testing.TB, n int, size int64, level int) io.Reader {
	return stream(tb, func(w io.Writer) error {
		zw, err := gzip.NewWriterLevel(w, level)
		if err != nil {
			return err
		}
		if err := zeroTar(zw, n, size); err != nil {
			return err
		}
		return zw.Close()
	})
}

// TestExtractStopsGzipBomb streams 1 GiB of zeros, gzipped to about 1 MiB,
// against the default limits: the ratio stops it within the first MiBs.
func TestExtractStopsGzipBomb(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)

	res, err := Extract(context.Background(), gzipBomb(t, 8, 128<<20, gzip.BestCompression), -1, s.dir, Limits{})

	require.ErrorIs(t, err, ErrLimit)
	require.ErrorContains(t, err, "compression ratio")
	require.Less(t, res.Bytes, int64(4<<20))
	s.requireContained(t)
}

// TestExtractGzipBombMemory lifts the ratio limit so that the bomb runs
// into MaxBytes, and checks memory stays flat while 48 MiB inflate. It is
// not parallel so that it measures allocation alone.
func TestExtractGzipBombMemory(t *testing.T) {
	s := newSandbox(t)
	lim := Limits{MaxBytes: 48 << 20, MaxRatio: 1 << 30}
	bomb := gzipBomb(t, 8, 16<<20, gzip.BestSpeed)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	res, err := Extract(context.Background(), bomb, -1, s.dir, lim)

	runtime.ReadMemStats(&after)
	require.ErrorIs(t, err, ErrLimit)
	require.ErrorContains(t, err, "files total over")
	require.Equal(t, lim.MaxBytes, res.Bytes)
	require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(16<<20), "allocated while inflating 48 MiB")
	s.requireContained(t)
}

// TestExtractStopsManyFiles streams a tar of a million empty files; the
// default MaxFiles stops it at 10,000.
func TestExtractStopsManyFiles(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	million := stream(t, func(w io.Writer) error { return zeroTar(w, 1_000_000, 0) })

	res, err := Extract(context.Background(), million, -1, s.dir, Limits{})

	require.ErrorIs(t, err, ErrLimit)
	require.ErrorContains(t, err, "more than 10000 entries")
	require.Equal(t, DefaultMaxFiles, res.Files)
	require.Equal(t, DefaultMaxFiles, countFiles(t, s.dir))
	s.requireContained(t)
}

func TestExtractStopsAtLimits(t *testing.T) {
	t.Parallel()
	kib := strings.Repeat("x", 1<<10)
	tests := []struct {
		name    string
		lim     Limits
		ents    []ent
		formats []format
		msg     string
		files   int // files written before the limit struck
	}{
		{
			name: "file over MaxFileBytes",
			lim:  Limits{MaxFileBytes: 1 << 10},
			ents: []ent{file("small", kib), file("big", kib+"x")},
			msg:  "file is 1025 bytes, over 1024", files: 1,
		},
		{
			name:    "files over MaxBytes",
			lim:     Limits{MaxBytes: 10 << 10},
			ents:    []ent{file("a", strings.Repeat(kib, 4)), file("b", strings.Repeat(kib, 4)), file("c", strings.Repeat(kib, 4))},
			formats: []format{formatTar, formatTarGz},
			msg:     "files total over 10240 bytes", files: 2,
		},
		{
			name:    "zip declaring more than MaxBytes",
			lim:     Limits{MaxBytes: 10 << 10},
			ents:    []ent{file("a", strings.Repeat(kib, 4)), file("b", strings.Repeat(kib, 4)), file("c", strings.Repeat(kib, 4))},
			formats: []format{formatZip},
			msg:     "files total 12288 bytes, over 10240", files: 0,
		},
		{
			name:    "entries over MaxFiles",
			lim:     Limits{MaxFiles: 3},
			ents:    []ent{dir("d"), file("d/a", "a"), symlink("l", "d"), file("b", "b")},
			formats: []format{formatTar, formatTarGz},
			msg:     "more than 3 entries", files: 1,
		},
		{
			name:    "zip entries over MaxFiles",
			lim:     Limits{MaxFiles: 3},
			ents:    []ent{dir("d"), file("d/a", "a"), symlink("l", "d"), file("b", "b")},
			formats: []format{formatZip},
			msg:     "4 entries, over 3", files: 0,
		},
	}
	for _, tt := range tests {
		formats := tt.formats
		if formats == nil {
			formats = allFormats
		}
		for _, f := range formats {
			t.Run(tt.name+"/"+string(f), func(t *testing.T) {
				t.Parallel()
				s := newSandbox(t)

				res, err := s.extract(t, build(t, f, tt.ents...), tt.lim)

				require.ErrorIs(t, err, ErrLimit)
				require.ErrorContains(t, err, tt.msg)
				require.Equal(t, tt.files, res.Files)
				require.Equal(t, tt.files, countFiles(t, s.dir))
				s.requireContained(t)
			})
		}
	}
}

// TestExtractStopsCompressedBeyondRatio covers the trade-off of MaxRatio:
// highly compressible data is refused, in tar.gz and in zip, unless the
// caller raises the limit; plain tar has no ratio.
func TestExtractStopsCompressedBeyondRatio(t *testing.T) {
	t.Parallel()
	const size = 2 << 20
	zeros := tarOf(t, file("zeros", strings.Repeat("\x00", size)))
	zeroZip := zipOf(t, file("zeros", strings.Repeat("\x00", size)))
	tests := []struct {
		name string
		data []byte
		lim  Limits
		ok   bool
	}{
		{name: "tar", data: zeros, ok: true},
		{name: "tar.gz", data: gzipLevel(t, zeros, gzip.BestCompression)},
		{name: "zip", data: zeroZip},
		{name: "tar.gz with a raised limit", data: gzipLevel(t, zeros, gzip.BestCompression), lim: Limits{MaxRatio: 2000}, ok: true},
		{name: "zip with a raised limit", data: zeroZip, lim: Limits{MaxRatio: 2000}, ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newSandbox(t)

			res, err := s.extract(t, tt.data, tt.lim)

			if tt.ok {
				require.NoError(t, err)
				require.Equal(t, int64(size), res.Bytes)
				return
			}
			require.ErrorIs(t, err, ErrLimit)
			require.ErrorContains(t, err, "compression ratio over 200")
			require.Less(t, res.Bytes, int64(size))
			s.requireContained(t)
		})
	}
}

// TestExtractStopsOverlappingZip is the non-recursive zip bomb: many
// entries share one deflated stream, so the archive's sizes add up to far
// more than it holds. The declared sizes are refused before any write.
func TestExtractStopsOverlappingZip(t *testing.T) {
	t.Parallel()
	// One deflated MiB of zeros, then central records that all point at it.
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateHeader(&zip.FileHeader{Name: "z0", Method: zip.Deflate})
	require.NoError(t, err)
	_, err = io.CopyN(w, zeros{}, 1<<20)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	one := buf.Bytes()
	zr, err := zip.NewReader(bytes.NewReader(one), int64(len(one)))
	require.NoError(t, err)
	f := zr.File[0]
	var bomb bytes.Buffer
	zw = zip.NewWriter(&bomb)
	for i := range 200 {
		raw, err := f.OpenRaw()
		require.NoError(t, err)
		fh := f.FileHeader
		fh.Name = fmt.Sprintf("z%d", i)
		w, err := zw.CreateRaw(&fh)
		require.NoError(t, err)
		_, err = io.Copy(w, raw)
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	s := newSandbox(t)

	res, err := s.extract(t, bomb.Bytes(), Limits{MaxBytes: 100 << 20})

	require.ErrorIs(t, err, ErrLimit)
	require.Zero(t, res.Bytes)
	s.requireContained(t)
}

// TestExtractBoundsZipDirectory checks that a zip whose central directory
// holds far more records than MaxFiles is refused from the budget alone,
// before archive/zip holds them all.
func TestExtractBoundsZipDirectory(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i := range 5000 {
		_, err := zw.CreateHeader(&zip.FileHeader{Name: fmt.Sprintf("%04d-%s", i, strings.Repeat("n", 100)), Method: zip.Store})
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	data := buf.Bytes()
	s := newSandbox(t)

	res, err := s.extract(t, data, Limits{MaxFiles: 10})

	require.ErrorIs(t, err, ErrLimit)
	require.ErrorContains(t, err, "zip central directory too large")
	require.Zero(t, res.Files)
}

// TestExtractBoundsZipCopy checks the cap on the temporary copy of a zip
// read from a stream, with the size known and unknown.
func TestExtractBoundsZipCopy(t *testing.T) {
	t.Parallel()
	noise := make([]byte, 8<<10)
	_, err := rand.Read(noise)
	require.NoError(t, err)
	data := zipOf(t, file("noise", string(noise)))
	lim := Limits{MaxBytes: 1 << 10, MaxFiles: 1, MaxNameLen: 16}

	for _, size := range []int64{int64(len(data)), -1} {
		_, err := Extract(context.Background(), bytes.NewReader(data), size, t.TempDir(), lim)
		require.ErrorIs(t, err, ErrLimit)
		require.ErrorContains(t, err, "zip archive is")
	}
}

// TestExtractCopyEnforcesLimitsOnData drives the copy loop with more data
// than any header declared, as a lying decoder would give it.
func TestExtractCopyEnforcesLimitsOnData(t *testing.T) {
	t.Parallel()
	for name, lim := range map[string]Limits{
		"file": {MaxFileBytes: 1 << 20},
		"all":  {MaxBytes: 1 << 20},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			lim, err := lim.withDefaults()
			require.NoError(t, err)
			s := newSandbox(t)
			x, err := newExtractor(s.dir, lim)
			require.NoError(t, err)
			defer x.close()

			err = x.file(context.Background(), "f", false, -1, zeros{})

			require.ErrorIs(t, err, ErrLimit)
			fi, err := os.Stat(filepath.Join(s.dir, "f"))
			require.NoError(t, err)
			require.LessOrEqual(t, fi.Size(), int64(1<<20))
		})
	}
}

func TestExtractStopsWhenContextEnds(t *testing.T) {
	t.Parallel()

	t.Run("before", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		data := tarOf(t, file("f", "x"))
		zipData := zipOf(t, file("f", "x"))
		s := newSandbox(t)

		_, err := Extract(ctx, bytes.NewReader(data), -1, s.dir, Limits{})
		require.ErrorIs(t, err, context.Canceled)
		_, err = ExtractZip(ctx, bytes.NewReader(zipData), int64(len(zipData)), s.dir, Limits{})
		require.ErrorIs(t, err, context.Canceled)
		require.Zero(t, countFiles(t, s.dir))
	})

	for name, gen := range map[string]func(io.Writer) error{
		// An endless run of small files: cancelled between entries.
		"between entries": func(w io.Writer) error { return zeroTar(w, 1_000_000, 10) },
		// One file of 400 MiB: cancelled inside it.
		"inside a file": func(w io.Writer) error { return zeroTar(w, 1, 400<<20) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			s := newSandbox(t)
			r := &cancelAfter{r: stream(t, gen), n: 1 << 20, cancel: cancel}

			res, err := Extract(ctx, r, -1, s.dir, Limits{})

			require.ErrorIs(t, err, context.Canceled)
			require.Less(t, res.Bytes, int64(2<<20))
			s.requireContained(t)
		})
	}
}

// cancelAfter cancels a context once n bytes have been read through it:
// the event a test waits on, instead of time.
type cancelAfter struct {
	r      io.Reader
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.n -= n; c.n <= 0 {
		c.cancel()
	}
	return n, err
}

// TestExtractBoundsLinkResolution checks that resolving symbolic links
// cannot be made to walk without end: each target below is a long run of
// "./" elements, and together they exceed the budget.
func TestExtractBoundsLinkResolution(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ents func() []ent
		msg  string
	}{
		{
			name: "long targets",
			ents: func() []ent {
				ents := make([]ent, 400)
				for i := range ents {
					ents[i] = symlink(fmt.Sprintf("l%d", i), strings.Repeat("./", 2000)+".")
				}
				return ents
			},
			msg: "symbolic links take over 640000 steps",
		},
		{
			name: "deep target",
			ents: func() []ent { return []ent{symlink("l", strings.Repeat("d/", DefaultMaxDepth)+"x")} },
			msg:  "over 32 elements deep",
		},
		{
			name: "deep through a link",
			ents: func() []ent {
				deep := strings.TrimSuffix(strings.Repeat("d/", DefaultMaxDepth-1), "/")
				return []ent{symlink("a", deep), symlink("s", "a/y/z")}
			},
			msg: "over 32 elements deep",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newSandbox(t)

			res, err := s.extract(t, tarOf(t, tt.ents()...), Limits{})

			require.ErrorIs(t, err, ErrLimit)
			require.ErrorContains(t, err, tt.msg)
			require.Less(t, res.Links, 400)
		})
	}
}
