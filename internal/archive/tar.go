package archive

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
)

// tar extracts the entries of tr in order.
func (x *extractor) tar(ctx context.Context, tr *tar.Reader) error {
	for {
		if err := ctx.Err(); err != nil {
			return &ExtractError{Reason: err}
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		// With GODEBUG=tarinsecurepath=0 the reader flags names it finds
		// unsafe but still returns them; tarEntry judges names itself.
		if err != nil && !errors.Is(err, tar.ErrInsecurePath) {
			return &ExtractError{Reason: readError(err)}
		}
		if err := x.tarEntry(ctx, tr, hdr); err != nil {
			return &ExtractError{Entry: hdr.Name, Reason: err}
		}
	}
}

// tarEntry extracts one entry, whose data tr reads.
func (x *extractor) tarEntry(ctx context.Context, tr *tar.Reader, hdr *tar.Header) error {
	if err := x.count(); err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil // PAX defaults for later entries; the reader applies none, nor do we
	}
	name, err := cleanName(hdr.Name, x.lim)
	if err != nil {
		return err
	}
	// The reader expands sparse files into their holes: a few bytes of
	// archive could claim a file of any size. Nothing we unpack needs them.
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return fmt.Errorf("%w: sparse file", ErrEntryType)
		}
	}
	if hdr.Typeflag != tar.TypeReg && hdr.Size != 0 {
		// The reader would skip the data unseen, however large.
		return fmt.Errorf("%w: entry of type %q carries %d bytes of data", ErrFormat, hdr.Typeflag, hdr.Size)
	}
	switch hdr.Typeflag {
	case tar.TypeReg:
		return x.file(ctx, name, hdr.Mode&0o111 != 0, hdr.Size, tr)
	case tar.TypeDir:
		return x.dir(name)
	case tar.TypeSymlink:
		return x.symlink(hdr.Name, name, hdr.Linkname)
	case tar.TypeLink:
		return x.hardlink(name, hdr.Linkname)
	case tar.TypeChar:
		return fmt.Errorf("%w: character device", ErrEntryType)
	case tar.TypeBlock:
		return fmt.Errorf("%w: block device", ErrEntryType)
	case tar.TypeFifo:
		return fmt.Errorf("%w: FIFO", ErrEntryType)
	case tar.TypeGNUSparse:
		return fmt.Errorf("%w: sparse file", ErrEntryType)
	}
	return fmt.Errorf("%w: tar type %q", ErrEntryType, hdr.Typeflag)
}
