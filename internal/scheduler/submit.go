package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/drover-dev/drover/internal/event"
	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/param"
	"github.com/drover-dev/drover/internal/store"
	"github.com/drover-dev/drover/internal/task"
)

// SubmitResult says what a submission did.
type SubmitResult struct {
	Key     job.Key
	Version int
	// Run is the run the submission made or answered (0 for a scheduled
	// job, which runs at its fire times).
	Run int
	// Created is false when the submission was a repeat: the same
	// idempotency key, or the same spec while the job still runs.
	Created bool
	Tasks   []string
	// Schedule is the job's schedule entry when the spec has one, and
	// Next its next fire time.
	Schedule *job.CronEntry
	Next     time.Time
}

// Submit accepts a validated spec. A spec without a schedule runs now: a
// new key, or a key whose runs have all ended, gets a new run (of the
// newest version when the spec is the same, else of a new version); a key
// whose job still runs answers the active run if the spec is the same and
// a [ConflictError] if it differs. A spec with a schedule makes no run: it
// sets the job's schedule (see [Scheduler.FireDue]). When Submit returns
// nil, the job is committed: it survives a crash.
//
// References to the role's parameters ({{ .Params.NAME }}) are resolved
// in the same transaction (see [param.Render]): the stored version is the
// resolved spec, with secret values left as markers.
func (s *Scheduler) Submit(ctx context.Context, raw job.Spec, idempotencyKey string) (SubmitResult, error) {
	return s.submit(ctx, raw, nil, idempotencyKey)
}

// Launch runs the job of a template now, like [Scheduler.Submit] (a
// schedule in it is not set; the template's own schedule fires it): its
// references to the template's inputs ({{ .Inputs.NAME }}) are resolved
// against inputs, the value of each input the template declares, in the
// same pass as those to parameters (see [param.RenderInputs]). The
// stored version is the resolved spec.
func (s *Scheduler) Launch(ctx context.Context, raw job.Spec, inputs map[string]string) (SubmitResult, error) {
	if inputs == nil {
		inputs = map[string]string{}
	}
	return s.submit(ctx, raw, inputs, "")
}

// submit is Submit, and Launch when inputs is not nil.
func (s *Scheduler) submit(ctx context.Context, raw job.Spec, inputs map[string]string, idempotencyKey string) (SubmitResult, error) {
	if err := raw.Validate(); err != nil {
		return SubmitResult{}, err
	}
	var res SubmitResult
	created := false
	err := s.store.Update(ctx, func(tx store.Tx) error {
		res, created = SubmitResult{}, false
		spec, err := s.resolve(ctx, tx, raw, inputs)
		if err != nil {
			return err
		}
		if spec.Schedule != nil && inputs == nil {
			created = true
			return s.setSchedule(ctx, tx, raw, spec, "", nil, &res)
		}
		if idempotencyKey != "" {
			r, err := tx.FindRun(ctx, idempotencyKey)
			switch {
			case err == nil:
				// A repeat is the same request. Answering the first
				// result to a different job would say "accepted" of a
				// job that was never stored.
				v, err := tx.GetJobVersion(ctx, r.Job, r.Version)
				if err != nil {
					return err
				}
				if r.Job != spec.Key || !sameSpec(v.Spec, spec) {
					return &ConflictError{Msg: fmt.Sprintf("idempotency key %q was already used to submit a different spec (job %s run %d); use a new key", idempotencyKey, r.Job, r.Number)}
				}
				return s.existing(ctx, tx, r, &res)
			case !errors.Is(err, store.ErrNotFound):
				return err
			}
		}
		active, err := tx.ListRuns(ctx, store.RunFilter{Job: spec.Key, Active: true})
		if err != nil {
			return err
		}
		if len(active) > 0 {
			cur := active[0]
			old, err := s.spec(ctx, tx, cur.Job, cur.Version)
			if err != nil {
				return err
			}
			if sameSpec(old, spec) {
				return s.existing(ctx, tx, cur, &res)
			}
			return &ConflictError{Msg: fmt.Sprintf("job %s is still running run %d (version %d) with a different spec; kill it or wait for it to end, then submit again", spec.Key, cur.Number, cur.Version)}
		}
		trigger := job.BySubmit
		if inputs != nil {
			trigger = job.ByLaunch
		}
		r, err := s.newRun(ctx, tx, spec, runRequest{Trigger: trigger, IdempotencyKey: idempotencyKey})
		if err != nil {
			return err
		}
		created = true
		return s.existing(ctx, tx, r, &res)
	})
	if err != nil {
		return SubmitResult{}, fmt.Errorf("submit %s: %w", raw.Key, err)
	}
	if created {
		res.Created = true
		s.afterRuns()
	}
	return res, nil
}

// afterRuns tells agents and the placement loop that runs may have
// changed.
func (s *Scheduler) afterRuns() {
	s.broadcast()
	s.Wake()
}

// resolve renders a spec's parameter references against its role's
// parameters, and its input references against inputs when they are not
// nil; a spec without any is returned as it is.
func (s *Scheduler) resolve(ctx context.Context, tx store.Reader, spec job.Spec, inputs map[string]string) (job.Spec, error) {
	byName := map[string]param.Param{}
	if param.Uses(spec) {
		ps, err := tx.ListParams(ctx, spec.Key.Role)
		if err != nil {
			return job.Spec{}, err
		}
		for _, p := range ps {
			byName[p.Name] = p
		}
	}
	render := param.Render
	if inputs != nil {
		render = func(s job.Spec, ps map[string]param.Param) (job.Spec, error) {
			return param.RenderInputs(s, ps, inputs)
		}
	}
	out, err := render(spec, byName)
	if err != nil {
		return job.Spec{}, err
	}
	// A value may have emptied the program name or brought a NUL.
	return out, out.Validate()
}

// existing answers a submission with a run's result: the tasks that made
// the run (attempt 1 of each instance), not the retries made since.
func (s *Scheduler) existing(ctx context.Context, tx store.Tx, r job.Run, res *SubmitResult) error {
	ts, err := tx.ListTasks(ctx, store.TaskFilter{Job: &r.Job, Run: r.Number})
	if err != nil {
		return err
	}
	*res = SubmitResult{Key: r.Job, Version: r.Version, Run: r.Number}
	for _, t := range ts {
		if t.Attempt == 1 {
			res.Tasks = append(res.Tasks, t.ID)
		}
	}
	return nil
}

func sameSpec(a, b job.Spec) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(ja) == string(jb)
}

// Kill asks every unfinished task of a job's active runs (or of the given
// instances) to stop; a run still waiting for the runs it replaces ends at
// once. PENDING tasks end at once; tasks on nodes are marked and their
// agents told. It returns the tasks asked to stop. A schedule stays: it
// fires again at its next time (pause it to stop that).
func (s *Scheduler) Kill(ctx context.Context, key job.Key, instances []int) ([]string, error) {
	var ids, nodes []string
	err := s.store.Update(ctx, func(tx store.Tx) error {
		ids, nodes = nil, nil
		j, err := tx.GetJob(ctx, key)
		if err != nil {
			return err
		}
		spec, err := s.spec(ctx, tx, key, j.Version)
		if err != nil {
			return err
		}
		want := map[int]bool{}
		for _, i := range instances {
			if i < 0 || i >= spec.Instances {
				return job.Fieldf("instances", "job %s has instances 0 to %d; there is no instance %d", key, spec.Instances-1, i)
			}
			want[i] = true
		}
		runs, err := tx.ListRuns(ctx, store.RunFilter{Job: key, Active: true})
		if err != nil {
			return err
		}
		now := s.clock.Now()
		for _, r := range runs {
			i, n, err := s.killRun(ctx, tx, r, want, "killed on request")
			if err != nil {
				return err
			}
			ids, nodes = append(ids, i...), append(nodes, n...)
		}
		return s.refreshJob(ctx, tx, key, now)
	})
	if err != nil {
		return nil, fmt.Errorf("kill %s: %w", key, err)
	}
	s.mu.Lock()
	for _, id := range ids {
		delete(s.unplaceable, id)
	}
	s.mu.Unlock()
	s.broadcast(nodes...)
	return ids, nil
}

// killRun asks the unfinished tasks of an active run (of the instances in
// want, or all) to stop and ends the run if that ended its last task; a
// WAITING run ends at once. It returns the tasks asked to stop and the
// nodes to tell.
func (s *Scheduler) killRun(ctx context.Context, tx store.Tx, r job.Run, want map[int]bool, why string) (ids, nodes []string, err error) {
	now := s.clock.Now()
	if r.State == job.Waiting {
		r.State, r.FinishedAt, r.Message = job.Killed, now, why+" before it started"
		if err := tx.PutRun(ctx, r); err != nil {
			return nil, nil, err
		}
		return nil, nil, tx.InsertEvents(ctx, event.Event{At: now, Job: r.Job.String(), Run: r.Number, To: string(job.Killed),
			Reason: event.JobFinished, Message: fmt.Sprintf("run %d (version %d) %s", r.Number, r.Version, r.Message)})
	}
	ts, err := tx.ListTasks(ctx, store.TaskFilter{Job: &r.Job, Run: r.Number, States: []task.State{task.Pending, task.Assigned, task.Starting, task.Running}})
	if err != nil {
		return nil, nil, err
	}
	ended := false
	for _, t := range ts {
		if len(want) > 0 && !want[t.Instance] {
			continue
		}
		ids = append(ids, t.ID)
		if t.State == task.Pending {
			t.KillRequested = true
			ch, err := task.Move(t, task.Killed, now, event.KillRequest, why+" before it was placed")
			if err != nil {
				return nil, nil, err
			}
			if err := s.apply(ctx, tx, ch); err != nil {
				return nil, nil, err
			}
			ended = true
			continue
		}
		if t.KillRequested {
			continue
		}
		t.KillRequested = true
		t.UpdatedAt = now
		if err := tx.UpdateTask(ctx, t, t.State); err != nil {
			return nil, nil, err
		}
		if err := tx.InsertEvents(ctx, event.Event{At: now, Job: r.Job.String(), TaskID: t.ID, Node: t.Node,
			Reason: event.KillRequest, Message: why + " while " + string(t.State)}); err != nil {
			return nil, nil, err
		}
		nodes = append(nodes, t.Node)
	}
	if ended {
		if err := s.finishRunIfDone(ctx, tx, r.Job, r.Number); err != nil {
			return nil, nil, err
		}
	}
	return ids, nodes, nil
}

// apply stores one change and its event.
func (s *Scheduler) apply(ctx context.Context, tx store.Tx, ch task.Change) error {
	if err := tx.UpdateTask(ctx, ch.Task, ch.Expect); err != nil {
		return err
	}
	return tx.InsertEvents(ctx, ch.Event)
}
