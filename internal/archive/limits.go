package archive

import (
	"errors"
	"fmt"
)

// Defaults for [Limits].
const (
	// DefaultMaxBytes is the total size of the files one archive may write.
	DefaultMaxBytes = 1 << 30
	// DefaultMaxFiles is how many entries one archive may hold.
	DefaultMaxFiles = 10_000
	// DefaultMaxFileBytes is the size of the largest file one archive may
	// write.
	DefaultMaxFileBytes = 512 << 20
	// DefaultMaxDepth is how many elements an entry name may have.
	DefaultMaxDepth = 32
	// DefaultMaxNameLen is the length in bytes of the longest entry name or
	// link target, Linux's PATH_MAX.
	DefaultMaxNameLen = 4096
	// DefaultMaxRatio is the largest compression ratio accepted. Source,
	// binaries and text compress 3 to 20 times; a gzip stream of zeros
	// compresses about 1,000 times.
	DefaultMaxRatio = 200
)

// MaxElementLen is the length in bytes of the longest element of an entry
// name, Linux's NAME_MAX. It is fixed because the kernel refuses longer
// ones anyway; a smaller [Limits.MaxNameLen] lowers it.
const MaxElementLen = 255

// ratioGrace is how many bytes may be decompressed before MaxRatio is
// enforced. Small archives legitimately compress far better than large
// ones (a tar of a few empty files is mostly zero padding), and a bomb does
// no harm in its first MiB.
const ratioGrace = 1 << 20

// Limits bounds what one extraction may read and write. A zero field means
// its Default; a negative one is an error. Exceeding any limit stops the
// extraction with an error wrapping [ErrLimit].
type Limits struct {
	// MaxBytes caps the bytes written to files, summed over the archive.
	MaxBytes int64
	// MaxFiles caps the number of entries. Files, directories, links and
	// tar's global headers each count one; the parent directories an entry
	// implies do not.
	MaxFiles int
	// MaxFileBytes caps the size of one file. An entry whose header
	// declares more is refused before any byte of it is written.
	MaxFileBytes int64
	// MaxDepth caps the number of elements of an entry name: "a/b/c" has
	// depth 3.
	MaxDepth int
	// MaxNameLen caps the length in bytes of an entry name and of a link
	// target. Each element of a name is also capped at [MaxElementLen].
	MaxNameLen int
	// MaxRatio caps the bytes decompressed per byte of compressed archive
	// read, once the first MiB is out: for tar.gz the whole tar stream
	// against the gzip bytes, for zip every entry's data against the size
	// of the archive. It does not apply to plain tar, which cannot expand.
	MaxRatio int
}

// withDefaults returns l with zero fields set to their defaults, or an error
// naming every negative field.
func (l Limits) withDefaults() (Limits, error) {
	var errs []error
	if l.MaxBytes < 0 {
		errs = append(errs, errors.New("MaxBytes: must not be negative"))
	}
	if l.MaxFiles < 0 {
		errs = append(errs, errors.New("MaxFiles: must not be negative"))
	}
	if l.MaxFileBytes < 0 {
		errs = append(errs, errors.New("MaxFileBytes: must not be negative"))
	}
	if l.MaxDepth < 0 {
		errs = append(errs, errors.New("MaxDepth: must not be negative"))
	}
	if l.MaxNameLen < 0 {
		errs = append(errs, errors.New("MaxNameLen: must not be negative"))
	}
	if l.MaxRatio < 0 {
		errs = append(errs, errors.New("MaxRatio: must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return Limits{}, fmt.Errorf("archive limits: %w", err)
	}
	if l.MaxBytes == 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxFiles == 0 {
		l.MaxFiles = DefaultMaxFiles
	}
	if l.MaxFileBytes == 0 {
		l.MaxFileBytes = DefaultMaxFileBytes
	}
	if l.MaxDepth == 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	if l.MaxNameLen == 0 {
		l.MaxNameLen = DefaultMaxNameLen
	}
	if l.MaxRatio == 0 {
		l.MaxRatio = DefaultMaxRatio
	}
	return l, nil
}

// maxElementLen is the longest name element l allows.
func (l Limits) maxElementLen() int {
	return min(MaxElementLen, l.MaxNameLen)
}
