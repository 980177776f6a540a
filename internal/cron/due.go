package cron

import "time"

// DueCap is where [Schedule.Due] stops counting: a per-second schedule
// reaches it after 11.6 days, a per-minute one after 1.9 years.
const DueCap = 1_000_000

// Due returns the fire times in (after, until], oldest first, in UTC. When
// there are more than max of them (max > 0), it returns only the newest
// max; with max <= 0 it returns them all, up to [DueCap]. total counts all
// of them, but stops at DueCap and then reports capped; the times returned
// are the newest even then.
func (s *Schedule) Due(after, until time.Time, max int) (times []time.Time, total int, capped bool) {
	return s.due(after, until, max, DueCap)
}

// due is Due with the cap as a parameter, so tests can reach it cheaply.
func (s *Schedule) due(after, until time.Time, max, limit int) ([]time.Time, int, bool) {
	if !until.After(after) {
		return nil, 0, false
	}
	keep := max
	if keep <= 0 || keep > limit {
		keep = limit
	}
	total := 0
	it := s.iterAfter(after)
	var r ring
	for {
		f := it.next()
		if f.IsZero() || f.After(until) {
			return r.times(), total, false
		}
		if total == limit {
			break
		}
		total++
		r.push(f, keep)
	}
	// Too many to count; find the newest in windows ending at until,
	// sized from the density seen so far and growing until one holds
	// enough of them (or reaches back to after).
	span := it.last.Sub(after) / time.Duration(limit) * time.Duration(keep)
	for window := 2 * span; ; window *= 4 {
		from := until.Add(-window)
		if window <= 0 || !from.After(after) {
			from = after
		}
		r = ring{}
		n := 0
		it := s.iterAfter(from)
		for f := it.next(); !f.IsZero() && !f.After(until); f = it.next() {
			r.push(f, keep)
			n++
		}
		if n >= keep || from.Equal(after) {
			return r.times(), limit, true
		}
	}
}

// ring keeps the newest fire times pushed into it.
type ring struct {
	buf  []time.Time
	head int // the oldest, once buf is full
}

func (r *ring) push(t time.Time, keep int) {
	if len(r.buf) < keep {
		r.buf = append(r.buf, t)
		return
	}
	r.buf[r.head] = t
	r.head = (r.head + 1) % keep
}

func (r *ring) times() []time.Time {
	return append(r.buf[r.head:len(r.buf):len(r.buf)], r.buf[:r.head]...)
}
