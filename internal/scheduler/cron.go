package scheduler

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/drover-dev/drover/internal/cron"
	"github.com/drover-dev/drover/internal/event"
	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/store"
)

const (
	// cronTick is how often due schedules are looked for.
	cronTick = 250 * time.Millisecond
	// DefaultCronLateness is how late a fire time may be handled and
	// still count as on time; older ones were missed and follow the
	// schedule's catch_up policy.
	DefaultCronLateness = time.Minute
	// maxMissedRecorded bounds the missed times recorded one by one in a
	// catch-up; the rest are counted in one event.
	maxMissedRecorded = 100
)

// setSchedule stores a scheduled job's version and its schedule entry; it
// makes no run. A changed expression or zone counts from now: times
// before the change are not caught up under the new one.
func (s *Scheduler) setSchedule(ctx context.Context, tx store.Tx, raw, spec job.Spec, template string, inputs map[string]string, res *SubmitResult) error {
	now := s.clock.Now()
	cur, err := tx.GetJob(ctx, spec.Key)
	exists := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	version, err := s.versionFor(ctx, tx, spec, cur, exists, now)
	if err != nil {
		return err
	}
	if !exists {
		cur = job.Job{Key: spec.Key, State: job.Scheduled, CreatedAt: now}
	}
	cur.Version, cur.Type, cur.UpdatedAt = version, spec.Type, now
	if err := tx.PutJob(ctx, cur); err != nil {
		return err
	}
	e, err := tx.GetCron(ctx, spec.Key)
	switch {
	case errors.Is(err, store.ErrNotFound):
		e = job.CronEntry{Job: spec.Key, LastAt: now, CreatedAt: now}
	case err != nil:
		return err
	case e.Schedule.Cron != spec.Schedule.Cron || e.Schedule.TimeZone != spec.Schedule.TimeZone:
		e.LastAt = now
	}
	e.Schedule, e.Raw, e.Template, e.Inputs, e.UpdatedAt = *spec.Schedule, raw, template, inputs, now
	if err := tx.PutCron(ctx, e); err != nil {
		return err
	}
	sched, err := cron.Parse(e.Schedule.Cron, e.Schedule.TimeZone)
	if err != nil {
		return err
	}
	*res = SubmitResult{Key: spec.Key, Version: version, Created: true, Schedule: &e, Next: sched.Next(e.LastAt)}
	return tx.InsertEvents(ctx, event.Event{At: now, Job: spec.Key.String(), Reason: event.ScheduleSet,
		Message: fmt.Sprintf("version %d on schedule %s (overlap %s, catch_up %s); next fire at %s",
			version, sched, e.Schedule.Overlap, e.Schedule.CatchUp, fireTime(sched.Next(e.LastAt), sched))})
}

// ScheduleTemplate sets, in the caller's transaction, the schedule a
// template carries (raw.Schedule), or removes the one it set when raw has
// none. Each fire launches the template with inputs (its defaults),
// resolving parameters then. raw is the template's job, not yet rendered.
// The caller broadcasts nothing: the cron loop finds the entry by itself.
func (s *Scheduler) ScheduleTemplate(ctx context.Context, tx store.Tx, raw job.Spec, template string, inputs map[string]string) (SubmitResult, error) {
	if raw.Schedule == nil {
		e, err := tx.GetCron(ctx, raw.Key)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return SubmitResult{}, nil
		case err != nil:
			return SubmitResult{}, err
		case e.Template != template:
			return SubmitResult{}, nil // a job file's schedule: not the template's to remove
		}
		return SubmitResult{}, s.deleteCron(ctx, tx, raw.Key, "the template no longer has a schedule")
	}
	if inputs == nil {
		inputs = map[string]string{}
	}
	spec, err := s.resolve(ctx, tx, raw, inputs)
	if err != nil {
		return SubmitResult{}, err
	}
	var res SubmitResult
	return res, s.setSchedule(ctx, tx, raw, spec, template, inputs, &res)
}

// fireTime formats a fire time in its schedule's zone.
func fireTime(t time.Time, sched *cron.Schedule) string {
	if t.IsZero() {
		return "never"
	}
	return t.In(sched.Location()).Format(time.RFC3339)
}

// Crons lists every schedule with its next fire time.
func (s *Scheduler) Crons(ctx context.Context) ([]CronStatus, error) {
	var out []CronStatus
	err := s.store.View(ctx, func(r store.Reader) error {
		es, err := r.ListCrons(ctx)
		if err != nil {
			return err
		}
		out = make([]CronStatus, 0, len(es))
		for _, e := range es {
			st := CronStatus{Entry: e}
			if sched, err := cron.Parse(e.Schedule.Cron, e.Schedule.TimeZone); err == nil {
				st.Next = sched.Next(e.LastAt)
			}
			if fs, err := r.ListFires(ctx, e.Job, 1); err != nil {
				return err
			} else if len(fs) > 0 {
				st.LastFire = &fs[0]
			}
			out = append(out, st)
		}
		return nil
	})
	return out, err
}

// CronStatus is a schedule as `cron list` shows it.
type CronStatus struct {
	Entry job.CronEntry
	// Next is the next fire time (zero: never).
	Next     time.Time
	LastFire *job.Fire
}

// cronLoop fires due schedules until ctx ends.
func (s *Scheduler) cronLoop(ctx context.Context) {
	s.tickLoop(ctx, cronTick, "firing schedules failed", s.FireDue)
}

// FireDue handles every fire time that has come, of every schedule that is
// not paused. Each schedule's times are decided in one transaction that
// also records the decisions, one per (job, time), so a crash at any
// moment fires a time either once or not at all, and a restart never
// fires it again.
func (s *Scheduler) FireDue(ctx context.Context) error {
	var due []job.Key
	now := s.clock.Now()
	err := s.store.View(ctx, func(r store.Reader) error {
		es, err := r.ListCrons(ctx)
		if err != nil {
			return err
		}
		for _, e := range es {
			if e.Paused {
				continue
			}
			sched, err := cron.Parse(e.Schedule.Cron, e.Schedule.TimeZone)
			if err != nil {
				continue // validated when set; a newer parser may disagree
			}
			if next := sched.Next(e.LastAt); !next.IsZero() && !next.After(now) {
				due = append(due, e.Job)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	var errs []error
	fired := false
	for _, key := range due {
		n, err := s.fireSchedule(ctx, key)
		if err != nil {
			errs = append(errs, err)
		}
		fired = fired || n > 0
	}
	if fired {
		s.afterRuns()
	}
	return errors.Join(errs...)
}

// fireSchedule decides every fire time of one schedule that has come. It
// returns how many runs it made.
func (s *Scheduler) fireSchedule(ctx context.Context, key job.Key) (int, error) {
	made := 0
	var nodes []string
	err := s.store.Update(ctx, func(tx store.Tx) error {
		made, nodes = 0, nil
		e, err := tx.GetCron(ctx, key)
		if err != nil || e.Paused {
			return err
		}
		sched, err := cron.Parse(e.Schedule.Cron, e.Schedule.TimeZone)
		if err != nil {
			return err
		}
		// The decisions are the truth: never decide a time again, even
		// if last_at were behind them.
		after := e.LastAt
		if fs, err := tx.ListFires(ctx, key, 1); err != nil {
			return err
		} else if len(fs) > 0 && fs[0].At.After(after) {
			after = fs[0].At
		}
		now := s.clock.Now()
		keep := max(maxMissedRecorded, e.Schedule.CatchUpLimit)
		times, total, capped := sched.Due(after, now, keep)
		if total == 0 {
			return nil
		}
		fire := map[time.Time]bool{}
		newest := times[len(times)-1]
		onTime := now.Sub(newest) <= s.cronLateness
		switch e.Schedule.CatchUp {
		case job.CatchUpSkip:
			if onTime {
				fire[newest] = true
			}
		case job.CatchUpLatest:
			fire[newest] = true
		case job.CatchUpAll:
			for i := max(0, len(times)-e.Schedule.CatchUpLimit); i < len(times); i++ {
				fire[times[i]] = true
			}
		}
		if unlisted := total - len(times); unlisted > 0 {
			more := ""
			if capped {
				more = " at least"
			}
			if err := tx.InsertEvents(ctx, event.Event{At: now, Job: key.String(), Reason: event.ScheduleMissed,
				Message: fmt.Sprintf("%s%d more fire times before %s were missed and not run (catch_up %s)",
					more, unlisted, fireTime(times[0], sched), e.Schedule.CatchUp)}); err != nil {
				return err
			}
		}
		for _, t := range times {
			f := job.Fire{Job: key, At: t, DecidedAt: now}
			if fire[t] {
				f, err = s.fireOnce(ctx, tx, e, t, job.BySchedule, &nodes)
				if err != nil {
					return err
				}
				if f.Outcome == job.Fired {
					made++
				}
			} else {
				f.Outcome = job.Missed
				f.Message = fmt.Sprintf("missed: the server was not firing at %s (catch_up %s)", fireTime(t, sched), e.Schedule.CatchUp)
				if err := tx.InsertEvents(ctx, event.Event{At: now, Job: key.String(), Reason: event.ScheduleMissed, Message: f.Message}); err != nil {
					return err
				}
			}
			if err := tx.InsertFire(ctx, f); err != nil {
				return err
			}
		}
		e.LastAt = newest
		return tx.PutCron(ctx, e)
	})
	if err != nil {
		return 0, fmt.Errorf("fire schedule of %s: %w", key, err)
	}
	s.broadcast(nodes...)
	return made, nil
}

// fireOnce makes the run of one fire, as the schedule's overlap policy
// allows, and says what became of it. A fire that cannot resolve its
// spec (a parameter was deleted) fails alone: the schedule goes on.
// The nodes to tell of kills (overlap: replace) are added to nodes.
func (s *Scheduler) fireOnce(ctx context.Context, tx store.Tx, e job.CronEntry, at time.Time, trigger job.Trigger, nodes *[]string) (job.Fire, error) {
	now := s.clock.Now()
	f := job.Fire{Job: e.Job, At: at, DecidedAt: now}
	when := at.In(time.UTC).Format(time.RFC3339)
	if sched, err := cron.Parse(e.Schedule.Cron, e.Schedule.TimeZone); err == nil {
		when = fireTime(at, sched)
	}
	inputs := e.Inputs
	if e.Template != "" && inputs == nil {
		inputs = map[string]string{}
	}
	spec, err := s.resolve(ctx, tx, e.Raw, inputs)
	if err != nil {
		f.Outcome, f.Message = job.FireFailed, fmt.Sprintf("the fire for %s made no run: %v", when, err)
		return f, tx.InsertEvents(ctx, event.Event{At: now, Job: e.Job.String(), Reason: event.ScheduleFailed, Message: f.Message})
	}
	active, err := tx.ListRuns(ctx, store.RunFilter{Job: e.Job, Active: true})
	if err != nil {
		return job.Fire{}, err
	}
	wait := false
	if len(active) > 0 {
		switch e.Schedule.Overlap {
		case job.OverlapForbid:
			f.Outcome = job.SkippedOverlap
			f.Message = fmt.Sprintf("the fire for %s was skipped: run %d is still %s (overlap forbid)", when, active[0].Number, active[0].State)
			return f, tx.InsertEvents(ctx, event.Event{At: now, Job: e.Job.String(), Run: active[0].Number, Reason: event.ScheduleSkipped, Message: f.Message})
		case job.OverlapReplace:
			for _, r := range active {
				_, n, err := s.killRun(ctx, tx, r, nil, fmt.Sprintf("replaced by the fire for %s", when))
				if err != nil {
					return job.Fire{}, err
				}
				*nodes = append(*nodes, n...)
			}
			still, err := tx.ListRuns(ctx, store.RunFilter{Job: e.Job, Active: true, Limit: 1})
			if err != nil {
				return job.Fire{}, err
			}
			wait = len(still) > 0
		}
	}
	r, err := s.newRun(ctx, tx, spec, runRequest{Trigger: trigger, ScheduledAt: at, Wait: wait})
	if err != nil {
		return job.Fire{}, err
	}
	f.Outcome, f.Run = job.Fired, r.Number
	f.Message = fmt.Sprintf("fired for %s: run %d", when, r.Number)
	return f, tx.InsertEvents(ctx, event.Event{At: now, Job: e.Job.String(), Run: r.Number, Reason: event.ScheduleFired, Message: f.Message})
}

// FireNow fires a job's schedule now, outside its times (cron run): the
// run obeys the overlap policy, and its scheduled time is now. A fire that
// overlap: forbid skips is a [ConflictError] saying why.
func (s *Scheduler) FireNow(ctx context.Context, key job.Key) (SubmitResult, error) {
	var res SubmitResult
	var nodes []string
	err := s.store.Update(ctx, func(tx store.Tx) error {
		res, nodes = SubmitResult{}, nil
		e, err := tx.GetCron(ctx, key)
		if err != nil {
			return err
		}
		f, err := s.fireOnce(ctx, tx, e, s.clock.Now(), job.ByManualFire, &nodes)
		if err != nil {
			return err
		}
		switch f.Outcome {
		case job.SkippedOverlap:
			return &ConflictError{Msg: f.Message}
		case job.FireFailed:
			return job.Fieldf("schedule", "%s", f.Message)
		}
		r, err := tx.GetRun(ctx, key, f.Run)
		if err != nil {
			return err
		}
		return s.existing(ctx, tx, r, &res)
	})
	if err != nil {
		return SubmitResult{}, fmt.Errorf("fire %s now: %w", key, err)
	}
	res.Created = true
	s.broadcast(nodes...)
	s.afterRuns()
	return res, nil
}

// PauseCron pauses (or resumes) a job's schedule. Times that pass while it
// is paused are not fired; resuming counts from now, so they are not
// caught up either.
func (s *Scheduler) PauseCron(ctx context.Context, key job.Key, paused bool) (job.CronEntry, error) {
	var e job.CronEntry
	err := s.store.Update(ctx, func(tx store.Tx) error {
		var err error
		if e, err = tx.GetCron(ctx, key); err != nil {
			return err
		}
		if e.Paused == paused {
			return nil
		}
		now := s.clock.Now()
		reason, msg := event.SchedulePaused, "paused: no fire until it is resumed"
		if !paused {
			reason, msg = event.ScheduleResumed, "resumed: times that passed while paused are not run"
			e.LastAt = now
		}
		e.Paused, e.UpdatedAt = paused, now
		if err := tx.PutCron(ctx, e); err != nil {
			return err
		}
		return tx.InsertEvents(ctx, event.Event{At: now, Job: key.String(), Reason: reason, Message: msg})
	})
	if err != nil {
		return job.CronEntry{}, fmt.Errorf("pause schedule of %s: %w", key, err)
	}
	s.broadcast()
	return e, nil
}

// DeleteCron removes a job's schedule; its runs and versions stay.
func (s *Scheduler) DeleteCron(ctx context.Context, key job.Key) error {
	err := s.store.Update(ctx, func(tx store.Tx) error {
		return s.deleteCron(ctx, tx, key, "schedule removed")
	})
	if err != nil {
		return err
	}
	s.broadcast()
	return nil
}

// deleteCron removes a job's schedule in tx; a job that never ran is no
// longer SCHEDULED.
func (s *Scheduler) deleteCron(ctx context.Context, tx store.Tx, key job.Key, why string) error {
	if err := tx.DeleteCron(ctx, key); err != nil {
		return fmt.Errorf("delete schedule of %s: %w", key, err)
	}
	return tx.InsertEvents(ctx, event.Event{At: s.clock.Now(), Job: key.String(), Reason: event.ScheduleDeleted, Message: why})
}
