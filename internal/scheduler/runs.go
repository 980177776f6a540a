package scheduler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/drover-dev/drover/internal/event"
	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/store"
	"github.com/drover-dev/drover/internal/task"
)

// runRequest is what a new run is made for.
type runRequest struct {
	Trigger     job.Trigger
	ScheduledAt time.Time
	// Version is the version to run (a rerun's); 0 runs the spec given,
	// as the newest version or a new one.
	Version   int
	Of        int
	Instances []int
	// Wait makes the run WAITING: it gets its tasks once the job's other
	// active runs have ended (overlap: replace).
	Wait           bool
	IdempotencyKey string
}

// newRun makes run N+1 of spec's job in tx: the version (the newest if
// spec is the same, else a new one), the run, its tasks unless it waits,
// its event, and the job record.
func (s *Scheduler) newRun(ctx context.Context, tx store.Tx, spec job.Spec, req runRequest) (job.Run, error) {
	now := s.clock.Now()
	cur, err := tx.GetJob(ctx, spec.Key)
	exists := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return job.Run{}, err
	}
	version := req.Version
	if version == 0 {
		if version, err = s.versionFor(ctx, tx, spec, cur, exists, now); err != nil {
			return job.Run{}, err
		}
	}
	r := job.Run{Job: spec.Key, Number: cur.Run + 1, Version: version, State: job.Running, Trigger: req.Trigger,
		ScheduledAt: req.ScheduledAt, Of: req.Of, Instances: req.Instances, CreatedAt: now, IdempotencyKey: req.IdempotencyKey}
	msg := fmt.Sprintf("run %d (version %d, %s)", r.Number, r.Version, r.Trigger)
	if req.Wait {
		r.State = job.Waiting
		msg += ": waits for the runs it replaces to end"
	}
	if err := tx.PutRun(ctx, r); err != nil {
		return job.Run{}, err
	}
	if !exists {
		cur = job.Job{Key: spec.Key, CreatedAt: now}
	}
	cur.Version, cur.Run, cur.Type, cur.State, cur.UpdatedAt = max(cur.Version, version), r.Number, spec.Type, job.Running, now
	if err := tx.PutJob(ctx, cur); err != nil {
		return job.Run{}, err
	}
	if r.State == job.Running {
		msg += fmt.Sprintf(": %d instances", len(r.InstanceList(spec.Instances)))
	}
	if err := tx.InsertEvents(ctx, event.Event{At: now, Job: spec.Key.String(), Run: r.Number, To: string(r.State),
		Reason: event.JobSubmitted, Message: msg}); err != nil {
		return job.Run{}, err
	}
	if r.State == job.Running {
		if _, err := s.startTasks(ctx, tx, r, spec, now); err != nil {
			return job.Run{}, err
		}
	}
	return r, nil
}

// versionFor returns the version spec runs as: the job's newest if it is
// the same spec, else a new version stored now.
func (s *Scheduler) versionFor(ctx context.Context, tx store.Tx, spec job.Spec, cur job.Job, exists bool, now time.Time) (int, error) {
	if exists && cur.Version > 0 {
		latest, err := s.spec(ctx, tx, cur.Key, cur.Version)
		if err != nil {
			return 0, err
		}
		if sameSpec(latest, spec) {
			return cur.Version, nil
		}
	}
	v := cur.Version + 1
	return v, tx.InsertJobVersion(ctx, job.Version{Key: spec.Key, Version: v, Spec: spec, CreatedAt: now})
}

// startTasks makes the first task of each of a run's instances.
func (s *Scheduler) startTasks(ctx context.Context, tx store.Tx, r job.Run, spec job.Spec, now time.Time) (int, error) {
	insts := r.InstanceList(spec.Instances)
	tasks := make([]task.Task, len(insts))
	events := make([]event.Event, len(insts))
	for i, inst := range insts {
		tasks[i] = task.Task{
			ID: s.newID(), Job: r.Job, JobVersion: r.Version, Run: r.Number, Instance: inst, Attempt: 1,
			State: task.Pending, Priority: spec.Priority, Resources: spec.Task.Resources,
			Reason: event.Submitted, CreatedAt: now, NotBefore: now, UpdatedAt: now,
		}
		events[i] = event.Event{At: now, Job: r.Job.String(), TaskID: tasks[i].ID, To: string(task.Pending),
			Reason: event.Submitted, Message: fmt.Sprintf("run %d instance %d attempt 1", r.Number, inst)}
	}
	if err := tx.InsertTasks(ctx, tasks...); err != nil {
		return 0, err
	}
	return len(tasks), tx.InsertEvents(ctx, events...)
}

// finishRunIfDone ends a run whose tasks have all ended. A retry is
// created in the same transaction as the failure it follows, so "no task
// left unfinished" means every instance is done. Ending a job's last
// running run starts the run that waits to replace it, if any.
func (s *Scheduler) finishRunIfDone(ctx context.Context, tx store.Tx, key job.Key, number int) error {
	r, err := tx.GetRun(ctx, key, number)
	if err != nil {
		return err
	}
	if r.State != job.Running {
		return nil
	}
	open, err := tx.CountTasks(ctx, store.TaskFilter{Job: &key, Run: number, States: []task.State{task.Pending, task.Assigned, task.Starting, task.Running}})
	if err != nil || open > 0 {
		return err
	}
	ts, err := tx.ListTasks(ctx, store.TaskFilter{Job: &key, Run: number})
	if err != nil {
		return err
	}
	last := lastAttempts(ts)
	counts := map[task.State]int{}
	killed := 0 // asked to stop, whatever end they reached first
	for _, t := range last {
		counts[t.State]++
		if t.KillRequested || t.State == task.Killed {
			killed++
		}
	}
	state := job.Failed
	switch {
	case counts[task.Succeeded] == len(last):
		state = job.Succeeded
	case killed > 0:
		// A task that exited on its own while its kill was on the way
		// still ends a run someone killed.
		state = job.Killed
	}
	var parts []string
	for _, st := range task.States {
		if counts[st] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[st], st))
		}
	}
	now := s.clock.Now()
	r.State, r.FinishedAt, r.Message = state, now, joinReasons(parts)
	if err := tx.PutRun(ctx, r); err != nil {
		return err
	}
	if err := tx.InsertEvents(ctx, event.Event{At: now, Job: key.String(), Run: number, To: string(state), Reason: event.JobFinished,
		Message: fmt.Sprintf("run %d (version %d) %s: %s", number, r.Version, state, r.Message)}); err != nil {
		return err
	}
	if err := s.startWaiting(ctx, tx, key, now); err != nil {
		return err
	}
	return s.refreshJob(ctx, tx, key, now)
}

// lastAttempts returns the newest task of each instance.
func lastAttempts(ts []task.Task) map[int]task.Task {
	last := map[int]task.Task{}
	for _, t := range ts {
		if cur, ok := last[t.Instance]; !ok || t.Attempt > cur.Attempt {
			last[t.Instance] = t
		}
	}
	return last
}

// startWaiting gives the oldest WAITING run of a job its tasks once no run
// of the job is RUNNING.
func (s *Scheduler) startWaiting(ctx context.Context, tx store.Tx, key job.Key, now time.Time) error {
	active, err := tx.ListRuns(ctx, store.RunFilter{Job: key, Active: true})
	if err != nil {
		return err
	}
	var waiting []job.Run
	for _, r := range active {
		if r.State == job.Running {
			return nil
		}
		waiting = append(waiting, r)
	}
	if len(waiting) == 0 {
		return nil
	}
	r := waiting[len(waiting)-1] // newest first
	spec, err := s.spec(ctx, tx, key, r.Version)
	if err != nil {
		return err
	}
	r.State = job.Running
	if err := tx.PutRun(ctx, r); err != nil {
		return err
	}
	n, err := s.startTasks(ctx, tx, r, spec, now)
	if err != nil {
		return err
	}
	return tx.InsertEvents(ctx, event.Event{At: now, Job: key.String(), Run: r.Number, From: string(job.Waiting), To: string(job.Running),
		Reason: event.JobSubmitted, Message: fmt.Sprintf("run %d (version %d): the runs it replaces have ended: %d instances", r.Number, r.Version, n)})
}

// refreshJob stores the job's state as its runs give it: RUNNING while any
// run is active, else its newest run's end state, else SCHEDULED.
func (s *Scheduler) refreshJob(ctx context.Context, tx store.Tx, key job.Key, now time.Time) error {
	j, err := tx.GetJob(ctx, key)
	if err != nil {
		return err
	}
	state := job.Scheduled
	if active, err := tx.ListRuns(ctx, store.RunFilter{Job: key, Active: true, Limit: 1}); err != nil {
		return err
	} else if len(active) > 0 {
		state = job.Running
	} else if newest, err := tx.ListRuns(ctx, store.RunFilter{Job: key, Limit: 1}); err != nil {
		return err
	} else if len(newest) > 0 {
		state = newest[0].State
	}
	if j.State == state {
		return nil
	}
	j.State, j.UpdatedAt = state, now
	return tx.PutJob(ctx, j)
}

// RerunRequest asks for an ended run of a job to run again.
type RerunRequest struct {
	// Run is the run to repeat; 0 means the newest.
	Run int
	// Instances limits the rerun to these instances.
	Instances []int
	// Failed limits it to the instances that did not succeed.
	Failed bool
}

// Rerun runs an ended run of a job again as a new run, with the same
// resolved version. It refuses while any run of the job is active.
func (s *Scheduler) Rerun(ctx context.Context, key job.Key, req RerunRequest) (SubmitResult, error) {
	var res SubmitResult
	err := s.store.Update(ctx, func(tx store.Tx) error {
		res = SubmitResult{}
		active, err := tx.ListRuns(ctx, store.RunFilter{Job: key, Active: true, Limit: 1})
		if err != nil {
			return err
		}
		if len(active) > 0 {
			return &ConflictError{Msg: fmt.Sprintf("job %s has run %d still %s; rerun runs an ended run again: kill it or wait for it to end", key, active[0].Number, active[0].State)}
		}
		var src job.Run
		if req.Run == 0 {
			runs, err := tx.ListRuns(ctx, store.RunFilter{Job: key, Limit: 1})
			if err != nil {
				return err
			}
			if len(runs) == 0 {
				return fmt.Errorf("job %s has no run yet: %w", key, store.ErrNotFound)
			}
			src = runs[0]
		} else if src, err = tx.GetRun(ctx, key, req.Run); err != nil {
			return err
		}
		spec, err := s.spec(ctx, tx, key, src.Version)
		if err != nil {
			return err
		}
		insts := slices.Clone(req.Instances)
		slices.Sort(insts)
		insts = slices.Compact(insts)
		for _, i := range insts {
			if i < 0 || i >= spec.Instances {
				return job.Fieldf("instance", "run %d of job %s has instances 0 to %d; there is no instance %d", src.Number, key, spec.Instances-1, i)
			}
		}
		if req.Failed {
			ts, err := tx.ListTasks(ctx, store.TaskFilter{Job: &key, Run: src.Number})
			if err != nil {
				return err
			}
			want := map[int]bool{}
			for _, i := range insts {
				want[i] = true
			}
			var failed []int
			for inst, t := range lastAttempts(ts) {
				if t.State != task.Succeeded && (len(want) == 0 || want[inst]) {
					failed = append(failed, inst)
				}
			}
			if len(failed) == 0 {
				return job.Fieldf("failed", "run %d of job %s has no instance that did not succeed", src.Number, key)
			}
			slices.Sort(failed)
			insts = failed
		}
		if len(insts) == spec.Instances {
			insts = nil // all of them
		}
		r, err := s.newRun(ctx, tx, spec, runRequest{Trigger: job.ByRerun, Version: src.Version, Of: src.Number, Instances: insts})
		if err != nil {
			return err
		}
		return s.existing(ctx, tx, r, &res)
	})
	if err != nil {
		return SubmitResult{}, fmt.Errorf("rerun %s: %w", key, err)
	}
	res.Created = true
	s.afterRuns()
	return res, nil
}
