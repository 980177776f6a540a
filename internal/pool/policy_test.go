package pool_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/pool"
)

func TestFixedSizer(t *testing.T) {
	t.Parallel()
	p := burst(func(p *pool.Pool) {
		p.Policy = pool.Policy{Fixed: &pool.FixedPolicy{Size: 3}}
		p.Desired = 2 // pool scale changed it at run time
	})
	for _, l := range []pool.Load{{}, {Pending: 50, Live: 4, Busy: 4, Running: 4}, {Live: 1}} {
		got, why := pool.SizerOf(p).Desired(p, l)
		require.Equal(t, 2, got, "a fixed pool keeps what pool scale last set, whatever the load %+v", l)
		require.Equal(t, "fixed: keep 2", why)
	}
}

func TestQueueSizer(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		high, low int
		load      pool.Load
		want      int
		why       string
	}{
		{"nothing to do from zero", 2, 0, pool.Load{}, 0, "0 tasks pending <= low water 0"},
		{"scales up from zero", 2, 0, pool.Load{Pending: 10}, 8, "10 tasks pending > high water 2"},
		{"one above high water", 2, 0, pool.Load{Pending: 3}, 1, "> high water 2"},
		{"at high water holds", 2, 0, pool.Load{Pending: 2, Live: 1}, 1, "between the water marks: hold"},
		{"busy machines come on top", 2, 0, pool.Load{Pending: 5, Busy: 3, Live: 3, Running: 3}, 6, "> high water"},
		{"in-flight launches count: never below live", 2, 0, pool.Load{Pending: 4, Live: 5}, 5, "> high water"},
		{"high water zero: one each", 0, 0, pool.Load{Pending: 4, Busy: 1, Live: 1, Running: 1}, 5, "> high water 0"},
		{"at low water: down to the busy", 4, 1, pool.Load{Pending: 1, Busy: 2, Live: 4, Running: 2}, 2, "1 tasks pending <= low water 1, 2 machines busy"},
		{"nothing pending or running: zero", 2, 0, pool.Load{Live: 3}, 0, "<= low water 0, 0 machines busy"},
		{"never zero while work waits", 4, 2, pool.Load{Pending: 2, Live: 2}, 1, "<= low water 2"},
		{"never zero while work runs", 2, 0, pool.Load{Running: 1, Live: 2}, 1, "<= low water 0"},
		{"between the marks holds", 4, 1, pool.Load{Pending: 3, Busy: 1, Live: 2, Running: 1}, 2, "3 tasks pending, between the water marks: hold"},
		{"between the marks holds at zero", 4, 1, pool.Load{Pending: 3}, 0, "hold"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p := burst(func(p *pool.Pool) { p.Max = 100; p.Policy.Queue.HighWater, p.Policy.Queue.LowWater = c.high, c.low })
			require.NoError(t, p.Validate())
			got, why := pool.SizerOf(p).Desired(p, c.load)
			require.Equal(t, c.want, got, "load %+v", c.load)
			require.Contains(t, why, c.why)
			require.Contains(t, why, "queue: ")
		})
	}
}

func TestScheduleSizer(t *testing.T) {
	t.Parallel()
	// 02:30 in Amsterdam for two hours. In 2030 the clocks go forward on
	// 31 March at 01:00Z (02:00 CET becomes 03:00 CEST, so 02:30 does not
	// happen: it fires at the end of the gap, 01:00Z) and back on 27
	// October at 01:00Z (02:30 happens twice, at 00:30Z and 01:30Z: it
	// fires once, at the first).
	p := burst(func(p *pool.Pool) {
		p.Min, p.Max, p.Desired = 1, 10, 1
		p.Policy = pool.Policy{Schedule: &pool.SchedulePolicy{Cron: "30 2 * * *", TimeZone: "Europe/Amsterdam", Size: 6, Duration: 2 * time.Hour}}
	})
	require.NoError(t, p.Validate())
	utc := func(month time.Month, day, hour, minute int) time.Time {
		return time.Date(2030, month, day, hour, minute, 0, 0, time.UTC)
	}
	cases := []struct {
		name string
		now  time.Time
		want int
		why  string
	}{
		{"winter, before the window", utc(time.March, 4, 1, 29), 1, "schedule: outside the window; 6 machines from 2030-03-04T02:30:00+01:00"},
		{"winter, at the fire time", utc(time.March, 4, 1, 30), 6, "schedule: 6 machines from 2030-03-04T02:30:00+01:00 until 2030-03-04T04:30:00+01:00"},
		{"winter, inside", utc(time.March, 4, 3, 29), 6, "until 2030-03-04T04:30:00+01:00"},
		{"winter, at the end", utc(time.March, 4, 3, 30), 1, "outside the window; 6 machines from 2030-03-05T02:30:00+01:00"},
		{"spring forward, from the end of the gap", utc(time.March, 31, 1, 10), 6, "from 2030-03-31T03:00:00+02:00 until 2030-03-31T05:00:00+02:00"},
		{"spring forward, near the end", utc(time.March, 31, 2, 45), 6, "until 2030-03-31T05:00:00+02:00"},
		{"spring forward, after", utc(time.March, 31, 3, 0), 1, "outside the window"},
		{"summer, inside", utc(time.July, 1, 0, 30), 6, "from 2030-07-01T02:30:00+02:00"},
		{"fall back, inside from the first 02:30", utc(time.October, 27, 0, 40), 6, "from 2030-10-27T02:30:00+02:00 until 2030-10-27T03:30:00+01:00"},
		{"fall back, the second 02:30 does not fire again", utc(time.October, 27, 2, 40), 1, "outside the window; 6 machines from 2030-10-28T02:30:00+01:00"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, why := pool.SizerOf(p).Desired(p, pool.Load{Now: c.now, Pending: 100, Live: 3})
			require.Equal(t, c.want, got, "at %s: %s", c.now, why)
			require.Contains(t, why, c.why)
		})
	}
}

func TestClamp(t *testing.T) {
	t.Parallel()
	cases := []struct {
		min, max, n, want int
	}{
		{0, 4, -1, 0},
		{0, 4, 0, 0},
		{0, 4, 3, 3},
		{0, 4, 8, 4},
		{2, 4, 0, 2},
		{2, 4, 2, 2},
		{3, 3, 100, 3},
	}
	for _, c := range cases {
		p := burst(func(p *pool.Pool) { p.Min, p.Max = c.min, c.max })
		require.Equal(t, c.want, p.Clamp(c.n), "clamp %d to [%d, %d]", c.n, c.min, c.max)
	}
}

// TestSizerOfNoPolicy: a pool without a policy (never valid, but a
// stored one from an older release could be) keeps its desired size
// rather than failing.
func TestSizerOfNoPolicy(t *testing.T) {
	t.Parallel()
	p := burst(func(p *pool.Pool) { p.Policy, p.Desired = pool.Policy{}, 2 })
	got, _ := pool.SizerOf(p).Desired(p, pool.Load{Pending: 10})
	require.Equal(t, 2, got)
}
