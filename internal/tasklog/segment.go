package tasklog

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// offsetDigits is the width of the zero-padded start offset in a segment's
// name; 20 digits hold any int64, so names sort in offset order.
const offsetDigits = 20

// segment is one file of a log: the bytes of the stream from start on.
type segment struct {
	start int64
	size  int64
	// f stays open for the segment's life: reads use ReadAt on it, and the
	// last segment is appended to through it (O_APPEND).
	f *os.File
}

// createSegment creates the empty file of a segment starting at start.
func createSegment(dir, stream string, start int64) (*segment, error) {
	seg := &segment{start: start}
	f, err := os.OpenFile(filepath.Join(dir, seg.name(stream)), os.O_RDWR|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create segment: %w", err)
	}
	seg.f = f
	return seg, nil
}

// openSegments opens the existing segments of stream in dir, oldest first.
func openSegments(dir, stream string) ([]*segment, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list log dir: %w", err)
	}
	var segs []*segment
	fail := func(err error) ([]*segment, error) {
		for _, seg := range segs {
			_ = seg.f.Close() // the open error is the one worth reporting
		}
		return nil, err
	}
	for _, e := range entries {
		start, ok := parseSegmentName(stream, e.Name())
		if !ok || !e.Type().IsRegular() {
			continue
		}
		f, err := os.OpenFile(filepath.Join(dir, e.Name()), os.O_RDWR|os.O_APPEND, 0)
		if err != nil {
			return fail(fmt.Errorf("open segment: %w", err))
		}
		segs = append(segs, &segment{start: start, f: f})
		fi, err := f.Stat()
		if err != nil {
			return fail(fmt.Errorf("stat segment: %w", err))
		}
		segs[len(segs)-1].size = fi.Size()
	}
	slices.SortFunc(segs, func(a, b *segment) int { return cmp.Compare(a.start, b.start) })
	for i := 1; i < len(segs); i++ {
		if prev := segs[i-1]; prev.end() > segs[i].start {
			return fail(fmt.Errorf("segments %s and %s overlap", prev.name(stream), segs[i].name(stream)))
		}
	}
	return segs, nil
}

// end returns the offset just past the segment's last byte.
func (s *segment) end() int64 { return s.start + s.size }

// name returns the segment's file name.
func (s *segment) name(stream string) string {
	return fmt.Sprintf("%s.%0*d.log", stream, offsetDigits, s.start)
}

// remove deletes the segment's file, then closes it. When the delete fails
// the segment stays open and usable, and a later remove can try again.
func (s *segment) remove(dir, stream string) error {
	name := s.name(stream)
	if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove segment %s: %w", name, err)
	}
	// The file is gone; an error closing it could not be acted on.
	_ = s.f.Close()
	return nil
}

// parseSegmentName returns the start offset encoded in name, if name is a
// segment of stream.
func parseSegmentName(stream, name string) (int64, bool) {
	rest, ok := strings.CutPrefix(name, stream+".")
	if !ok {
		return 0, false
	}
	digits, ok := strings.CutSuffix(rest, ".log")
	if !ok || len(digits) != offsetDigits {
		return 0, false
	}
	for _, r := range digits {
		if r < '0' || r > '9' {
			return 0, false
		}
	}
	start, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		return 0, false
	}
	return start, true
}
