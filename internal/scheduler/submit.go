package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

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
	// Created is false when the submission was a repeat: the same
	// idempotency key, or the same spec while the job still runs.
	Created bool
	Tasks   []string
}

// Submit accepts a validated spec. A new key creates version 1; a key whose
// job has ended gets a new version that runs again; a key whose job still
// runs answers the existing version if the spec is the same and a
// [ConflictError] if it differs. When Submit returns nil, the job is
// committed: it survives a crash.
//
// References to the role's parameters ({{ .Params.NAME }}) are resolved
// in the same transaction (see [param.Render]): the stored version is the
// resolved spec, with secret values left as markers.
func (s *Scheduler) Submit(ctx context.Context, raw job.Spec, idempotencyKey string) (SubmitResult, error) {
	return s.submit(ctx, raw, nil, idempotencyKey)
}

// Launch submits the job of a template, like [Scheduler.Submit]: its
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
	err := s.store.Update(ctx, func(tx store.Tx) error {
		res = SubmitResult{}
		spec, err := s.resolve(ctx, tx, raw, inputs)
		if err != nil {
			return err
		}
		if idempotencyKey != "" {
			v, err := tx.FindIdempotencyKey(ctx, idempotencyKey)
			switch {
			case err == nil:
				// A repeat is the same request. Answering the first
				// result to a different job would say "accepted" of a
				// job that was never stored.
				if v.Key != spec.Key || !sameSpec(v.Spec, spec) {
					return &ConflictError{Msg: fmt.Sprintf("idempotency key %q was already used to submit a different spec (job %s version %d); use a new key", idempotencyKey, v.Key, v.Version)}
				}
				return s.existing(ctx, tx, v.Key, v.Version, &res)
			case !errors.Is(err, store.ErrNotFound):
				return err
			}
		}
		now := s.clock.Now()
		version := 1
		created := now
		var cur job.Job
		cur, err = tx.GetJob(ctx, spec.Key)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return err
		default:
			created = cur.CreatedAt
			if !cur.State.IsTerminal() {
				old, err := tx.GetJobVersion(ctx, cur.Key, cur.Version)
				if err != nil {
					return err
				}
				if sameSpec(old.Spec, spec) {
					return s.existing(ctx, tx, cur.Key, cur.Version, &res)
				}
				return &ConflictError{Msg: fmt.Sprintf("job %s is still running version %d with a different spec; kill it or wait for it to end, then submit again", spec.Key, cur.Version)}
			}
			version = cur.Version + 1
		}
		if err := tx.InsertJobVersion(ctx, job.Version{Key: spec.Key, Version: version, Spec: spec, IdempotencyKey: idempotencyKey, CreatedAt: now}); err != nil {
			return err
		}
		if err := tx.PutJob(ctx, job.Job{Key: spec.Key, Version: version, Type: spec.Type, State: job.Running, CreatedAt: created, UpdatedAt: now}); err != nil {
			return err
		}
		tasks := make([]task.Task, spec.Instances)
		events := make([]event.Event, 0, spec.Instances+1)
		events = append(events, event.Event{At: now, Job: spec.Key.String(), Reason: event.JobSubmitted,
			Message: fmt.Sprintf("version %d, %d instances", version, spec.Instances)})
		res = SubmitResult{Key: spec.Key, Version: version, Created: true}
		for i := range tasks {
			tasks[i] = task.Task{
				ID: s.newID(), Job: spec.Key, JobVersion: version, Instance: i, Attempt: 1,
				State: task.Pending, Priority: spec.Priority, Resources: spec.Task.Resources,
				Reason: event.Submitted, CreatedAt: now, NotBefore: now, UpdatedAt: now,
			}
			events = append(events, event.Event{At: now, Job: spec.Key.String(), TaskID: tasks[i].ID,
				To: string(task.Pending), Reason: event.Submitted, Message: fmt.Sprintf("instance %d attempt 1", i)})
			res.Tasks = append(res.Tasks, tasks[i].ID)
		}
		if err := tx.InsertTasks(ctx, tasks...); err != nil {
			return err
		}
		return tx.InsertEvents(ctx, events...)
	})
	if err != nil {
		return SubmitResult{}, fmt.Errorf("submit %s: %w", raw.Key, err)
	}
	if res.Created {
		s.broadcast()
		s.Wake()
	}
	return res, nil
}

// resolve renders a spec's parameter references against its role's
// parameters, and its input references against inputs when they are not
// nil; a spec without any is returned as it is.
func (s *Scheduler) resolve(ctx context.Context, tx store.Tx, spec job.Spec, inputs map[string]string) (job.Spec, error) {
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

// existing answers a repeated submission with the first one's result: the
// tasks that submission created (attempt 1 of each instance), not the
// retries made since.
func (s *Scheduler) existing(ctx context.Context, tx store.Tx, key job.Key, version int, res *SubmitResult) error {
	ts, err := tx.ListTasks(ctx, store.TaskFilter{Job: &key, JobVersion: version})
	if err != nil {
		return err
	}
	*res = SubmitResult{Key: key, Version: version}
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

// Kill asks every unfinished task of a job (or of the given instances) to
// stop. PENDING tasks end at once; tasks on nodes are marked and their
// agents told. It returns the tasks asked to stop.
func (s *Scheduler) Kill(ctx context.Context, key job.Key, instances []int) ([]string, error) {
	var ids, nodes []string
	var ended bool
	err := s.store.Update(ctx, func(tx store.Tx) error {
		ids, nodes, ended = nil, nil, false
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
		ts, err := tx.ListTasks(ctx, store.TaskFilter{Job: &key, JobVersion: j.Version, States: []task.State{task.Pending, task.Assigned, task.Starting, task.Running}})
		if err != nil {
			return err
		}
		now := s.clock.Now()
		for _, t := range ts {
			if len(want) > 0 && !want[t.Instance] {
				continue
			}
			ids = append(ids, t.ID)
			if t.State == task.Pending {
				t.KillRequested = true
				ch, err := task.Move(t, task.Killed, now, event.KillRequest, "killed before it was placed")
				if err != nil {
					return err
				}
				if err := s.apply(ctx, tx, ch); err != nil {
					return err
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
				return err
			}
			if err := tx.InsertEvents(ctx, event.Event{At: now, Job: key.String(), TaskID: t.ID, Node: t.Node,
				Reason: event.KillRequest, Message: "kill requested while " + string(t.State)}); err != nil {
				return err
			}
			nodes = append(nodes, t.Node)
		}
		if ended {
			return s.finishJobIfDone(ctx, tx, key, j.Version)
		}
		return nil
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

// apply stores one change and its event.
func (s *Scheduler) apply(ctx context.Context, tx store.Tx, ch task.Change) error {
	if err := tx.UpdateTask(ctx, ch.Task, ch.Expect); err != nil {
		return err
	}
	return tx.InsertEvents(ctx, ch.Event)
}

// finishJobIfDone ends a job version whose tasks have all ended. A retry is
// created in the same transaction as the failure it follows, so "no task
// left unfinished" means every instance is done.
func (s *Scheduler) finishJobIfDone(ctx context.Context, tx store.Tx, key job.Key, version int) error {
	j, err := tx.GetJob(ctx, key)
	if err != nil {
		return err
	}
	if j.Version != version || j.State.IsTerminal() {
		return nil
	}
	open, err := tx.CountTasks(ctx, store.TaskFilter{Job: &key, JobVersion: version, States: []task.State{task.Pending, task.Assigned, task.Starting, task.Running}})
	if err != nil || open > 0 {
		return err
	}
	ts, err := tx.ListTasks(ctx, store.TaskFilter{Job: &key, JobVersion: version})
	if err != nil {
		return err
	}
	last := map[int]task.Task{}
	for _, t := range ts {
		if cur, ok := last[t.Instance]; !ok || t.Attempt > cur.Attempt {
			last[t.Instance] = t
		}
	}
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
		// still ends a job someone killed.
		state = job.Killed
	}
	now := s.clock.Now()
	j.State, j.UpdatedAt = state, now
	if err := tx.PutJob(ctx, j); err != nil {
		return err
	}
	var parts []string
	for _, st := range task.States {
		if counts[st] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[st], st))
		}
	}
	return tx.InsertEvents(ctx, event.Event{At: now, Job: key.String(), To: string(state), Reason: event.JobFinished,
		Message: fmt.Sprintf("version %d %s: %s", version, state, joinReasons(parts))})
}
