package archive

import (
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
)

// Budget for reading a zip archive's central directory. archive/zip holds
// a File for every record it finds there, and reads records until one is
// malformed rather than stopping at the declared count, so the bytes it
// may read are what bounds its memory.
const (
	// zipDirBytesPerEntry is the directory bytes allowed per entry that
	// MaxFiles allows. A record is 46 bytes plus its name, extra fields and
	// comment; real archives average under 200.
	zipDirBytesPerEntry = 512
	// zipTailBytes covers finding the end records (archive/zip reads the
	// last 1 KiB, then the last 65 KiB), the zip64 records and read-ahead.
	zipTailBytes = 2*(66<<10) + 8<<10
)

// zip extracts the zip archive of size bytes in r.
func (x *extractor) zip(ctx context.Context, r io.ReaderAt, size int64) error {
	budget := &budgetReaderAt{r: r, left: zipTailBytes + int64(x.lim.MaxFiles)*zipDirBytesPerEntry}
	zr, err := zip.NewReader(budget, size)
	if budget.spent {
		return &ExtractError{Reason: limitError("zip central directory too large for %d entries", x.lim.MaxFiles)}
	}
	// With GODEBUG=zipinsecurepath=0 the reader flags names it finds
	// unsafe but still returns them; zipEntry judges names itself.
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return &ExtractError{Reason: readError(err)}
	}
	budget.left = -1 // entries read their data through it from here on
	if len(zr.File) > x.lim.MaxFiles {
		return &ExtractError{Reason: limitError("%d entries, over %d", len(zr.File), x.lim.MaxFiles)}
	}

	// A zip declares every size up front, and archive/zip fails an entry
	// that inflates past its declared size, so these checks are exact and
	// refuse a bomb before anything is written. copy and the meter check
	// again as the bytes arrive.
	var declared uint64
	for _, f := range zr.File {
		declared = min(declared+min(f.UncompressedSize64, math.MaxInt64), math.MaxInt64)
	}
	if declared > uint64(x.lim.MaxBytes) {
		return &ExtractError{Reason: limitError("files total %d bytes, over %d", declared, x.lim.MaxBytes)}
	}
	meter := &ratioMeter{in: func() int64 { return size }, max: int64(x.lim.MaxRatio)}
	if declared > ratioGrace && declared/uint64(meter.max) > uint64(size) {
		return &ExtractError{Reason: limitError("compression ratio over %d (%d bytes from %d)", meter.max, declared, size)}
	}

	for _, f := range zr.File {
		if err := ctx.Err(); err != nil {
			return &ExtractError{Reason: err}
		}
		if err := x.zipEntry(ctx, f, meter); err != nil {
			return &ExtractError{Entry: f.Name, Reason: err}
		}
	}
	return nil
}

// zipEntry extracts one entry.
func (x *extractor) zipEntry(ctx context.Context, f *zip.File, meter *ratioMeter) error {
	if err := x.count(); err != nil {
		return err
	}
	name, err := cleanName(f.Name, x.lim)
	if err != nil {
		return err
	}
	// Mode adds ModeDir to any name ending in "/", so special types are
	// ruled out before directories.
	mode := f.Mode()
	switch {
	case mode&(fs.ModeDevice|fs.ModeCharDevice|fs.ModeNamedPipe|fs.ModeSocket|fs.ModeIrregular) != 0:
		return fmt.Errorf("%w: %v", ErrEntryType, mode.Type())
	case mode&fs.ModeSymlink != 0:
		target, err := x.zipLinkTarget(f, meter)
		if err != nil {
			return err
		}
		return x.symlink(f.Name, name, target)
	case mode.IsDir():
		return x.dir(name)
	}
	if f.UncompressedSize64 > uint64(x.lim.MaxFileBytes) {
		return limitError("file is %d bytes, over %d", f.UncompressedSize64, x.lim.MaxFileBytes)
	}
	rc, err := f.Open()
	if err != nil {
		return readError(err)
	}
	defer rc.Close()
	return x.file(ctx, name, mode&0o111 != 0, int64(f.UncompressedSize64), meteredReader{r: rc, m: meter})
}

// zipLinkTarget reads a symbolic link's target, which zip stores as the
// entry's data.
func (x *extractor) zipLinkTarget(f *zip.File, meter *ratioMeter) (string, error) {
	rc, err := f.Open()
	if err != nil {
		return "", readError(err)
	}
	defer rc.Close()
	target, err := io.ReadAll(io.LimitReader(meteredReader{r: rc, m: meter}, int64(x.lim.MaxNameLen)+1))
	if err != nil {
		return "", readError(err)
	}
	if len(target) > x.lim.MaxNameLen {
		return "", limitError("link target is over %d bytes", x.lim.MaxNameLen)
	}
	return string(target), nil
}

// budgetReaderAt fails reads once left bytes have been read, and records
// that it did. A negative left means no budget.
type budgetReaderAt struct {
	r     io.ReaderAt
	left  int64
	spent bool
}

var errBudgetSpent = errors.New("read budget spent")

func (b *budgetReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if b.left >= 0 {
		if int64(len(p)) > b.left {
			b.spent = true
			return 0, errBudgetSpent
		}
		b.left -= int64(len(p))
	}
	return b.r.ReadAt(p, off)
}
