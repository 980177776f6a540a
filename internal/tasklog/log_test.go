package tasklog

import (
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// pattern returns the n bytes of a test stream starting at off. Each byte
// depends on its offset (251 is prime, so segment sizes never line up with
// it), which lets a test check that a byte sits at its true offset.
func pattern(off, n int64) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte((off + int64(i)) % 251)
	}
	return p
}

// setup opens a log of stream "stdout" in a fresh directory and closes it
// at the end of the test.
func setup(t *testing.T, cfg Config) (*Log, string) {
	t.Helper()
	dir := t.TempDir()
	l, err := Open(dir, "stdout", cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, l.Close()) })
	return l, dir
}

// diskUse returns the number of segment files of stream in dir, their total
// size and the largest one.
func diskUse(t *testing.T, dir, stream string) (files int, total, largest int64) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		if _, ok := parseSegmentName(stream, e.Name()); !ok {
			continue
		}
		fi, err := e.Info()
		require.NoError(t, err)
		files++
		total += fi.Size()
		largest = max(largest, fi.Size())
	}
	return files, total, largest
}

// readAll reads everything kept from off on with one ReadAt per call until
// EOF and returns the chunks by their start offsets.
func readAll(t *testing.T, l *Log, off int64, bufSize int) map[int64][]byte {
	t.Helper()
	got := map[int64][]byte{}
	buf := make([]byte, bufSize)
	for {
		n, start, err := l.ReadAt(off, buf)
		if errors.Is(err, io.EOF) {
			require.Zero(t, n)
			return got
		}
		require.NoError(t, err)
		require.GreaterOrEqual(t, start, off)
		require.Positive(t, n)
		got[start] = append([]byte(nil), buf[:n]...)
		off = start + int64(n)
	}
}

func TestWriteRotatesAndCapsDisk(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     Config
		maxSize int // largest single write
		total   int64
	}{
		{name: "small writes", cfg: Config{MaxSegmentBytes: 100, MaxSegments: 3}, maxSize: 40, total: 5000},
		{name: "writes larger than a segment", cfg: Config{MaxSegmentBytes: 100, MaxSegments: 3}, maxSize: 250, total: 5000},
		{name: "writes larger than the cap", cfg: Config{MaxSegmentBytes: 64, MaxSegments: 2}, maxSize: 1000, total: 20000},
		{name: "one segment", cfg: Config{MaxSegmentBytes: 10, MaxSegments: 1}, maxSize: 7, total: 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l, dir := setup(t, tt.cfg)
			rng := rand.New(rand.NewPCG(1, 2))
			capBytes := tt.cfg.MaxSegmentBytes * int64(tt.cfg.MaxSegments)

			var off int64
			for off < tt.total {
				n := min(int64(1+rng.IntN(tt.maxSize)), tt.total-off)
				w, err := l.Write(pattern(off, n))
				require.NoError(t, err)
				require.EqualValues(t, n, w)
				off += n

				files, used, largest := diskUse(t, dir, "stdout")
				require.LessOrEqual(t, files, tt.cfg.MaxSegments)
				require.LessOrEqual(t, used, capBytes)
				require.LessOrEqual(t, largest, tt.cfg.MaxSegmentBytes)
				require.Equal(t, off, l.End())
			}

			// Segments are full except the last, so exactly the newest
			// bytes up to the cap are kept.
			require.Equal(t, tt.total, l.End())
			require.Greater(t, l.Start(), int64(0))
			require.LessOrEqual(t, l.End()-l.Start(), capBytes)
			got := readAll(t, l, 0, 33)
			var pos int64 = -1
			for start, b := range got {
				require.Equal(t, pattern(start, int64(len(b))), b, "bytes at %d", start)
				if pos < 0 || start < pos {
					pos = start
				}
			}
			require.Equal(t, l.Start(), pos)
		})
	}
}

func TestReadAt(t *testing.T) {
	t.Parallel()
	// Segments of 100 bytes, 3 kept: after 1050 bytes the log keeps
	// [800, 1050) in segments starting at 800, 900 and 1000.
	tests := []struct {
		name      string
		off       int64
		bufSize   int
		wantN     int
		wantStart int64
		wantErr   error
	}{
		{name: "inside one segment", off: 810, bufSize: 20, wantN: 20, wantStart: 810},
		{name: "across segments", off: 850, bufSize: 180, wantN: 180, wantStart: 850},
		{name: "across all segments to the end", off: 800, bufSize: 1000, wantN: 250, wantStart: 800},
		{name: "rotated away", off: 10, bufSize: 50, wantN: 50, wantStart: 800},
		{name: "last byte", off: 1049, bufSize: 10, wantN: 1, wantStart: 1049},
		{name: "at the end", off: 1050, bufSize: 10, wantStart: 1050, wantErr: io.EOF},
		{name: "past the end", off: 5000, bufSize: 10, wantStart: 5000, wantErr: io.EOF},
		{name: "empty buffer", off: 900, bufSize: 0, wantStart: 900},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l, _ := setup(t, Config{MaxSegmentBytes: 100, MaxSegments: 3})
			_, err := l.Write(pattern(0, 1050))
			require.NoError(t, err)
			require.EqualValues(t, 800, l.Start())

			buf := make([]byte, tt.bufSize)
			n, start, err := l.ReadAt(tt.off, buf)
			require.ErrorIs(t, err, tt.wantErr)
			require.Equal(t, tt.wantN, n)
			require.Equal(t, tt.wantStart, start)
			require.Equal(t, pattern(start, int64(n)), buf[:n])
		})
	}

	t.Run("negative offset", func(t *testing.T) {
		t.Parallel()
		l, _ := setup(t, Config{})
		_, _, err := l.ReadAt(-1, make([]byte, 1))
		require.ErrorContains(t, err, "negative offset")
	})
}

func TestAppend(t *testing.T) {
	t.Parallel()
	type chunk struct {
		off int64
		n   int64
	}
	tests := []struct {
		name   string
		chunks []chunk
		// want lists the kept ranges, as ReadAt returns them from 0.
		want    []chunk
		wantEnd int64
	}{
		{
			name:    "contiguous",
			chunks:  []chunk{{0, 30}, {30, 30}, {60, 10}},
			want:    []chunk{{0, 70}},
			wantEnd: 70,
		},
		{
			name:    "same chunk twice",
			chunks:  []chunk{{0, 30}, {0, 30}, {30, 30}, {30, 30}},
			want:    []chunk{{0, 60}},
			wantEnd: 60,
		},
		{
			name:    "overlap skips the known part",
			chunks:  []chunk{{0, 30}, {20, 30}, {10, 45}},
			want:    []chunk{{0, 55}},
			wantEnd: 55,
		},
		{
			name:    "old chunk after newer ones",
			chunks:  []chunk{{0, 50}, {10, 10}},
			want:    []chunk{{0, 50}},
			wantEnd: 50,
		},
		{
			name:    "gap starts a segment at its offset",
			chunks:  []chunk{{0, 30}, {500, 20}, {520, 5}},
			want:    []chunk{{0, 30}, {500, 25}},
			wantEnd: 525,
		},
		{
			name:    "first chunk after a gap",
			chunks:  []chunk{{1000, 10}},
			want:    []chunk{{1000, 10}},
			wantEnd: 1010,
		},
		{
			name:    "gaps beyond the cap rotate the oldest away",
			chunks:  []chunk{{0, 10}, {100, 10}, {200, 10}, {300, 10}},
			want:    []chunk{{100, 10}, {200, 10}, {300, 10}},
			wantEnd: 310,
		},
		{
			name:    "empty chunk past the end changes nothing",
			chunks:  []chunk{{0, 10}, {50, 0}},
			want:    []chunk{{0, 10}},
			wantEnd: 10,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l, dir := setup(t, Config{MaxSegmentBytes: 1000, MaxSegments: 3})
			for _, c := range tt.chunks {
				require.NoError(t, l.Append(c.off, pattern(c.off, c.n)))
			}
			require.Equal(t, tt.wantEnd, l.End())
			got := readAll(t, l, 0, 1<<10)
			want := map[int64][]byte{}
			for _, c := range tt.want {
				want[c.off] = pattern(c.off, c.n)
			}
			require.Equal(t, want, got)
			files, _, _ := diskUse(t, dir, "stdout")
			require.Equal(t, len(tt.want), files)
		})
	}

	t.Run("chunks larger than a segment", func(t *testing.T) {
		t.Parallel()
		l, _ := setup(t, Config{MaxSegmentBytes: 16, MaxSegments: 100})
		require.NoError(t, l.Append(0, pattern(0, 100)))
		require.NoError(t, l.Append(50, pattern(50, 100)))
		require.NoError(t, l.Append(300, pattern(300, 40)))
		got := readAll(t, l, 0, 1<<10)
		require.Equal(t, map[int64][]byte{0: pattern(0, 150), 300: pattern(300, 40)}, got)
	})

	t.Run("negative offset", func(t *testing.T) {
		t.Parallel()
		l, _ := setup(t, Config{})
		require.ErrorContains(t, l.Append(-1, []byte("x")), "negative offset")
	})
}

func TestReopenContinues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
		// reopenCfg is the config of the second Open.
		reopenCfg Config
		wantStart int64
	}{
		{name: "same config", cfg: Config{MaxSegmentBytes: 100, MaxSegments: 3}, reopenCfg: Config{MaxSegmentBytes: 100, MaxSegments: 3}, wantStart: 300},
		{name: "fewer segments", cfg: Config{MaxSegmentBytes: 100, MaxSegments: 3}, reopenCfg: Config{MaxSegmentBytes: 100, MaxSegments: 1}, wantStart: 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			l, err := Open(dir, "stderr", tt.cfg)
			require.NoError(t, err)
			_, err = l.Write(pattern(0, 450))
			require.NoError(t, err)
			require.NoError(t, l.Close())

			l, err = Open(dir, "stderr", tt.reopenCfg)
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, l.Close()) })
			require.EqualValues(t, 450, l.End())
			_, err = l.Write(pattern(450, 100))
			require.NoError(t, err)
			require.EqualValues(t, 550, l.End())
			require.Equal(t, tt.wantStart, l.Start())
			require.Equal(t, map[int64][]byte{tt.wantStart: pattern(tt.wantStart, 550-tt.wantStart)}, readAll(t, l, 0, 1<<10))
		})
	}

	t.Run("other streams and files are left alone", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		other := filepath.Join(dir, "stdout.x.log")
		require.NoError(t, os.WriteFile(other, []byte("not a segment"), 0o600))
		out, err := Open(dir, "stdout", Config{})
		require.NoError(t, err)
		errLog, err := Open(dir, "stderr", Config{})
		require.NoError(t, err)
		_, err = out.Write([]byte("out"))
		require.NoError(t, err)
		_, err = errLog.Write([]byte("err!"))
		require.NoError(t, err)
		require.NoError(t, out.Close())
		require.NoError(t, errLog.Close())

		out, err = Open(dir, "stdout", Config{})
		require.NoError(t, err)
		defer func() { require.NoError(t, out.Close()) }()
		require.EqualValues(t, 3, out.End())
		require.FileExists(t, other)
	})
}

func TestFollowWhileWriting(t *testing.T) {
	t.Parallel()
	const total = 200_000
	l, _ := setup(t, Config{MaxSegmentBytes: 4096, MaxSegments: 4})

	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			buf := make([]byte, 1000)
			var off int64
			for off < total {
				changed := l.Changed()
				n, start, err := l.ReadAt(off, buf)
				if errors.Is(err, io.EOF) {
					<-changed
					continue
				}
				if !assertNoError(t, err) {
					return
				}
				// A slow reader may be overtaken by rotation; what it
				// gets must still be the bytes of their offsets.
				if string(buf[:n]) != string(pattern(start, int64(n))) {
					t.Errorf("bytes at %d differ from what was written", start)
					return
				}
				off = start + int64(n)
			}
		})
	}

	rng := rand.New(rand.NewPCG(3, 4))
	var off int64
	for off < total {
		n := min(int64(1+rng.IntN(3000)), total-off)
		_, err := l.Write(pattern(off, n))
		require.NoError(t, err)
		off += n
	}
	wg.Wait()
}

// assertNoError reports err from a goroutine other than the test's, where
// require must not be used.
func assertNoError(t *testing.T, err error) bool {
	if err != nil {
		t.Errorf("unexpected error: %v", err)
		return false
	}
	return true
}

func TestChanged(t *testing.T) {
	t.Parallel()
	isClosed := func(c <-chan struct{}) bool {
		select {
		case <-c:
			return true
		default:
			return false
		}
	}

	t.Run("write", func(t *testing.T) {
		t.Parallel()
		l, _ := setup(t, Config{})
		c := l.Changed()
		require.False(t, isClosed(c))
		_, err := l.Write(nil)
		require.NoError(t, err)
		require.False(t, isClosed(c), "an empty write changes nothing")
		_, err = l.Write([]byte("x"))
		require.NoError(t, err)
		require.True(t, isClosed(c))
		require.False(t, isClosed(l.Changed()), "a fresh channel waits for the next write")
	})

	t.Run("append", func(t *testing.T) {
		t.Parallel()
		l, _ := setup(t, Config{})
		require.NoError(t, l.Append(0, []byte("abc")))
		c := l.Changed()
		require.NoError(t, l.Append(0, []byte("abc")))
		require.False(t, isClosed(c), "a duplicate chunk changes nothing")
		require.NoError(t, l.Append(2, []byte("cd")))
		require.True(t, isClosed(c))
	})

	t.Run("close", func(t *testing.T) {
		t.Parallel()
		l, err := Open(t.TempDir(), "stdout", Config{})
		require.NoError(t, err)
		c := l.Changed()
		require.NoError(t, l.Close())
		require.True(t, isClosed(c))
		require.True(t, isClosed(l.Changed()))
	})

	t.Run("wakes a waiting reader", func(t *testing.T) {
		t.Parallel()
		l, _ := setup(t, Config{})
		c := l.Changed()
		got := make(chan []byte)
		go func() {
			<-c
			buf := make([]byte, 10)
			n, _, _ := l.ReadAt(0, buf)
			got <- buf[:n]
		}()
		_, err := l.Write([]byte("hello"))
		require.NoError(t, err)
		require.Equal(t, []byte("hello"), <-got)
	})
}

func TestClosed(t *testing.T) {
	t.Parallel()
	l, err := Open(t.TempDir(), "stdout", Config{})
	require.NoError(t, err)
	require.NoError(t, l.Close())
	require.NoError(t, l.Close(), "Close is idempotent")
	_, err = l.Write([]byte("x"))
	require.ErrorIs(t, err, ErrClosed)
	require.ErrorIs(t, l.Append(0, []byte("x")), ErrClosed)
	_, _, err = l.ReadAt(0, make([]byte, 1))
	require.ErrorIs(t, err, ErrClosed)
}

func TestOpenRejectsBadInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		stream  string
		cfg     Config
		wantErr []string
	}{
		{name: "empty stream", stream: "", wantErr: []string{"stream: must not be empty"}},
		{name: "stream with a dot", stream: "std.out", wantErr: []string{`stream "std.out"`}},
		{name: "stream with a slash", stream: "../x", wantErr: []string{`stream "../x"`}},
		{
			name: "negative caps", stream: "stdout", cfg: Config{MaxSegmentBytes: -1, MaxSegments: -2},
			wantErr: []string{"MaxSegmentBytes: must be positive", "MaxSegments: must be positive"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Open(t.TempDir(), tt.stream, tt.cfg)
			require.Error(t, err)
			for _, want := range tt.wantErr {
				require.ErrorContains(t, err, want)
			}
		})
	}

	t.Run("overlapping segments", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "stdout.00000000000000000000.log"), make([]byte, 10), 0o600))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "stdout.00000000000000000005.log"), make([]byte, 10), 0o600))
		_, err := Open(dir, "stdout", Config{})
		require.ErrorContains(t, err, "overlap")
	})
}

func TestSegmentNames(t *testing.T) {
	t.Parallel()
	l, dir := setup(t, Config{MaxSegmentBytes: 10, MaxSegments: 5})
	require.NoError(t, l.Append(0, pattern(0, 15)))
	require.NoError(t, l.Append(123456789, pattern(123456789, 1)))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	require.Equal(t, []string{
		"stdout.00000000000000000000.log",
		"stdout.00000000000000000010.log",
		"stdout.00000000000123456789.log",
	}, names)
}
