package archive

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCleanName(t *testing.T) {
	t.Parallel()
	lim, err := Limits{}.withDefaults()
	require.NoError(t, err)
	tests := []struct {
		raw  string
		want string
		err  error
	}{
		{raw: "a", want: "a"},
		{raw: "a/b/c", want: "a/b/c"},
		{raw: "./a//b/./c/", want: "a/b/c"},
		{raw: ".", want: ""},
		{raw: "./", want: ""},
		{raw: "a..b/..c/c..", want: "a..b/..c/c.."},
		{raw: "C:/x", want: "C:/x"}, // a directory named "C:" on Linux
		{raw: "é/日本", want: "é/日本"},
		{raw: "", err: ErrUnsafePath},
		{raw: "/", err: ErrUnsafePath},
		{raw: "/a", err: ErrUnsafePath},
		{raw: "//a", err: ErrUnsafePath},
		{raw: "..", err: ErrUnsafePath},
		{raw: "../a", err: ErrUnsafePath},
		{raw: "a/..", err: ErrUnsafePath},
		{raw: "a/../b", err: ErrUnsafePath},
		{raw: "a/./../b", err: ErrUnsafePath},
		{raw: `..\a`, err: ErrUnsafePath},
		{raw: `a\b`, err: ErrUnsafePath},
		{raw: "a\x00", err: ErrUnsafePath},
		{raw: "a\tb", err: ErrUnsafePath},
		{raw: "a\x7f", err: ErrUnsafePath},
		{raw: strings.Repeat("a", 255), want: strings.Repeat("a", 255)},
		{raw: strings.Repeat("a", 256), err: ErrLimit},
		{raw: strings.Repeat("a/", 32), want: strings.TrimSuffix(strings.Repeat("a/", 32), "/")},
		{raw: strings.Repeat("a/", 33), err: ErrLimit},
		{raw: strings.Repeat("/", 4097), err: ErrLimit},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			t.Parallel()
			got, err := cleanName(tt.raw, lim)
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestCheckTarget(t *testing.T) {
	t.Parallel()
	lim, err := Limits{}.withDefaults()
	require.NoError(t, err)
	tests := []struct {
		name, target string
		err          error
	}{
		{name: "a", target: "b"},
		{name: "a", target: "."},
		{name: "a", target: "./b/../c"},
		{name: "x/y/a", target: "../../b"},
		{name: "x/y/a", target: "../.."},
		{name: "a", target: "no/such/place"},
		{name: "a", target: "..", err: ErrUnsafeLink},
		{name: "a", target: "b/../..", err: ErrUnsafeLink},
		{name: "x/y/a", target: "../../..", err: ErrUnsafeLink},
		{name: "a", target: "/etc", err: ErrUnsafeLink},
		{name: "a", target: "", err: ErrUnsafeLink},
		{name: "a", target: `..\b`, err: ErrUnsafeLink},
		{name: "a", target: "b\x00", err: ErrUnsafeLink},
		{name: "a", target: strings.Repeat("b", 4097), err: ErrLimit},
	}
	for _, tt := range tests {
		t.Run(tt.name+"->"+tt.target, func(t *testing.T) {
			t.Parallel()
			err := checkTarget(tt.name, tt.target, lim)
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
				return
			}
			require.NoError(t, err)
		})
	}
}
