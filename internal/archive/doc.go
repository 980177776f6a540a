// Package archive unpacks untrusted tar, gzip-compressed tar and zip
// archives into a directory, and nothing else: it is the one extractor drover
// uses for input sandboxes and package sync, so that the rules below hold in
// one place (SECURITY.md S9, S10). [Extract] reads an archive from a
// stream; [ExtractZip] reads a zip archive the caller holds in a file or in
// memory.
//
// The format is found from the first bytes of the input, never from a file
// name: gzip (1f 8b) holding a tar, zip ("PK\x03\x04" or, for an empty
// archive, "PK\x05\x06"), or tar (the "ustar" magic, or a V7 header whose
// checksum holds). Anything else, a gzip stream that does not hold a tar, a
// zip with data before its first header (self-extracting) and other
// compressors fail with [ErrFormat]. Archives inside the archive are files;
// nothing is unpacked recursively.
//
// # Rules
//
// Every entry name is checked before anything is written for it:
//
//   - absolute names, ".." elements (anywhere, even "a/../b", which stays
//     inside but has no honest use), backslashes, NUL and other control
//     characters, and empty names fail with [ErrUnsafePath]. Backslashes are
//     refused rather than read as part of a name because "..\x" is a
//     traversal to any tool on Windows and to human readers everywhere;
//   - names longer than [Limits.MaxNameLen], elements longer than
//     [MaxElementLen] and names deeper than [Limits.MaxDepth] fail with
//     [ErrLimit].
//
// Entry types: regular files, directories, symbolic links and (tar) hard
// links are extracted. Character and block devices, FIFOs, sockets, sparse
// files and unknown tar types fail with [ErrEntryType]; a tar link or
// directory entry that carries data fails with [ErrFormat].
//
// Links never lead out of the directory ([ErrUnsafeLink]):
//
//   - a symbolic link's target must be relative and must resolve inside the
//     directory. It is resolved the way the kernel would, following the other
//     links of the archive (and any link already in the directory), so a
//     chain of links that each look harmless cannot climb out together.
//     Symbolic links are created last, once every other entry is written and
//     all links are known, so no entry is ever written through one; an entry
//     whose parent is a link of the archive is refused;
//   - a hard link must name a regular file that this archive extracted
//     earlier.
//
// Every path is created once ([ErrDuplicate]): a second entry with the name
// of an earlier file, link or directory, or a file whose name is a directory
// the archive created, is refused (CVE-2024-7625: a symlink followed by a
// file of the same name). Repeating a directory entry is allowed. Files are
// opened with O_EXCL, so nothing already in the directory is replaced; tar
// archives appended to with "tar -r", whose later copy is meant to win, are
// refused rather than guessed at.
//
// Modes: directories are created 0755 and files 0644, or 0755 when the
// archive gives the file any execute bit; the process umask applies on top.
// Setuid, setgid and sticky bits, owners and modification times are never
// restored.
//
// Every write goes through an [os.Root] opened on the directory, so the
// kernel keeps each open, mkdir and link beneath the directory even if a
// check above were missed, and a symbolic link already in the directory
// cannot redirect a write outside it.
//
// # Limits
//
// [Limits] bounds the total bytes written, the bytes of one file, the number
// of entries, the name length and depth, and the compression ratio (bytes
// decompressed per byte of archive, for gzip and for zip's deflate). A zip
// archive's central directory is read with a byte budget that grows with
// MaxFiles, so an archive declaring millions of entries is refused before
// they are held in memory. Resolving symbolic links may walk 64 path
// elements per entry MaxFiles allows, and never deeper than MaxDepth.
// Memory does not grow with the data, which is streamed in 32 KiB chunks,
// only with the number of entries, which MaxFiles bounds.
//
// # On error
//
// Extraction stops at the first error, which is an [*ExtractError] naming the
// entry and wrapping the reason ([ErrLimit], [ErrUnsafePath], a context
// error, an I/O error, …). Whatever was written up to then stays in the
// directory, always inside it: the caller removes the directory. The
// package does not create, empty or remove the directory; it should be
// empty and private to the extraction.
package archive
