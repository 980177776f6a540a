package cron

import "time"

// A wall-clock time is kept as a time.Time in UTC whose fields are the
// local ones: 02:30 in Amsterdam is 02:30Z here. robfig walks such times
// without meeting a jump; resolver maps them back to instants.

// wallClock returns the wall clock of loc at t.
func wallClock(t time.Time, loc *time.Location) time.Time {
	_, off := t.In(loc).Zone()
	return t.UTC().Add(time.Duration(off) * time.Second)
}

// maxOffset bounds every UTC offset tzdata has known (Asia/Manila's local
// mean time until 1844 was -15:56), so each instant showing a wall time w
// lies within maxOffset of w read as UTC.
const maxOffset = 16 * time.Hour

// resolver maps wall-clock times of loc to the instants drover fires them
// at: the first instant showing the time, or, for a time that no instant
// shows, the end of the gap it falls in. The time package has no such
// call: time.Date leaves the choice in both cases unspecified.
type resolver struct {
	loc *time.Location

	// The zone period [start, end) of the last answer and its offset in
	// seconds, kept because fire times come in runs within one period. A
	// zero start or end is unbounded.
	start, end time.Time
	off        int
	cached     bool
}

// instant returns the instant to fire wall-clock time w at, in UTC.
func (r *resolver) instant(w time.Time) time.Time {
	if r.cached {
		i := w.Add(-time.Duration(r.off) * time.Second)
		// Any instant showing w is within 2*maxOffset of i. When all of
		// that span is in this one period, which has one offset, i is the
		// only instant showing w.
		if (r.start.IsZero() || !i.Add(-2*maxOffset).Before(r.start)) &&
			(r.end.IsZero() || i.Add(2*maxOffset).Before(r.end)) {
			return i
		}
	}
	return r.search(w)
}

// search walks the zone periods that can show w, oldest first, and stops
// at the first that does or at the first gap that swallows it.
func (r *resolver) search(w time.Time) time.Time {
	last := w.Add(maxOffset)
	t := w.Add(-maxOffset)
	for {
		lt := t.In(r.loc)
		_, off := lt.Zone()
		start, end := lt.ZoneBounds()
		i := w.Add(-time.Duration(off) * time.Second)
		if (start.IsZero() || !i.Before(start)) && (end.IsZero() || i.Before(end)) {
			r.start, r.end, r.off, r.cached = start, end, off, true
			return i
		}
		// Past the year 10000 the time package can report a period that
		// ends where t is (seen at 10001-01-01Z); stop rather than spin.
		if end.IsZero() || end.After(last) || !end.After(t) {
			break
		}
		// At end the clock jumps from end+off to end+nextOff; a forward
		// jump skips the wall times in between, and those fire at end.
		_, nextOff := end.In(r.loc).Zone()
		from := end.UTC().Add(time.Duration(off) * time.Second)
		to := end.UTC().Add(time.Duration(nextOff) * time.Second)
		if !w.Before(from) && w.Before(to) {
			return end.UTC()
		}
		t = end
	}
	// Not reached with tzdata zones, whose periods outlast their jumps,
	// before the year 10000.
	return time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), w.Nanosecond(), r.loc).UTC()
}
