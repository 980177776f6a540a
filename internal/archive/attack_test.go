package archive

import (
	"archive/tar"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// attack is one hostile archive of SECURITY.md S9: the entries, given the
// absolute path of the directory beside the extraction it aims at, and
// what extraction must answer.
type attack struct {
	name    string
	ents    func(outside string) []ent
	formats []format // nil means all
	want    error
	at      int      // index of the entry the error must name
	absent  []string // paths in the extraction directory that must not exist
}

func attacks() []attack {
	only := func(ents ...ent) func(string) []ent { return func(string) []ent { return ents } }
	deep := strings.Repeat("d/", DefaultMaxDepth) + "x"
	long := strings.Repeat(strings.Repeat("n", 250)+"/", 17) + "x"
	return []attack{
		// Names.
		{name: "absolute name into outside", ents: func(o string) []ent { return []ent{file(o+"/abs", "pwned")} }, want: ErrUnsafePath},
		{name: "absolute name /etc", ents: only(file("/etc/drover-archive-test", "pwned")), want: ErrUnsafePath},
		{name: "dotdot into sibling", ents: only(file("../outside/pwned", "pwned")), want: ErrUnsafePath},
		{name: "dotdot to cron.d", ents: only(file("../../etc/cron.d/x", "pwned")), want: ErrUnsafePath},
		{name: "dotdot after an element", ents: only(file("a/../../outside/pwned", "pwned")), want: ErrUnsafePath},
		{name: "dotdot staying inside", ents: only(file("a/../b", "x")), want: ErrUnsafePath, absent: []string{"a", "b"}},
		{name: "dot slash dotdot", ents: only(file("./../outside/pwned", "pwned")), want: ErrUnsafePath},
		{name: "dotdot after a good entry", ents: only(file("ok", "ok"), file("../outside/pwned", "pwned")), want: ErrUnsafePath, at: 1},
		{name: "backslash dotdot", ents: only(file(`..\outside\pwned`, "pwned")), want: ErrUnsafePath},
		{name: "backslash inside a name", ents: only(file(`a\b`, "x")), want: ErrUnsafePath},
		{name: "NUL in name", ents: only(file("a\x00b", "x")), formats: []format{formatZip}, want: ErrUnsafePath},
		{name: "newline in name", ents: only(file("a\nb", "x")), want: ErrUnsafePath},
		{name: "escape sequence in name", ents: only(file("a\x1b]0;pwn\x07", "x")), want: ErrUnsafePath},
		{name: "empty name", ents: only(file("", "x")), formats: []format{formatTar, formatTarGz}, want: ErrUnsafePath},
		{name: "root as a file", ents: only(file(".", "x")), want: ErrUnsafePath},
		{name: "element too long", ents: only(file(strings.Repeat("a", MaxElementLen+1), "x")), want: ErrLimit},
		{name: "name too long", ents: only(file(long, "x")), want: ErrLimit},
		{name: "too deep", ents: only(file(deep, "x")), want: ErrLimit, absent: []string{"d"}},

		// Symbolic links.
		{name: "symlink absolute then write through", ents: func(o string) []ent { return []ent{symlink("a", o), file("a/pwned", "pwned")} }, want: ErrUnsafeLink, absent: []string{"a"}},
		{name: "symlink to /etc then write passwd", ents: only(symlink("a", "/etc"), file("a/passwd", "pwned")), want: ErrUnsafeLink, absent: []string{"a"}},
		{name: "symlink to parent then write through", ents: only(symlink("a", ".."), file("a/outside/pwned", "pwned")), want: ErrUnsafeLink, absent: []string{"a"}},
		{name: "symlink to sibling then write through", ents: only(symlink("a", "../outside"), file("a/pwned", "pwned")), want: ErrUnsafeLink, absent: []string{"a"}},
		{name: "symlink climbing from a subdirectory", ents: only(symlink("x/y/a", "../../../outside")), want: ErrUnsafeLink, absent: []string{"x/y/a"}},
		{name: "symlink to secret", ents: only(symlink("s", "../outside/secret")), want: ErrUnsafeLink, absent: []string{"s"}},
		{name: "write through a symlink that stays inside", ents: only(dir("sub"), symlink("a", "sub"), file("a/x", "x")), want: ErrUnsafeLink, at: 2, absent: []string{"a", "sub/x"}},
		{name: "write through a symlink to a directory above", ents: only(symlink("x/up", ".."), file("x/up/y", "y")), want: ErrUnsafeLink, at: 1},
		{
			name: "symlink chain climbing out together",
			ents: only(symlink("d1/d2/l", "../../a"), symlink("s", "d1/d2/l/../../..")),
			want: ErrUnsafeLink, at: 1, absent: []string{"s"},
		},
		{
			name: "symlink chain climbing out, outer link first",
			ents: only(symlink("s", "d1/d2/l/../../.."), symlink("d1/d2/l", "../../a")),
			want: ErrUnsafeLink, at: 0, absent: []string{"s"},
		},
		{name: "symlink loop", ents: only(symlink("a", "b"), symlink("b", "a")), want: ErrUnsafeLink, absent: []string{"a"}},
		{name: "symlink with empty target", ents: only(symlink("a", "")), formats: []format{formatTar, formatTarGz}, want: ErrUnsafeLink},
		{name: "symlink target with backslash", ents: only(symlink("a", `..\outside`)), want: ErrUnsafeLink},

		// The same name twice (CVE-2024-7625, CVE-2024-6717).
		{name: "symlink outside then file of the same name", ents: only(symlink("a", "../outside/secret"), file("a", "pwned")), want: ErrUnsafeLink, absent: []string{"a"}},
		{name: "symlink then file of the same name", ents: only(symlink("a", "b"), file("a", "pwned")), want: ErrDuplicate, at: 1, absent: []string{"a"}},
		{name: "file then symlink of the same name", ents: only(file("a", "x"), symlink("a", "b")), want: ErrDuplicate, at: 1},
		{name: "file twice", ents: only(file("a", "x"), file("a", "y")), want: ErrDuplicate, at: 1},
		{name: "file twice under other spellings", ents: only(file("a/b", "x"), file("./a//b", "y")), want: ErrDuplicate, at: 1},
		{name: "directory then file", ents: only(dir("a"), file("a", "x")), want: ErrDuplicate, at: 1},
		{name: "file then directory", ents: only(file("a", "x"), dir("a")), want: ErrDuplicate, at: 1},
		{name: "file under a file", ents: only(file("a", "x"), file("a/b", "y")), want: ErrDuplicate, at: 1},
		{name: "file over an implied directory", ents: only(file("a/b", "x"), file("a", "y")), want: ErrDuplicate, at: 1},
		{name: "symlink over an implied directory", ents: only(file("a/b", "x"), symlink("a", "../outside")), want: ErrUnsafeLink, at: 1},
		{name: "symlink over an implied directory, inside", ents: only(file("a/b", "x"), symlink("a", "c")), want: ErrDuplicate, at: 1},

		// Hard links.
		{name: "hardlink to an absolute path", ents: func(o string) []ent { return []ent{hardlink("h", o+"/secret")} }, formats: []format{formatTar, formatTarGz}, want: ErrUnsafeLink, absent: []string{"h"}},
		{name: "hardlink to /etc/shadow", ents: only(hardlink("h", "/etc/shadow")), formats: []format{formatTar, formatTarGz}, want: ErrUnsafeLink, absent: []string{"h"}},
		{name: "hardlink through dotdot", ents: only(hardlink("h", "../outside/secret")), formats: []format{formatTar, formatTarGz}, want: ErrUnsafeLink, absent: []string{"h"}},
		{name: "hardlink to a file not yet extracted", ents: only(hardlink("h", "later"), file("later", "x")), formats: []format{formatTar, formatTarGz}, want: ErrUnsafeLink, absent: []string{"h", "later"}},
		{name: "hardlink to a symlink", ents: only(file("f", "x"), symlink("l", "f"), hardlink("h", "l")), formats: []format{formatTar, formatTarGz}, want: ErrUnsafeLink, at: 2, absent: []string{"h"}},
		{name: "hardlink to a directory", ents: only(dir("d"), hardlink("h", "d")), formats: []format{formatTar, formatTarGz}, want: ErrUnsafeLink, at: 1, absent: []string{"h"}},
		{name: "file over a hardlink", ents: only(file("f", "x"), hardlink("h", "f"), file("h", "pwned")), formats: []format{formatTar, formatTarGz}, want: ErrDuplicate, at: 2},

		// Special files.
		{name: "character device", ents: only(ent{name: "null", typ: tar.TypeChar}), want: ErrEntryType, absent: []string{"null"}},
		{name: "block device", ents: only(ent{name: "sda", typ: tar.TypeBlock}), want: ErrEntryType, absent: []string{"sda"}},
		{name: "FIFO", ents: only(ent{name: "fifo", typ: tar.TypeFifo}), want: ErrEntryType, absent: []string{"fifo"}},
		{name: "socket", ents: only(ent{name: "sock", typ: typeSocket}), formats: []format{formatZip}, want: ErrEntryType, absent: []string{"sock"}},
		{name: "character device named as a directory", ents: only(ent{name: "null/", typ: tar.TypeChar}), formats: []format{formatZip}, want: ErrEntryType, absent: []string{"null"}},
	}
}

func TestExtractRefusesAttacks(t *testing.T) {
	t.Parallel()
	for _, tt := range attacks() {
		formats := tt.formats
		if formats == nil {
			formats = allFormats
		}
		for _, f := range formats {
			t.Run(tt.name+"/"+string(f), func(t *testing.T) {
				t.Parallel()
				s := newSandbox(t)
				ents := tt.ents(s.outside)

				_, err := s.extract(t, build(t, f, ents...), Limits{})

				require.ErrorIs(t, err, tt.want)
				var ee *ExtractError
				require.ErrorAs(t, err, &ee)
				require.Equal(t, strings.TrimSuffix(ents[tt.at].name, "/"), strings.TrimSuffix(ee.Entry, "/"))
				s.requireContained(t)
				for _, p := range tt.absent {
					_, err := os.Lstat(filepath.Join(s.dir, p))
					require.ErrorIs(t, err, os.ErrNotExist, "%s was created", p)
				}
			})
		}
	}
}

// TestExtractRefusesWritingThroughExistingLink checks the kernel-level
// layer alone: a link already in the directory, which no check of the
// archive knows about, cannot carry a write outside, because every write
// goes through os.Root.
func TestExtractRefusesWritingThroughExistingLink(t *testing.T) {
	t.Parallel()
	for _, target := range []string{"../outside", "..", "/"} {
		for _, f := range allFormats {
			t.Run(target+"/"+string(f), func(t *testing.T) {
				t.Parallel()
				s := newSandbox(t)
				require.NoError(t, os.Symlink(target, filepath.Join(s.dir, "pre")))
				s.before = snapshot(t, s.base, s.dir)

				_, err := s.extract(t, build(t, f, file("pre/pwned", "pwned"), file("pre/outside/pwned", "pwned")), Limits{})

				require.Error(t, err)
				require.Equal(t, s.before, snapshot(t, s.base, s.dir))
			})
		}
	}
}

// TestExtractRefusesLinkThroughExistingLink checks that resolution follows
// links already in the directory too.
func TestExtractRefusesLinkThroughExistingLink(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	require.NoError(t, os.MkdirAll(filepath.Join(s.dir, "a/b"), 0o755))
	require.NoError(t, os.Symlink("../..", filepath.Join(s.dir, "a/b/up")))

	_, err := s.extract(t, tarOf(t, symlink("s", "a/b/up/..")), Limits{})

	require.ErrorIs(t, err, ErrUnsafeLink)
	_, err = os.Lstat(filepath.Join(s.dir, "s"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

// TestExtractNeverReplacesExistingFiles checks O_EXCL: a file already in
// the directory is neither overwritten nor followed.
func TestExtractNeverReplacesExistingFiles(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	require.NoError(t, os.WriteFile(filepath.Join(s.dir, "f"), []byte("mine"), 0o644))
	require.NoError(t, os.Symlink("../outside/secret", filepath.Join(s.dir, "l")))

	for _, name := range []string{"f", "l"} {
		_, err := s.extract(t, tarOf(t, file(name, "pwned")), Limits{})
		require.ErrorIs(t, err, ErrDuplicate)
	}

	b, err := os.ReadFile(filepath.Join(s.dir, "f"))
	require.NoError(t, err)
	require.Equal(t, "mine", string(b))
	require.Equal(t, s.before, snapshot(t, s.base, s.dir))
}

// TestExtractRefusesSparseFiles builds sparse entries by hand, since
// archive/tar writes none: a few bytes could claim a file of any size.
func TestExtractRefusesSparseFiles(t *testing.T) {
	t.Parallel()
	pax := paxRecord("GNU.sparse.major", "1") + paxRecord("GNU.sparse.minor", "0") +
		paxRecord("GNU.sparse.name", "big") + paxRecord("GNU.sparse.realsize", "1099511627776")
	sparseMap := padBlock([]byte("1\n1099511627775\n1\n"))
	var paxSparse []byte
	paxSparse = append(paxSparse, rawHeader("PaxHeaders/big", tar.TypeXHeader, int64(len(pax)), "ustar\x0000")...)
	paxSparse = append(paxSparse, padBlock([]byte(pax))...)
	paxSparse = append(paxSparse, rawHeader("big", tar.TypeReg, int64(len(sparseMap))+1, "ustar\x0000")...)
	paxSparse = append(paxSparse, sparseMap...)
	paxSparse = append(paxSparse, padBlock([]byte{1})...)
	paxSparse = append(paxSparse, make([]byte, 1024)...)

	var gnuSparse []byte
	gnuSparse = append(gnuSparse, rawHeader("big", tar.TypeGNUSparse, 0, "ustar  \x00")...)
	gnuSparse = append(gnuSparse, make([]byte, 1024)...)

	for name, data := range map[string][]byte{"pax": paxSparse, "gnu": gnuSparse, "pax gzip": gzipOf(t, paxSparse)} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := newSandbox(t)

			res, err := s.extract(t, data, Limits{})

			require.ErrorIs(t, err, ErrEntryType)
			require.Zero(t, res.Bytes)
			s.requireContained(t)
		})
	}
}

// TestExtractRefusesDataOnLinks checks that a link or directory entry
// carrying data is refused rather than skipped unseen, which a bomb could
// use to make the reader discard endless bytes.
func TestExtractRefusesDataOnLinks(t *testing.T) {
	t.Parallel()
	var data []byte
	data = append(data, rawHeader("d/", tar.TypeDir, 512, "ustar\x0000")...)
	data = append(data, make([]byte, 512+1024)...)
	s := newSandbox(t)

	_, err := s.extract(t, data, Limits{})

	require.ErrorIs(t, err, ErrFormat)
}
