package cron

import "time"

// DueWithCap is Due with a cap small enough for a test to reach.
func (s *Schedule) DueWithCap(after, until time.Time, max, limit int) ([]time.Time, int, bool) {
	return s.due(after, until, max, limit)
}
