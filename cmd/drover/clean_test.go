package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// cleanWriter cleans task output streamed in chunks of any size the same
// as all at once: a chunk's end never splits a character into two '?'s.
func TestCleanWriter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in, want string
	}{
		{"plain", "hello\tworld\n", "hello\tworld\n"},
		{"escape sequences", "\x1b]0;pwned\x07 \x1b[31mred\x1b[0m\n", "?]0;pwned? ?[31mred?[0m\n"},
		{"carriage return and backspace", "good\rbad\b\n", "good?bad?\n"},
		{"C1 controls", "\u009b31m\u0085x", "?31m?x"},
		{"multi-byte characters", "é → 日本 🙂\n", "é → 日本 🙂\n"},
		{"invalid UTF-8", "a\xffb\xc3", "a\ufffdb\ufffd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for size := 1; size <= len(tc.in); size++ {
				var b strings.Builder
				cw := &cleanWriter{w: &b}
				for i := 0; i < len(tc.in); i += size {
					n, err := cw.Write([]byte(tc.in[i:min(i+size, len(tc.in))]))
					require.NoError(t, err)
					require.Equal(t, min(size, len(tc.in)-i), n)
				}
				require.NoError(t, cw.Flush())
				require.Equal(t, tc.want, b.String(), "in chunks of %d bytes", size)
			}
		})
	}
}
