package procfs

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseStat(t *testing.T) {
	t.Parallel()
	// Fields after the name: state ppid pgrp session tty tpgid flags minflt
	// cminflt majflt cmajflt utime stime cutime cstime priority nice
	// threads itrealvalue starttime ...
	const rest = " S 10 20 30 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 5000 100"
	want := Stat{PID: 42, State: 'S', PPID: 10, PGID: 20, Session: 30, StartTime: 987654}
	tests := []struct {
		name    string
		stat    string
		want    Stat
		wantErr string
	}{
		{name: "plain", stat: "42 (sleep)" + rest, want: want},
		{name: "name with spaces and parens", stat: "42 (a) b (c d))" + rest, want: want},
		{name: "no name", stat: "42 sleep S 1 2", wantErr: "no command name"},
		{name: "truncated", stat: "42 (sleep) S 10 20", wantErr: "3 fields"},
		{name: "bad number", stat: "42 (sleep) S x 20 20 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654", wantErr: "invalid syntax"},
		{name: "bad state", stat: "42 (sleep) SS" + rest[2:], wantErr: "state"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseStat(42, []byte(tt.stat))
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestReadStatSelf(t *testing.T) {
	t.Parallel()
	st, err := ReadStat(os.Getpid())
	require.NoError(t, err)
	require.Equal(t, os.Getppid(), st.PPID)
	require.True(t, st.Live())
	require.NotZero(t, st.StartTime)
	require.False(t, Stat{State: 'Z'}.Live(), "a zombie is not live")
}
