package cron

import (
	"errors"
	"strings"
	"time"

	robfig "github.com/robfig/cron/v3"
)

// Schedule is a parsed cron expression in a time zone. It is immutable and
// safe for concurrent use.
type Schedule struct {
	expr string
	zone string // the zone's name as written, "UTC" for ""
	loc  *time.Location

	// Exactly one of spec and every is set. spec's Location is UTC: it
	// walks the wall clock of loc, and wall.go maps wall times to instants.
	spec  *robfig.SpecSchedule
	every time.Duration
}

// Parse parses expr in the IANA time zone tz ("" means UTC). See the
// package documentation for what expr may be.
//
// Every error is a [*FieldError] naming [FieldCron] or [FieldTimeZone];
// when both are wrong, the two are joined with [errors.Join].
func Parse(expr, tz string) (*Schedule, error) {
	s := &Schedule{expr: strings.TrimSpace(expr)}
	var errs []error
	loc, err := loadZone(tz)
	if err != nil {
		errs = append(errs, err)
	}
	s.loc = loc
	s.zone = tz
	if tz == "" {
		s.zone = "UTC"
	}
	if s.every, s.spec, err = parseCron(expr); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		if len(errs) == 1 {
			return nil, errs[0]
		}
		return nil, errors.Join(errs...)
	}
	return s, nil
}

// String returns the expression and its zone, like "0 2 * * * (Europe/Amsterdam)".
// An empty zone shows as UTC.
func (s *Schedule) String() string {
	return s.expr + " (" + s.zone + ")"
}

// Location returns the time zone whose wall clock the expression is read by.
func (s *Schedule) Location() *time.Location {
	return s.loc
}

// Next returns the first fire time strictly after t, in UTC, following the
// daylight saving rules of the package documentation. It returns the zero
// time if there is none; since Parse rejects expressions that never fire,
// that happens only near the end of what [time.Time] can hold.
func (s *Schedule) Next(t time.Time) time.Time {
	return s.iterAfter(t).next()
}

// fireIter yields a schedule's fire times in order. The zero time ends it.
type fireIter struct {
	s    *Schedule
	last time.Time // the last fire time yielded, or where the walk began
	wall time.Time // the last wall-clock candidate taken from robfig
	res  resolver
}

// iterAfter starts a walk whose first fire time is the first after t.
//
// It starts from t's own wall clock. No wall time at or before that one can
// fire after t: it occurs at or before t, or lies in a gap that ended before
// t. (That needs each zone period to outlast its own offset change, which
// every tzdata zone does.) Wall times after it may still fire at or before
// t, when t is in a repeated hour; next skips those.
func (s *Schedule) iterAfter(t time.Time) *fireIter {
	it := &fireIter{s: s, last: t, res: resolver{loc: s.loc}}
	if s.spec != nil {
		it.wall = wallClock(t, s.loc)
	}
	return it
}

// next returns the next fire time, strictly after the last one.
func (it *fireIter) next() time.Time {
	if it.s.every > 0 {
		f := nextMultiple(it.last, it.s.every)
		if !f.IsZero() {
			it.last = f
		}
		return f
	}
	for {
		w := nextWall(it.s.spec, it.wall)
		if w.IsZero() {
			return time.Time{}
		}
		it.wall = w
		if f := it.res.instant(w); f.After(it.last) {
			it.last = f
			return f
		}
	}
}

// searchYears is how far ahead nextWall looks. The Gregorian calendar
// repeats every 400 years, weekdays included, so a wall time that matches
// at all matches within any 400 years.
const searchYears = 400

// nextWall returns spec's first wall-clock time after w (both wall clocks
// written in UTC), or the zero time if there is none within searchYears.
// robfig gives up after five years, and leap days are eight years apart
// around 2100, so we ask again from where it stopped.
func nextWall(spec *robfig.SpecSchedule, w time.Time) time.Time {
	limit := w.Year() + searchYears
	// robfig starts at the next second and steps a second at a time to
	// second 0; starting it at second 59 saves it 59 steps a call.
	w = w.Truncate(time.Minute).Add(59 * time.Second)
	for w.Year() <= limit {
		if n := spec.Next(w); !n.IsZero() {
			return n
		}
		// robfig searched the year of w+1s and the five after it in full.
		w = time.Date(w.Add(time.Second).Year()+5, time.January, 1, 0, 0, -1, 0, time.UTC)
	}
	return time.Time{}
}

// nextMultiple returns the first whole multiple of d since the Unix epoch
// strictly after t, or the zero time past the end of int64 seconds. d is
// whole seconds.
func nextMultiple(t time.Time, d time.Duration) time.Time {
	step := int64(d / time.Second)
	sec := t.Unix()
	q := sec / step
	if sec%step < 0 {
		q-- // round toward minus infinity before 1970
	}
	// (q+1)*step > sec, and sec <= t < sec+1, so the result is after t.
	if q+1 > maxUnix/step {
		return time.Time{}
	}
	return time.Unix((q+1)*step, 0).UTC()
}

// maxUnix keeps nextMultiple inside what time.Unix handles without
// overflowing its internal representation.
const maxUnix = 1<<63 - 1 - (1969*365+1969/4-1969/100+1969/400)*86400
