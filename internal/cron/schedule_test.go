package cron_test

import (
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/cron"
)

// TestNext checks fire times against hand-computed instants. Each case
// gives the local times in a comment; tzdata's rules for 2026-2028 are
// in the comments too, so a reader can check them without zdump.
func TestNext(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		expr  string
		zone  string
		after string
		want  []string
	}{
		// Europe/Amsterdam falls back on 2026-10-25 at 01:00Z from 03:00
		// CEST to 02:00 CET: 02:00-02:59 local happens twice.
		{
			name:  "fall back fires a repeated time once, first",
			expr:  "30 2 * * *",
			zone:  "Europe/Amsterdam",
			after: "2026-10-24T12:00:00Z",
			want:  []string{"2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z", "2026-10-27T01:30:00Z"},
		},
		{
			name:  "fall back hourly skips the repeated 02:30",
			expr:  "30 * * * *",
			zone:  "Europe/Amsterdam",
			after: "2026-10-24T23:00:00Z",
			// 01:30 CEST, 02:30 CEST, (02:30 CET not again), 03:30 CET, 04:30 CET
			want: []string{"2026-10-24T23:30:00Z", "2026-10-25T00:30:00Z", "2026-10-25T02:30:00Z", "2026-10-25T03:30:00Z"},
		},
		{
			name:  "fall back asked from inside the second occurrence",
			expr:  "30 * * * *",
			zone:  "Europe/Amsterdam",
			after: "2026-10-25T01:10:00Z", // 02:10 CET, the second time round
			want:  []string{"2026-10-25T02:30:00Z", "2026-10-25T03:30:00Z"},
		},
		{
			name:  "fall back asked from inside the first occurrence",
			expr:  "*/15 * * * *",
			zone:  "Europe/Amsterdam",
			after: "2026-10-25T00:40:00Z", // 02:40 CEST
			// 02:45 CEST, then silence through the repeated hour, 03:00 CET
			want: []string{"2026-10-25T00:45:00Z", "2026-10-25T02:00:00Z", "2026-10-25T02:15:00Z"},
		},
		// Europe/Amsterdam springs forward on 2026-03-29 at 01:00Z from
		// 02:00 CET to 03:00 CEST: 02:00-02:59 local does not exist.
		{
			name:  "spring forward fires a missing time at the gap's end",
			expr:  "30 2 * * *",
			zone:  "Europe/Amsterdam",
			after: "2026-03-28T12:00:00Z",
			want:  []string{"2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"},
		},
		{
			name:  "spring forward fires several missing times once",
			expr:  "*/15 2 * * *",
			zone:  "Europe/Amsterdam",
			after: "2026-03-28T12:00:00Z",
			want:  []string{"2026-03-29T01:00:00Z", "2026-03-30T00:00:00Z", "2026-03-30T00:15:00Z"},
		},
		{
			name:  "spring forward merges the gap with the time ending it",
			expr:  "0 * * * *",
			zone:  "Europe/Amsterdam",
			after: "2026-03-28T23:30:00Z",
			// 01:00 CET, 02:00 (missing) and 03:00 CEST are one instant, 04:00 CEST
			want: []string{"2026-03-29T00:00:00Z", "2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z"},
		},
		// America/Havana: 2026-03-08 00:00 CST jumps to 01:00 CDT (midnight
		// is missing); 2026-11-01 01:00 CDT falls back to 00:00 CST.
		{
			name:  "Havana daily on the day without a midnight",
			expr:  "@daily",
			zone:  "America/Havana",
			after: "2026-03-07T12:00:00Z",
			want:  []string{"2026-03-08T05:00:00Z", "2026-03-09T04:00:00Z"},
		},
		{
			name:  "Havana daily on the day with two midnights",
			expr:  "0 0 * * *",
			zone:  "America/Havana",
			after: "2026-10-31T12:00:00Z",
			want:  []string{"2026-11-01T04:00:00Z", "2026-11-02T05:00:00Z"},
		},
		// America/Santiago: 2026-09-06 00:00 -04 jumps to 01:00 -03;
		// 2026-04-05 00:00 -03 falls back to Saturday 23:00 -04.
		{
			name:  "Santiago midnight missing in spring (September)",
			expr:  "0 0 * * *",
			zone:  "America/Santiago",
			after: "2026-09-04T12:00:00Z",
			want:  []string{"2026-09-05T04:00:00Z", "2026-09-06T04:00:00Z", "2026-09-07T03:00:00Z"},
		},
		{
			name:  "Santiago 23:30 repeated in autumn (April)",
			expr:  "30 23 * * *",
			zone:  "America/Santiago",
			after: "2026-04-04T12:00:00Z",
			want:  []string{"2026-04-05T02:30:00Z", "2026-04-06T03:30:00Z"},
		},
		// Asia/Beirut: 2026-03-29 00:00 EET jumps to 01:00 EEST; 2026-10-25
		// 00:00 EEST falls back to Saturday 23:00 EET.
		{
			name:  "Beirut midnight missing",
			expr:  "@midnight",
			zone:  "Asia/Beirut",
			after: "2026-03-27T12:00:00Z",
			want:  []string{"2026-03-27T22:00:00Z", "2026-03-28T22:00:00Z", "2026-03-29T21:00:00Z"},
		},
		{
			name:  "Beirut 23:30 repeated",
			expr:  "30 23 * * *",
			zone:  "Asia/Beirut",
			after: "2026-10-23T12:00:00Z",
			want:  []string{"2026-10-23T20:30:00Z", "2026-10-24T20:30:00Z", "2026-10-25T21:30:00Z"},
		},
		// Australia/Sydney: 2026-04-05 03:00 AEDT falls back to 02:00 AEST;
		// 2026-10-04 02:00 AEST jumps to 03:00 AEDT.
		{
			name:  "Sydney autumn fall back in April",
			expr:  "30 2 * * *",
			zone:  "Australia/Sydney",
			after: "2026-04-04T00:00:00Z",
			want:  []string{"2026-04-04T15:30:00Z", "2026-04-05T16:30:00Z"},
		},
		{
			name:  "Sydney spring forward in October",
			expr:  "30 2 * * *",
			zone:  "Australia/Sydney",
			after: "2026-10-03T00:00:00Z",
			want:  []string{"2026-10-03T16:00:00Z", "2026-10-04T15:30:00Z"},
		},
		// Australia/Lord_Howe moves by 30 minutes: 2026-04-05 02:00 +11
		// falls back to 01:30 +1030; 2026-10-04 02:00 +1030 jumps to 02:30 +11.
		{
			name:  "Lord Howe half-hour fall back",
			expr:  "45 1 * * *",
			zone:  "Australia/Lord_Howe",
			after: "2026-04-04T00:00:00Z",
			want:  []string{"2026-04-04T14:45:00Z", "2026-04-05T15:15:00Z"},
		},
		{
			name:  "Lord Howe half-hour gap",
			expr:  "15 2 * * *",
			zone:  "Australia/Lord_Howe",
			after: "2026-10-03T00:00:00Z",
			want:  []string{"2026-10-03T15:30:00Z", "2026-10-04T15:15:00Z"},
		},
		{
			name:  "Kathmandu is 5:45 ahead",
			expr:  "0 9 * * *",
			zone:  "Asia/Kathmandu",
			after: "2026-01-01T00:00:00Z",
			want:  []string{"2026-01-01T03:15:00Z", "2026-01-02T03:15:00Z"},
		},
		{
			name:  "Kathmandu half hours",
			expr:  "*/30 * * * *",
			zone:  "Asia/Kathmandu",
			after: "2026-01-01T00:00:00Z",
			want:  []string{"2026-01-01T00:15:00Z", "2026-01-01T00:45:00Z", "2026-01-01T01:15:00Z"},
		},
		{
			name:  "Kathmandu hourly",
			expr:  "@hourly",
			zone:  "Asia/Kathmandu",
			after: "2026-01-01T00:00:00Z",
			want:  []string{"2026-01-01T00:15:00Z", "2026-01-01T01:15:00Z"},
		},
		{
			name:  "day 31 skips shorter months",
			expr:  "0 0 31 * *",
			zone:  "",
			after: "2026-01-01T00:00:00Z",
			want:  []string{"2026-01-31T00:00:00Z", "2026-03-31T00:00:00Z", "2026-05-31T00:00:00Z", "2026-07-31T00:00:00Z"},
		},
		{
			name:  "monthly in a zone with DST",
			expr:  "@monthly",
			zone:  "Europe/Amsterdam",
			after: "2026-01-15T00:00:00Z",
			want:  []string{"2026-01-31T23:00:00Z", "2026-02-28T23:00:00Z", "2026-03-31T22:00:00Z"},
		},
		{
			name:  "weekly starts Sunday midnight",
			expr:  "@weekly",
			zone:  "UTC",
			after: "2026-01-01T00:00:00Z",
			want:  []string{"2026-01-04T00:00:00Z", "2026-01-11T00:00:00Z"},
		},
		{
			name:  "yearly in the southern hemisphere's summer time",
			expr:  "@annually",
			zone:  "Australia/Sydney",
			after: "2026-06-01T00:00:00Z",
			want:  []string{"2026-12-31T13:00:00Z", "2027-12-31T13:00:00Z"},
		},
		{
			name:  "leap day only in leap years",
			expr:  "0 0 29 2 *",
			zone:  "",
			after: "2024-03-01T00:00:00Z",
			want:  []string{"2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"},
		},
		{
			name:  "leap day across 2100, eight years off",
			expr:  "0 0 29 FEB *",
			zone:  "",
			after: "2096-03-01T00:00:00Z",
			want:  []string{"2104-02-29T00:00:00Z"},
		},
		{
			name:  "day-of-month or day-of-week when both are restricted",
			expr:  "0 0 1 * MON",
			zone:  "",
			after: "2026-01-31T12:00:00Z",
			// Sunday the 1st, then Mondays
			want: []string{"2026-02-01T00:00:00Z", "2026-02-02T00:00:00Z", "2026-02-09T00:00:00Z"},
		},
		{
			name:  "a stepped day-of-month counts as restricted",
			expr:  "0 0 */2 * mon",
			zone:  "",
			after: "2026-01-09T00:00:00Z",
			// odd days, or Mondays: 11th, Monday 12th, 13th
			want: []string{"2026-01-11T00:00:00Z", "2026-01-12T00:00:00Z", "2026-01-13T00:00:00Z"},
		},
		{
			name:  "day-of-week alone when day-of-month is ?",
			expr:  "0 0 ? * SUN,SAT",
			zone:  "",
			after: "2026-01-01T00:00:00Z",
			want:  []string{"2026-01-03T00:00:00Z", "2026-01-04T00:00:00Z", "2026-01-10T00:00:00Z"},
		},
		{
			name:  "Friday the 13th means Fridays and 13ths",
			expr:  "0 0 13 * 5",
			zone:  "",
			after: "2026-01-01T00:00:00Z",
			want:  []string{"2026-01-02T00:00:00Z", "2026-01-09T00:00:00Z", "2026-01-13T00:00:00Z"},
		},
		{
			name:  "strictly after, to the nanosecond",
			expr:  "0 2 * * *",
			zone:  "",
			after: "2026-01-01T02:00:00.000000001Z",
			want:  []string{"2026-01-02T02:00:00Z"},
		},
		{
			name:  "not at the time asked",
			expr:  "0 2 * * *",
			zone:  "",
			after: "2026-01-01T02:00:00Z",
			want:  []string{"2026-01-02T02:00:00Z"},
		},
		{
			name:  "every is absolute time through a fall back",
			expr:  "@every 15m",
			zone:  "Europe/Amsterdam",
			after: "2026-10-25T00:50:00Z",
			want:  []string{"2026-10-25T01:00:00Z", "2026-10-25T01:15:00Z", "2026-10-25T01:30:00Z"},
		},
		{
			name:  "every counts from the Unix epoch, also before it",
			expr:  "@every 7m",
			zone:  "",
			after: "1969-12-31T23:59:00Z",
			want:  []string{"1970-01-01T00:00:00Z", "1970-01-01T00:07:00Z"},
		},
		{
			name:  "every from a fraction of a second",
			expr:  "@every 1s",
			zone:  "",
			after: "2026-01-01T00:00:00.5Z",
			want:  []string{"2026-01-01T00:00:01Z", "2026-01-01T00:00:02Z"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := cron.Parse(tt.expr, tt.zone)
			require.NoError(t, err)
			at := mustTime(t, tt.after)
			var got []string
			for range tt.want {
				at = s.Next(at)
				require.Equal(t, time.UTC, at.Location(), "Next returns UTC")
				got = append(got, at.Format(time.RFC3339Nano))
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("fire times of %s after %s (-want +got):\n%s", s, tt.after, d)
			}
		})
	}
}

func TestNextNeverAfterTheEndOfTime(t *testing.T) {
	t.Parallel()
	s, err := cron.Parse("@every 1h", "")
	require.NoError(t, err)
	// The last second time.Time holds, as Unix seconds.
	end := time.Unix(math.MaxInt64-62135596800, 0)
	require.True(t, s.Next(end.Add(-time.Minute)).IsZero())
}

func TestStringAndLocation(t *testing.T) {
	t.Parallel()
	s, err := cron.Parse("0 2 * * *", "Europe/Amsterdam")
	require.NoError(t, err)
	require.Equal(t, "0 2 * * * (Europe/Amsterdam)", s.String())
	require.Equal(t, "Europe/Amsterdam", s.Location().String())

	s, err = cron.Parse("@daily", "")
	require.NoError(t, err)
	require.Equal(t, "@daily (UTC)", s.String())
	require.Equal(t, time.UTC, s.Location())
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339Nano, s)
	require.NoError(t, err)
	return at
}
