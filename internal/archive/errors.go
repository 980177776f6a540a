package archive

import (
	"errors"
	"fmt"
)

// Reasons an extraction stops. An [*ExtractError] wraps one of them; compare
// with [errors.Is].
var (
	// ErrFormat means the input is not a tar, tar.gz or zip archive, or is
	// corrupt or truncated.
	ErrFormat = errors.New("not a valid tar, tar.gz or zip archive")
	// ErrUnsafePath means an entry name is absolute, has a ".." element, a
	// backslash or a control character, or is empty.
	ErrUnsafePath = errors.New("unsafe entry name")
	// ErrUnsafeLink means a link could lead outside the directory, or an
	// entry would be written through a link.
	ErrUnsafeLink = errors.New("unsafe link")
	// ErrDuplicate means an entry names a path that already exists.
	ErrDuplicate = errors.New("duplicate entry")
	// ErrEntryType means an entry is a device, FIFO, socket, sparse file or
	// of a type the package does not know.
	ErrEntryType = errors.New("entry type not allowed")
	// ErrLimit means the archive exceeds one of its [Limits].
	ErrLimit = errors.New("archive limit exceeded")
)

// maxQuotedEntry is how much of an entry name an error message shows; names
// can be a MiB long.
const maxQuotedEntry = 256

// ExtractError reports which entry stopped an extraction, and why.
type ExtractError struct {
	// Entry is the entry's name as the archive spells it, or "" when the
	// failure concerns the archive as a whole. It is hostile input: print
	// it quoted.
	Entry string
	// Reason wraps one of the Err values of this package, a context error
	// or an I/O error.
	Reason error
}

// Error names the entry, quoted and shortened, then the reason.
func (e *ExtractError) Error() string {
	if e.Entry == "" {
		return "extract archive: " + e.Reason.Error()
	}
	name := e.Entry
	if len(name) > maxQuotedEntry {
		name = name[:maxQuotedEntry] + "..."
	}
	return fmt.Sprintf("extract archive entry %q: %v", name, e.Reason)
}

// Unwrap returns the reason.
func (e *ExtractError) Unwrap() error { return e.Reason }

// limitError builds the reason for exceeding a limit.
func limitError(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrLimit}, args...)...)
}
