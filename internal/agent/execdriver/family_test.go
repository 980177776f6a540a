package execdriver

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFdinfoFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		info   string
		want   int
		wantOK bool
	}{
		{name: "write end", info: "pos:\t0\nflags:\t02000001\nmnt_id:\t15\nino:\t12345\n", want: 0o2000001, wantOK: true},
		{name: "read end", info: "pos:\t0\nflags:\t02004000\n", want: 0o2004000, wantOK: true},
		{name: "no flags", info: "pos:\t0\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := fdinfoFlags([]byte(tt.info))
			require.Equal(t, tt.wantOK, ok)
			require.Equal(t, tt.want, got)
		})
	}
}
