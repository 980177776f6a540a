package cron_test

import (
	"bufio"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/cron"
)

// bruteForce pairs an expression with a plain predicate on wall-clock time.
var bruteForce = []struct {
	expr  string
	match func(w time.Time) bool
}{
	{"*/15 * * * *", func(w time.Time) bool { return w.Minute()%15 == 0 }},
	{"30 2 * * *", func(w time.Time) bool { return w.Hour() == 2 && w.Minute() == 30 }},
	{"@daily", func(w time.Time) bool { return w.Hour() == 0 && w.Minute() == 0 }},
	{"30 23 * * *", func(w time.Time) bool { return w.Hour() == 23 && w.Minute() == 30 }},
	{"0 1 * * SUN", func(w time.Time) bool { return w.Weekday() == time.Sunday && w.Hour() == 1 && w.Minute() == 0 }},
}

// TestEveryZoneAgainstBruteForce checks the DST rules in every zone tzdata
// has, around each of its clock changes in 2026, against a walk of the wall
// clock a minute at a time that applies the rules literally: a matching
// wall time fires the first time the clock shows it, and a jump forward
// over matching wall times fires once, when it lands. Next, called from
// each fire time, must give the same sequence as Due.
func TestEveryZoneAgainstBruteForce(t *testing.T) {
	t.Parallel()
	from := time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC)
	to := from.AddDate(1, 0, 0)
	changes := 0
	for _, zone := range tzdataZones(t) {
		loc, err := time.LoadLocation(zone)
		require.NoError(t, err)
		for _, change := range clockChanges(loc, from, to) {
			changes++
			after, until := change.Add(-8*time.Hour), change.Add(8*time.Hour)
			walls := wallClocks(loc, after, until)
			for _, bf := range bruteForce {
				s, err := cron.Parse(bf.expr, zone)
				require.NoError(t, err)
				want := walk(walls, bf.match)
				got, total, _ := s.Due(after, until, 0)
				if d := cmp.Diff(formatAll(want), formatAll(got)); d != "" {
					t.Fatalf("%s around %s (-brute force +Due):\n%s", s, change, d)
				}
				require.Equal(t, len(want), total)
				var chained []time.Time
				for at := s.Next(after); !at.After(until); at = s.Next(at) {
					chained = append(chained, at)
				}
				require.Equal(t, formatAll(want), formatAll(chained), "%s around %s: Next chained", s, change)
			}
		}
	}
	// Guard against a walk that checked nothing: about 70 zones change clocks twice a year.
	require.Greater(t, changes, 100)
}

// TestDailyOncePerLocalDay runs @daily through 2026 in every zone that
// changes its clocks: each local day fires once, on that day.
func TestDailyOncePerLocalDay(t *testing.T) {
	t.Parallel()
	from := time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC)
	to := from.AddDate(1, 0, 0)
	for _, zone := range tzdataZones(t) {
		loc, err := time.LoadLocation(zone)
		require.NoError(t, err)
		if len(clockChanges(loc, from, to)) == 0 {
			continue
		}
		s, err := cron.Parse("@daily", zone)
		require.NoError(t, err)
		times, _, _ := s.Due(from, to, 0)
		require.GreaterOrEqual(t, len(times), 364, zone)
		for i := 1; i < len(times); i++ {
			prev, cur := times[i-1].In(loc), times[i].In(loc)
			py, pm, pd := prev.Date()
			require.Equal(t, time.Date(py, pm, pd+1, 0, 0, 0, 0, time.UTC).Format(time.DateOnly), cur.Format(time.DateOnly),
				"%s: fire after %s", s, prev)
		}
	}
}

// wallClock is one minute of the brute-force walk.
type wallClock struct {
	at   time.Time // the instant, in UTC
	wall time.Time // loc's wall clock then, written in UTC
}

// wallClocks lists loc's wall clock at each minute of [after, until].
func wallClocks(loc *time.Location, after, until time.Time) []wallClock {
	var out []wallClock
	for i := after; !i.After(until); i = i.Add(time.Minute) {
		l := i.In(loc)
		w := time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), 0, 0, time.UTC)
		out = append(out, wallClock{at: i, wall: w})
	}
	return out
}

// walk applies the DST rules literally to the minutes after the first.
func walk(walls []wallClock, match func(w time.Time) bool) []time.Time {
	// The wall times shown so far, as runs of consecutive minutes.
	type run struct{ first, last time.Time }
	runs := []run{{walls[0].wall, walls[0].wall}}
	seen := func(w time.Time) bool {
		for _, r := range runs {
			if !w.Before(r.first) && !w.After(r.last) {
				return true
			}
		}
		return false
	}
	var fires []time.Time
	for k := 1; k < len(walls); k++ {
		prev, w := walls[k-1].wall, walls[k].wall
		fire := match(w) && !seen(w)
		for skipped := prev.Add(time.Minute); skipped.Before(w); skipped = skipped.Add(time.Minute) {
			fire = fire || match(skipped)
		}
		if fire {
			fires = append(fires, walls[k].at)
		}
		if last := &runs[len(runs)-1]; w.Equal(last.last.Add(time.Minute)) {
			last.last = w
		} else {
			runs = append(runs, run{w, w})
		}
	}
	return fires
}

// clockChanges returns the instants in [from, to) where loc's UTC offset
// changes, in UTC.
func clockChanges(loc *time.Location, from, to time.Time) []time.Time {
	var out []time.Time
	for t := from; ; {
		l := t.In(loc)
		_, off := l.Zone()
		_, end := l.ZoneBounds()
		if end.IsZero() || !end.Before(to) {
			return out
		}
		if _, next := end.In(loc).Zone(); next != off {
			out = append(out, end.UTC())
		}
		t = end
	}
}

// tzdataZones lists the zones (not the links) in the system's tzdata.
func tzdataZones(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("/usr/share/zoneinfo/tzdata.zi")
	require.NoError(t, err, "the tests need the system's tzdata (Debian package tzdata)")
	defer f.Close()
	var zones []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "Z "); ok {
			zones = append(zones, strings.Fields(rest)[0])
		}
	}
	require.NoError(t, sc.Err())
	require.NotEmpty(t, zones)
	return zones
}
