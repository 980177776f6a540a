package cron_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/cron"
)

func TestDue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		expr, zone  string
		after       string
		until       string
		max         int
		cap         int // when set, Due with this cap instead of DueCap
		want        []string
		wantTotal   int
		wantCapped  bool
		wantLenOnly int // when set, check only the count and the ends of times
	}{
		{
			name:  "after is excluded, until included",
			expr:  "0 * * * *",
			after: "2026-01-01T00:00:00Z", until: "2026-01-01T03:00:00Z",
			want:      []string{"2026-01-01T01:00:00Z", "2026-01-01T02:00:00Z", "2026-01-01T03:00:00Z"},
			wantTotal: 3,
		},
		{
			name:  "max keeps the newest",
			expr:  "0 * * * *",
			after: "2026-01-01T00:00:00Z", until: "2026-01-01T05:30:00Z", max: 2,
			want:      []string{"2026-01-01T04:00:00Z", "2026-01-01T05:00:00Z"},
			wantTotal: 5,
		},
		{
			name:  "max larger than the count",
			expr:  "0 * * * *",
			after: "2026-01-01T00:00:00Z", until: "2026-01-01T02:00:00Z", max: 10,
			want:      []string{"2026-01-01T01:00:00Z", "2026-01-01T02:00:00Z"},
			wantTotal: 2,
		},
		{
			name:  "nothing due",
			expr:  "0 2 * * *",
			after: "2026-01-01T03:00:00Z", until: "2026-01-02T01:59:59Z",
			want: nil,
		},
		{
			name:  "empty interval",
			expr:  "* * * * *",
			after: "2026-01-01T03:00:00Z", until: "2026-01-01T03:00:00Z",
			want: nil,
		},
		{
			name:  "until before after",
			expr:  "* * * * *",
			after: "2026-01-02T00:00:00Z", until: "2026-01-01T00:00:00Z",
			want: nil,
		},
		{
			name: "through a fall back, the repeated hour once",
			expr: "30 * * * *", zone: "Europe/Amsterdam",
			after: "2026-10-24T22:00:00Z", until: "2026-10-25T04:00:00Z",
			want:      []string{"2026-10-24T22:30:00Z", "2026-10-24T23:30:00Z", "2026-10-25T00:30:00Z", "2026-10-25T02:30:00Z", "2026-10-25T03:30:00Z"},
			wantTotal: 5,
		},
		{
			name: "through a spring forward, the gap once",
			expr: "*/20 * * * *", zone: "Europe/Amsterdam",
			after: "2026-03-29T00:30:00Z", until: "2026-03-29T01:30:00Z",
			// 01:40 CET, the gap (02:00, 02:20, 02:40) and 03:00 CEST as one, 03:20 CEST
			want:      []string{"2026-03-29T00:40:00Z", "2026-03-29T01:00:00Z", "2026-03-29T01:20:00Z"},
			wantTotal: 3,
		},
		{
			name:  "capped every second, newest still right",
			expr:  "@every 1s",
			after: "2026-01-01T00:00:00Z", until: "2026-03-01T00:00:00Z", max: 3,
			want:      []string{"2026-02-28T23:59:58Z", "2026-02-28T23:59:59Z", "2026-03-01T00:00:00Z"},
			wantTotal: cron.DueCap, wantCapped: true,
		},
		{
			name: "capped every minute in a DST zone, newest still right",
			expr: "* * * * *", zone: "Europe/Amsterdam",
			after: "2026-10-24T00:00:00Z", until: "2026-10-25T01:01:00Z", max: 3, cap: 1000,
			// until is 02:01 CET, a repeat; the newest fire is 02:59 CEST
			want:      []string{"2026-10-25T00:57:00Z", "2026-10-25T00:58:00Z", "2026-10-25T00:59:00Z"},
			wantTotal: 1000, wantCapped: true,
		},
		{
			name:  "capped with max 0 returns the newest cap of them",
			expr:  "@every 1s",
			after: "2026-01-01T00:00:00Z", until: "2027-01-01T00:00:00Z", cap: 1000,
			want:      []string{"2026-12-31T23:43:21Z", "2027-01-01T00:00:00Z"},
			wantTotal: 1000, wantCapped: true, wantLenOnly: 1000,
		},
		{
			name:  "not capped at exactly the cap",
			expr:  "@every 1s",
			after: "2026-01-01T00:00:00Z", until: "2026-01-01T00:00:05Z", max: 2, cap: 5,
			want:      []string{"2026-01-01T00:00:04Z", "2026-01-01T00:00:05Z"},
			wantTotal: 5,
		},
		{
			name:  "capped one past the cap",
			expr:  "@every 1s",
			after: "2026-01-01T00:00:00Z", until: "2026-01-01T00:00:06Z", max: 2, cap: 5,
			want:      []string{"2026-01-01T00:00:05Z", "2026-01-01T00:00:06Z"},
			wantTotal: 5, wantCapped: true,
		},
		{
			name:  "capped with max above the cap",
			expr:  "@every 1m",
			after: "2026-01-01T00:00:00Z", until: "2026-01-01T01:00:00Z", max: 100, cap: 3,
			want:      []string{"2026-01-01T00:58:00Z", "2026-01-01T00:59:00Z", "2026-01-01T01:00:00Z"},
			wantTotal: 3, wantCapped: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := cron.Parse(tt.expr, tt.zone)
			require.NoError(t, err)
			after, until := mustTime(t, tt.after), mustTime(t, tt.until)
			due := s.Due
			if tt.cap > 0 {
				due = func(after, until time.Time, max int) ([]time.Time, int, bool) {
					return s.DueWithCap(after, until, max, tt.cap)
				}
			}
			times, total, capped := due(after, until, tt.max)
			require.Equal(t, tt.wantTotal, total, "total")
			require.Equal(t, tt.wantCapped, capped, "capped")
			got := formatAll(times)
			if tt.wantLenOnly > 0 {
				require.Len(t, got, tt.wantLenOnly)
				got = []string{got[0], got[len(got)-1]}
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("Due(%s, %s, %d) of %s (-want +got):\n%s", tt.after, tt.until, tt.max, s, d)
			}
		})
	}
}

func formatAll(times []time.Time) []string {
	var out []string
	for _, t := range times {
		out = append(out, t.Format(time.RFC3339Nano))
	}
	return out
}
