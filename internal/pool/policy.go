package pool

import (
	"fmt"
	"time"
)

// Load is what a size policy sees of a pool at one moment.
type Load struct {
	Now time.Time
	// Pending counts PENDING tasks that only this pool's nodes can take.
	Pending int
	// Running counts the tasks on the pool's nodes (assigned to ended).
	Running int
	// Live counts machines launching, starting or ready: capacity now or
	// soon (in-flight launches count, so a policy never overshoots).
	Live int
	// Busy counts ready machines with at least one task.
	Busy int
}

// Sizer is a size policy: how many machines a pool wants now, and why.
// The manager clamps the answer to [Min, Max] and removes only idle
// machines when it is below Live. More policies implement it.
type Sizer interface {
	Desired(p Pool, l Load) (int, string)
}

// SizerOf returns the Sizer of a pool's policy.
func SizerOf(p Pool) Sizer {
	switch {
	case p.Policy.Fixed != nil:
		return fixedSizer{}
	case p.Policy.Queue != nil:
		return queueSizer{}
	case p.Policy.Schedule != nil:
		return scheduleSizer{}
	}
	return fixedSizer{}
}

// Clamp bounds n to the pool's [Min, Max].
func (p Pool) Clamp(n int) int { return max(p.Min, min(p.Max, n)) }

type fixedSizer struct{}

func (fixedSizer) Desired(p Pool, _ Load) (int, string) {
	return p.Desired, fmt.Sprintf("fixed: keep %d", p.Desired)
}

// queueSizer scales up while more than high_water tasks wait: each task
// beyond it asks for a machine on top of the busy ones (launching ones
// count as capacity: they will take the waiting tasks). It scales down to
// the busy machines while at most low_water wait, never to zero while
// work waits or runs; between the marks it holds.
type queueSizer struct{}

func (queueSizer) Desired(p Pool, l Load) (int, string) {
	q := p.Policy.Queue
	switch {
	case l.Pending > q.HighWater:
		want := max(l.Live, l.Busy+l.Pending-q.HighWater)
		return want, fmt.Sprintf("queue: %d tasks pending > high water %d", l.Pending, q.HighWater)
	case l.Pending <= q.LowWater:
		want := l.Busy
		if want == 0 && (l.Pending > 0 || l.Running > 0) {
			want = 1
		}
		return want, fmt.Sprintf("queue: %d tasks pending <= low water %d, %d machines busy", l.Pending, q.LowWater, l.Busy)
	}
	return l.Live, fmt.Sprintf("queue: %d tasks pending, between the water marks: hold", l.Pending)
}

// scheduleSizer keeps size machines from each cron time for duration,
// and min otherwise.
type scheduleSizer struct{}

func (scheduleSizer) Desired(p Pool, l Load) (int, string) {
	s := p.Policy.Schedule
	sched, err := parseCron(s.Cron, s.TimeZone)
	if err != nil {
		return p.Min, "schedule: " + err.Error()
	}
	times, _, _ := sched.Due(l.Now.Add(-s.Duration), l.Now, 1)
	if len(times) > 0 {
		end := times[len(times)-1].Add(s.Duration)
		return s.Size, fmt.Sprintf("schedule: %d machines from %s until %s", s.Size,
			times[len(times)-1].In(sched.Location()).Format(time.RFC3339), end.In(sched.Location()).Format(time.RFC3339))
	}
	next := sched.Next(l.Now)
	return p.Min, fmt.Sprintf("schedule: outside the window; %d machines from %s", s.Size, next.In(sched.Location()).Format(time.RFC3339))
}
