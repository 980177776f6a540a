package archive

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Result counts what an extraction wrote. After an error it counts what
// was written before it, the last file possibly in part.
type Result struct {
	// Files is the number of regular files written.
	Files int
	// Dirs is the number of directory entries created; the parents that
	// entries imply are not counted.
	Dirs int
	// Links is the number of symbolic and hard links created.
	Links int
	// Bytes is the number of bytes written to files.
	Bytes int64
}

// Extract unpacks the tar, tar.gz or zip archive read from r into dir,
// which must exist, following the rules and limits of the package doc.
// size is the length of the archive when known, or -1: when known, no more
// than size bytes are read from r.
//
// tar and tar.gz are streamed. A zip archive must be read out of order, so
// Extract first copies it to a temporary file in [os.TempDir], removed
// before Extract returns. The copy is refused past MaxBytes plus 1 KiB and
// twice MaxNameLen for each entry MaxFiles allows (1.09 GiB with the
// defaults). A caller that holds the archive in a file or in memory can
// call [ExtractZip] instead.
//
// Extract stops at ctx's end, between reads of r. On error it returns an
// [*ExtractError] (or a Limits error naming the bad fields) and leaves what
// it wrote inside dir for the caller to remove.
func Extract(ctx context.Context, r io.Reader, size int64, dir string, lim Limits) (Result, error) {
	lim, err := lim.withDefaults()
	if err != nil {
		return Result{}, err
	}
	if err := ctx.Err(); err != nil {
		return Result{}, &ExtractError{Reason: err}
	}
	if size >= 0 {
		r = io.LimitReader(r, size)
	}
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := peek(br)
	if err != nil {
		return Result{}, &ExtractError{Reason: err}
	}
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return extractWith(ctx, dir, lim, func(x *extractor) error { return x.gzip(ctx, br) })
	case bytes.HasPrefix(head, []byte("PK\x03\x04")), bytes.HasPrefix(head, []byte("PK\x05\x06")):
		return extractSpooledZip(ctx, br, size, dir, lim)
	case isTarHeader(head):
		return extractWith(ctx, dir, lim, func(x *extractor) error { return x.tar(ctx, tar.NewReader(br)) })
	}
	return Result{}, &ExtractError{Reason: fmt.Errorf("%w: unknown format", ErrFormat)}
}

// ExtractZip unpacks the zip archive of size bytes read from r into dir,
// which must exist, as [Extract] does, without copying it first.
func ExtractZip(ctx context.Context, r io.ReaderAt, size int64, dir string, lim Limits) (Result, error) {
	lim, err := lim.withDefaults()
	if err != nil {
		return Result{}, err
	}
	if err := ctx.Err(); err != nil {
		return Result{}, &ExtractError{Reason: err}
	}
	if size < 0 {
		return Result{}, &ExtractError{Reason: fmt.Errorf("%w: zip size unknown", ErrFormat)}
	}
	return extractWith(ctx, dir, lim, func(x *extractor) error { return x.zip(ctx, r, size) })
}

// extractWith runs one format reader over a fresh extractor on dir, then
// creates the links it recorded.
func extractWith(ctx context.Context, dir string, lim Limits, run func(*extractor) error) (Result, error) {
	x, err := newExtractor(dir, lim)
	if err != nil {
		return Result{}, err
	}
	err = run(x)
	if err == nil {
		err = x.finish(ctx)
	}
	if cerr := x.close(); err == nil && cerr != nil {
		err = &ExtractError{Reason: fmt.Errorf("close directory: %w", cerr)}
	}
	return x.res, err
}

// extractSpooledZip copies the zip archive in r to a temporary file and
// extracts it from there.
func extractSpooledZip(ctx context.Context, r io.Reader, size int64, dir string, lim Limits) (Result, error) {
	maxSize := maxZipSize(lim)
	if size > maxSize {
		return Result{}, &ExtractError{Reason: limitError("zip archive is %d bytes, over %d", size, maxSize)}
	}
	f, err := os.CreateTemp("", "drover-archive-*.zip")
	if err != nil {
		return Result{}, &ExtractError{Reason: fmt.Errorf("spool zip: %w", err)}
	}
	defer func() {
		_ = f.Close()
		_ = os.Remove(f.Name())
	}()
	n, err := spool(ctx, f, r, maxSize)
	if err != nil {
		return Result{}, &ExtractError{Reason: err}
	}
	return ExtractZip(ctx, f, n, dir, lim)
}

// maxZipSize is the largest zip archive lim lets Extract copy. An archive
// cannot be much larger than what it may write: headers and extra fields
// take under 1 KiB an entry, and each name appears twice (local and
// central headers).
func maxZipSize(lim Limits) int64 {
	return lim.MaxBytes + int64(lim.MaxFiles)*(1<<10+2*int64(lim.MaxNameLen))
}

// spool copies r to w, failing once more than maxSize bytes arrive.
func spool(ctx context.Context, w io.Writer, r io.Reader, maxSize int64) (int64, error) {
	buf := make([]byte, copyBufferSize)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		m, rerr := r.Read(buf)
		if n += int64(m); n > maxSize {
			return n, limitError("zip archive is over %d bytes", maxSize)
		}
		if _, err := w.Write(buf[:m]); err != nil {
			return n, fmt.Errorf("spool zip: %w", err)
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, readError(rerr)
		}
	}
}

// gzip extracts the tar archive in the gzip stream r.
func (x *extractor) gzip(ctx context.Context, r io.Reader) error {
	// Counting here, below gzip's own 4 KiB read-ahead rather than above
	// Extract's 64 KiB one, keeps the ratio close to the bytes inflated.
	in := &countingReader{r: r}
	zr, err := gzip.NewReader(in)
	if err != nil {
		return &ExtractError{Reason: readError(err)}
	}
	meter := &ratioMeter{in: func() int64 { return in.n }, max: int64(x.lim.MaxRatio)}
	br := bufio.NewReaderSize(meteredReader{r: zr, m: meter}, 64<<10)
	head, err := peek(br)
	if err != nil {
		return &ExtractError{Reason: err}
	}
	if !isTarHeader(head) {
		return &ExtractError{Reason: fmt.Errorf("%w: gzip stream does not hold a tar archive", ErrFormat)}
	}
	return x.tar(ctx, tar.NewReader(br))
}

// peek returns the first block of br without consuming it; shorter at the
// end of the input.
func peek(br *bufio.Reader) ([]byte, error) {
	head, err := br.Peek(512)
	if err != nil && err != io.EOF {
		return nil, readError(err)
	}
	if len(head) == 0 {
		return nil, fmt.Errorf("%w: empty input", ErrFormat)
	}
	return head, nil
}

// isTarHeader reports whether b starts with a tar header block: one with
// the ustar magic (POSIX and GNU), one whose checksum holds (V7, which has
// no magic), or the all-zero block that ends an empty archive.
func isTarHeader(b []byte) bool {
	if len(b) < 512 {
		return false
	}
	b = b[:512]
	if string(b[257:262]) == "ustar" {
		return true
	}
	field := strings.Trim(string(b[148:156]), " \x00")
	if field == "" {
		return bytes.Count(b, []byte{0}) == len(b)
	}
	want, err := strconv.ParseUint(field, 8, 32)
	if err != nil {
		return false
	}
	var sum uint64
	for i, c := range b {
		if i >= 148 && i < 156 {
			c = ' ' // the checksum field counts as spaces
		}
		sum += uint64(c)
	}
	return sum == want
}

// readError classifies a failure to read the archive: the package's own
// reasons and context errors pass; decoders' complaints are ErrFormat.
func readError(err error) error {
	var corrupt flate.CorruptInputError
	switch {
	case errors.Is(err, ErrLimit), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, tar.ErrHeader), errors.Is(err, tar.ErrFieldTooLong),
		errors.Is(err, gzip.ErrHeader), errors.Is(err, gzip.ErrChecksum),
		errors.Is(err, zip.ErrFormat), errors.Is(err, zip.ErrChecksum), errors.Is(err, zip.ErrAlgorithm),
		errors.As(err, &corrupt):
		return fmt.Errorf("%w: %w", ErrFormat, err)
	}
	return fmt.Errorf("read archive: %w", err)
}
