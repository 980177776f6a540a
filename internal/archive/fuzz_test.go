package archive

import (
	"bytes"
	"context"
	"io/fs"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// fuzzLimits are small, so that the fuzzer meets every limit often.
var fuzzLimits = Limits{
	MaxBytes:     64 << 10,
	MaxFiles:     32,
	MaxFileBytes: 16 << 10,
	MaxDepth:     6,
	MaxNameLen:   128,
	MaxRatio:     50,
}

// FuzzExtract checks that Extract never panics, never writes outside its
// directory (a sibling directory stands guard), and that what it leaves
// respects the rules and the limits, whatever the archive.
func FuzzExtract(f *testing.F) {
	good := goodEntries(f)
	good = good[:len(good)-4] // the long and deep names exceed fuzzLimits
	for _, fm := range allFormats {
		f.Add(build(f, fm, good...))
		for _, a := range attacks() {
			if a.formats == nil || slices.Contains(a.formats, fm) {
				f.Add(build(f, fm, a.ents("/tmp/outside")...))
			}
		}
	}
	f.Add(tarOf(f, file("f", "x"), hardlink("h", "f"), file("g", "y")))
	f.Add(tarOf(f, symlink("d1/d2/l", "../../a"), symlink("s", "d1/d2/l/../../.."), dir("s2")))
	f.Add([]byte{})
	f.Add([]byte("PK\x05\x06"))

	f.Fuzz(func(t *testing.T, data []byte) {
		s := newSandbox(t)

		res, err := Extract(context.Background(), bytes.NewReader(data), int64(len(data)), s.dir, fuzzLimits)

		if err != nil {
			var ee *ExtractError
			require.ErrorAs(t, err, &ee, "%v", err)
			require.NotNil(t, ee.Reason)
		}
		s.requireContained(t)
		require.LessOrEqual(t, res.Bytes, fuzzLimits.MaxBytes)
		require.LessOrEqual(t, res.Files+res.Dirs+res.Links, fuzzLimits.MaxFiles)
		var files, links int
		var total int64
		walkErr := filepath.WalkDir(s.dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(s.dir, p)
			if err != nil {
				return err
			}
			if rel != "." {
				require.LessOrEqual(t, len(rel), fuzzLimits.MaxNameLen, rel)
			}
			switch {
			case d.Type()&fs.ModeSymlink != 0:
				links++
			case d.Type().IsRegular():
				fi, err := d.Info()
				if err != nil {
					return err
				}
				require.LessOrEqual(t, fi.Size(), fuzzLimits.MaxFileBytes, rel)
				total += fi.Size()
				files++
			}
			return nil
		})
		require.NoError(t, walkErr)
		require.LessOrEqual(t, files+links, fuzzLimits.MaxFiles)
		// Hard links count each name, so the bytes on disk may exceed
		// what was written; without them they are what was written.
		if res.Links == links {
			require.Equal(t, res.Bytes, total)
			require.Equal(t, res.Files, files)
		}
	})
}
