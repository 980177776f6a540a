// Package tasklog keeps one output stream (stdout or stderr) of one task as a
// capped, rotated log addressed by logical byte offset.
//
// The logical offset of a byte is the number of bytes the stream produced
// before it. A log is a directory of segment files named
// "<stream>.<start>.log", where start is the logical offset of the segment's
// first byte, zero-padded to 20 digits so names sort by offset. Only the
// newest segment grows; when it reaches [Config.MaxSegmentBytes] a new one is
// started, and the oldest segments beyond [Config.MaxSegments] are deleted,
// so a log never holds more than MaxSegments*MaxSegmentBytes bytes on disk.
// Segments need not be contiguous: a gap between two of them is a range of
// the stream that was never stored, and offsets after it stay true.
//
// The agent writes a task's output with [Log.Write]; the server stores the
// chunks the agent uploads with [Log.Append], which is idempotent. Both read
// with [Log.ReadAt] and follow a growing log with [Log.Changed].
//
// The package owns the segment files of its stream and nothing else in the
// directory. Shipping logs, choosing directories and deleting them when a
// task is forgotten are left to the callers. A directory must be opened by
// at most one [Log] per stream at a time: nothing locks it across processes.
package tasklog

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// Defaults for [Config].
const (
	// DefaultMaxSegmentBytes is the size at which a segment is closed and
	// the next one started.
	DefaultMaxSegmentBytes = 8 << 20
	// DefaultMaxSegments is how many segments a log keeps.
	DefaultMaxSegments = 3
)

// ErrClosed is returned by operations on a [Log] after [Log.Close].
var ErrClosed = errors.New("tasklog: log closed")

// Config caps the disk a [Log] uses. The zero value means the defaults.
type Config struct {
	// MaxSegmentBytes is the largest size of one segment file. Zero means
	// [DefaultMaxSegmentBytes].
	MaxSegmentBytes int64
	// MaxSegments is how many segment files are kept; older ones are
	// deleted. Zero means [DefaultMaxSegments].
	MaxSegments int
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.MaxSegmentBytes == 0 {
		c.MaxSegmentBytes = DefaultMaxSegmentBytes
	}
	if c.MaxSegments == 0 {
		c.MaxSegments = DefaultMaxSegments
	}
	return c
}

// validate reports every bad field of c, which has its defaults filled.
func (c Config) validate() error {
	var errs []error
	if c.MaxSegmentBytes < 1 {
		errs = append(errs, fmt.Errorf("MaxSegmentBytes: must be positive, got %d", c.MaxSegmentBytes))
	}
	if c.MaxSegments < 1 {
		errs = append(errs, fmt.Errorf("MaxSegments: must be positive, got %d", c.MaxSegments))
	}
	return errors.Join(errs...)
}

// Log is one stream of one task on disk. It is safe for concurrent use by
// one writer (Write or Append) and any number of readers.
type Log struct {
	dir    string
	stream string
	cfg    Config

	// mu guards everything below. Writers hold it exclusively for the
	// whole write, readers share it for the whole read, so a reader never
	// sees a segment being deleted under it.
	mu sync.RWMutex
	// segs are the kept segments, oldest first, in increasing and
	// non-overlapping offset order. Only the last one is written to.
	segs    []*segment
	closed  bool
	changed chan struct{}
}

// Open opens the log of stream in dir, creating dir if needed. Segments left
// by an earlier Log continue: the next byte written gets offset [Log.End].
// stream names the files and may hold only letters, digits, '-' and '_'.
func Open(dir, stream string, cfg Config) (*Log, error) {
	if err := validStream(stream); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("tasklog config: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create log dir: %w", err)
	}
	segs, err := openSegments(dir, stream)
	if err != nil {
		return nil, err
	}
	l := &Log{dir: dir, stream: stream, cfg: cfg, segs: segs, changed: make(chan struct{})}
	// A smaller MaxSegments than the files were written with applies now.
	if err := l.pruneLocked(); err != nil {
		l.closeFilesLocked()
		return nil, err
	}
	return l, nil
}

// Write appends p at the end of the log, starting a new segment whenever the
// current one is full and deleting the oldest beyond the cap. A write larger
// than a segment is split across segments, so no segment outgrows
// [Config.MaxSegmentBytes].
func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, ErrClosed
	}
	n, err := l.writeLocked(p)
	if n > 0 {
		l.notifyLocked()
	}
	return n, err
}

// Append stores p as the bytes of the stream starting at offset off. It is
// idempotent, for chunks that may be sent twice: bytes before [Log.End] are
// assumed stored already and skipped. A chunk starting after End (a gap: the
// sender lost those bytes before shipping them) starts a new segment at off,
// so every stored byte keeps its true offset.
func (l *Log) Append(off int64, p []byte) error {
	if off < 0 {
		return fmt.Errorf("append at %d: negative offset", off)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	end := l.endLocked()
	if skip := end - off; skip > 0 {
		if skip >= int64(len(p)) {
			return nil
		}
		p, off = p[skip:], end
	}
	if len(p) == 0 {
		return nil
	}
	if off > end {
		if err := l.rollLocked(off); err != nil {
			return err
		}
	}
	n, err := l.writeLocked(p)
	if n > 0 {
		l.notifyLocked()
	}
	return err
}

// ReadAt reads into p the bytes kept from offset off on. When off was rotated
// away or falls in a gap, reading starts at the next kept byte instead, and
// start reports the offset of p[0] (start ≥ off). A read stops early, with a
// nil error, at the end of the log or at a gap; the next read from
// start+n continues after it. When no byte is kept at or after off (in
// particular when off ≥ [Log.End]), ReadAt returns 0, off and [io.EOF].
func (l *Log) ReadAt(off int64, p []byte) (n int, start int64, err error) {
	if off < 0 {
		return 0, off, fmt.Errorf("read at %d: negative offset", off)
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return 0, off, ErrClosed
	}
	i := 0
	for i < len(l.segs) && (l.segs[i].size == 0 || l.segs[i].end() <= off) {
		i++
	}
	if i == len(l.segs) {
		return 0, off, io.EOF
	}
	start = max(off, l.segs[i].start)
	pos := start
	for ; i < len(l.segs) && n < len(p); i++ {
		seg := l.segs[i]
		if seg.start > pos {
			break // a gap: the caller sees it as a jump in start
		}
		want := min(int64(len(p)-n), seg.end()-pos)
		m, err := seg.f.ReadAt(p[n:n+int(want)], pos-seg.start)
		n += m
		pos += int64(m)
		if int64(m) < want {
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF // the file is shorter than we wrote
			}
			return n, start, fmt.Errorf("read segment %s: %w", seg.name(l.stream), err)
		}
	}
	return n, start, nil
}

// End returns the logical offset just past the last byte stored: the offset
// the next [Log.Write] gets.
func (l *Log) End() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.endLocked()
}

// Start returns the offset of the first byte still kept. Bytes before it
// were rotated away. An empty log starts at 0.
func (l *Log) Start() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if len(l.segs) == 0 {
		return 0
	}
	return l.segs[0].start
}

// Changed returns a channel that is closed at the next successful Write or
// Append of at least one byte, and at Close. To follow the log without
// missing bytes, take the channel before calling [Log.ReadAt], and wait on
// it once ReadAt reports [io.EOF].
func (l *Log) Changed() <-chan struct{} {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.changed
}

// Close closes the segment files and wakes every waiter on [Log.Changed].
// Later calls on the log return [ErrClosed]; Close itself may be called
// again and then returns nil.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	close(l.changed)
	return l.closeFilesLocked()
}

// endLocked returns the logical end offset.
func (l *Log) endLocked() int64 {
	if len(l.segs) == 0 {
		return 0
	}
	return l.segs[len(l.segs)-1].end()
}

// writeLocked appends p at the end, rolling whenever the last segment is
// full. It returns how many bytes reached a file.
func (l *Log) writeLocked(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		if len(l.segs) == 0 || l.segs[len(l.segs)-1].size >= l.cfg.MaxSegmentBytes {
			if err := l.rollLocked(l.endLocked()); err != nil {
				return written, err
			}
		}
		seg := l.segs[len(l.segs)-1]
		chunk := p[:min(int64(len(p)), l.cfg.MaxSegmentBytes-seg.size)]
		n, err := seg.f.Write(chunk)
		seg.size += int64(n)
		written += n
		p = p[n:]
		if err != nil {
			return written, fmt.Errorf("write segment %s: %w", seg.name(l.stream), err)
		}
	}
	return written, nil
}

// rollLocked starts a new, empty segment at offset start (≥ the end) and
// deletes the oldest segments beyond the cap. An empty last segment is
// replaced rather than kept, so it does not take a slot of the cap.
func (l *Log) rollLocked(start int64) error {
	if n := len(l.segs); n > 0 && l.segs[n-1].size == 0 {
		if err := l.segs[n-1].remove(l.dir, l.stream); err != nil {
			return err
		}
		l.segs = l.segs[:n-1]
	}
	seg, err := createSegment(l.dir, l.stream, start)
	if err != nil {
		return err
	}
	l.segs = append(l.segs, seg)
	return l.pruneLocked()
}

// pruneLocked deletes the oldest segments beyond [Config.MaxSegments].
func (l *Log) pruneLocked() error {
	for len(l.segs) > l.cfg.MaxSegments {
		if err := l.segs[0].remove(l.dir, l.stream); err != nil {
			return err
		}
		l.segs[0] = nil
		l.segs = l.segs[1:]
	}
	return nil
}

// notifyLocked wakes the waiters on the current Changed channel and hands
// out a fresh one.
func (l *Log) notifyLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// closeFilesLocked closes every segment file.
func (l *Log) closeFilesLocked() error {
	var errs []error
	for _, seg := range l.segs {
		if err := seg.f.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close segment %s: %w", seg.name(l.stream), err))
		}
	}
	return errors.Join(errs...)
}

// validStream checks that stream is usable in a file name and cannot be
// confused with the offset part of it.
func validStream(stream string) error {
	if stream == "" {
		return errors.New("stream: must not be empty")
	}
	for _, r := range stream {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_'
		if !ok {
			return fmt.Errorf("stream %q: may hold only letters, digits, '-' and '_'", stream)
		}
	}
	return nil
}
