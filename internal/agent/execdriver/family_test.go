package execdriver

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseProcStat(t *testing.T) {
	t.Parallel()
	// Fields after the name: state ppid pgrp session tty tpgid flags minflt
	// cminflt majflt cmajflt utime stime cutime cstime priority nice
	// threads itrealvalue starttime ...
	const rest = " S 10 20 20 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 5000 100"
	tests := []struct {
		name    string
		stat    string
		want    procStat
		wantErr string
	}{
		{name: "plain", stat: "42 (sleep)" + rest, want: procStat{pid: 42, ppid: 10, pgid: 20, startTime: 987654}},
		{name: "name with spaces and parens", stat: "42 (a) b (c d))" + rest, want: procStat{pid: 42, ppid: 10, pgid: 20, startTime: 987654}},
		{name: "no name", stat: "42 sleep S 1 2", wantErr: "no command name"},
		{name: "truncated", stat: "42 (sleep) S 10 20", wantErr: "3 fields"},
		{name: "bad number", stat: "42 (sleep) S x 20 20 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654", wantErr: "invalid syntax"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseProcStat(42, []byte(tt.stat))
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

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
