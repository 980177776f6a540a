package cron_test

import (
	"errors"
	"testing"
	"time"

	"github.com/drover-dev/drover/internal/cron"
)

// FuzzParse checks that Parse never panics, that it fails only with a
// FieldError, and that a parsed schedule's Next is strictly after its input
// (or zero) and agrees with Due.
func FuzzParse(f *testing.F) {
	for _, seed := range []struct {
		expr, zone string
		at         int64
	}{
		{"0 2 * * *", "Europe/Amsterdam", 1792886400}, // 2026-10-25T00:00Z, fall back
		{"30 * * * *", "Europe/Amsterdam", 1792890600},
		{"*/15 2 * * *", "Europe/Amsterdam", 1774742400}, // 2026-03-29T00:00Z, spring forward
		{"@daily", "America/Havana", 1772928000},
		{"0 0 * * *", "America/Santiago", 1788580800},
		{"30 23 * * *", "Asia/Beirut", 1792868400},
		{"45 1 * * *", "Australia/Lord_Howe", 1775260800},
		{"*/30 * * * *", "Asia/Kathmandu", 0},
		{"0 0 29 2 *", "", 4000000000},
		{"0 0 1 * MON", "UTC", -1000000000},
		{"@every 7m", "", -61},
		{"@every 1s", "Europe/Amsterdam", 1},
		{"0 0 30 2 *", "", 0},
		{"TZ=UTC", "", 0},
		{"CRON_TZ=Europe/Amsterdam 0 2 * * *", "", 0},
		{"0 0 2 * * *", "", 0},
		{"5/15 1-5/2 ? * ?", "Local", 0},
		{"@yearly", "Australia/Sydney", 253402300000},
		{",,, * * * *", "", 0},
		{"*/0 * * * *", "../etc", 0},
	} {
		f.Add(seed.expr, seed.zone, seed.at)
	}
	// Years 1 to 9999, more than any clock drover runs by will show.
	const minSec, maxSec = -62135596800, 253402300799
	f.Fuzz(func(t *testing.T, expr, zone string, sec int64) {
		s, err := cron.Parse(expr, zone)
		if err != nil {
			var fe *cron.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Parse(%q, %q) = %v, not a FieldError", expr, zone, err)
			}
			return
		}
		at := time.Unix(min(max(sec, minSec), maxSec), 0)
		next := s.Next(at)
		if next.IsZero() {
			return
		}
		if !next.After(at) || next.Location() != time.UTC {
			t.Fatalf("%s: Next(%s) = %s, want a UTC time after it", s, at.UTC(), next)
		}
		times, total, capped := s.Due(at, next, 0)
		if total != 1 || capped || len(times) != 1 || !times[0].Equal(next) {
			t.Fatalf("%s: Due(%s, %s) = %v, %d, %v; want just the second", s, at.UTC(), next, times, total, capped)
		}
	})
}
