package server

import (
	"maps"
	"time"

	"github.com/drover-dev/drover/internal/api"
	"github.com/drover-dev/drover/internal/event"
	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/node"
	"github.com/drover-dev/drover/internal/scheduler"
	"github.com/drover-dev/drover/internal/task"
)

// The edge: one named function per direction between wire and domain types.

func toAPITask(t task.Task) api.Task {
	return api.Task{
		ID: t.ID, Job: t.Job.String(), JobVersion: t.JobVersion, Run: t.Run, Instance: t.Instance, Attempt: t.Attempt,
		State: string(t.State), Node: t.Node, KillRequested: t.KillRequested, ExitCode: t.ExitCode,
		Reason: string(t.Reason), Message: t.Message, CreatedAt: t.CreatedAt, StartedAt: t.StartedAt, FinishedAt: t.FinishedAt,
	}
}

func toAPIJob(j job.Job, run job.Run, spec job.Spec, tasks []task.Task, index int64) api.Job {
	out := api.Job{
		Key: j.Key.String(), Version: j.Version, Run: run.Number, RunState: string(run.State), Type: string(j.Type),
		State: string(j.State), Instances: spec.Instances,
		Counts: map[string]int{}, CreatedAt: j.CreatedAt, UpdatedAt: j.UpdatedAt, EventIndex: index,
	}
	for _, t := range lastPerInstance(tasks) {
		out.Counts[string(t.State)]++
	}
	for _, t := range tasks {
		out.Tasks = append(out.Tasks, toAPITask(t))
	}
	return out
}

// lastPerInstance keeps the newest task of each instance.
func lastPerInstance(ts []task.Task) map[int]task.Task {
	last := map[int]task.Task{}
	for _, t := range ts {
		if cur, ok := last[t.Instance]; !ok || t.Attempt > cur.Attempt {
			last[t.Instance] = t
		}
	}
	return last
}

func toAPINode(n node.Node, allocated job.Resources, tasks int) api.Node {
	return api.Node{
		Name: n.Name, State: string(n.State), Pool: n.Attributes["pool"], Attributes: maps.Clone(n.Attributes),
		Capacity:  api.Resources{CPU: n.Capacity.CPU, Memory: n.Capacity.Memory},
		Allocated: api.Resources{CPU: allocated.CPU, Memory: allocated.Memory},
		Tasks:     tasks, Version: n.Version, LastSeen: n.LastSeen,
	}
}

func toAPIEvent(e event.Event) api.Event {
	return api.Event{ID: e.ID, At: e.At, Job: e.Job, TaskID: e.TaskID, Node: e.Node, From: e.From, To: e.To,
		Reason: string(e.Reason), Message: e.Message, Actor: e.Actor, Source: e.Source}
}

func fromAPISync(req api.SyncRequest, address string) (scheduler.Report, error) {
	if !job.ValidName(req.Node.Name) {
		return scheduler.Report{}, badRequestf("node.name", "%q %s", req.Node.Name, job.NameRule)
	}
	if req.Node.Capacity.CPU < 0 || req.Node.Capacity.Memory < 0 {
		return scheduler.Report{}, badRequestf("node.capacity", "must not be negative")
	}
	r := scheduler.Report{Seq: req.Seq, Node: node.Node{
		Name: req.Node.Name, Address: address, Attributes: maps.Clone(req.Node.Attributes),
		Capacity: job.Resources{CPU: req.Node.Capacity.CPU, Memory: req.Node.Capacity.Memory}, Version: req.Node.Version,
	}}
	// A task reported twice would be moved twice from the state read
	// once, and the compare-and-set would refuse the whole sync.
	seen := make(map[string]bool, len(req.Tasks))
	for i, st := range req.Tasks {
		if seen[st.TaskID] {
			return scheduler.Report{}, badRequestf("tasks["+itoa(i)+"].task_id", "%q is reported twice", st.TaskID)
		}
		seen[st.TaskID] = true
		state, err := task.ParseState(st.State)
		if err != nil || state == task.Pending {
			return scheduler.Report{}, badRequestf("tasks["+itoa(i)+"].state", "%q is not a state an agent reports", st.State)
		}
		r.Statuses = append(r.Statuses, scheduler.Status{
			TaskID: st.TaskID, State: state, ExitCode: st.ExitCode, Reason: event.Reason(st.Reason),
			Message: st.Message, StartedAt: st.StartedAt, FinishedAt: st.FinishedAt,
		})
	}
	return r, nil
}

func toAPIOrders(o scheduler.Orders) api.SyncResponse {
	var out api.SyncResponse
	for _, a := range o.Assign {
		var at *time.Time
		if !a.ScheduledAt.IsZero() {
			t := a.ScheduledAt
			at = &t
		}
		out.Assign = append(out.Assign, api.Assignment{
			TaskID: a.Task.ID, Job: a.Task.Job.String(), JobVersion: a.Task.JobVersion, Run: a.Task.Run, ScheduledAt: at,
			Instance: a.Task.Instance,
			Attempt:  a.Task.Attempt, Command: a.Spec.Task.Command, Env: a.Spec.Task.Env,
			Timeout: api.Duration(a.Spec.Task.Timeout), KillGrace: api.Duration(a.Spec.Task.KillGrace),
			Resources: api.Resources{CPU: a.Task.Resources.CPU, Memory: a.Task.Resources.Memory},
			Ports:     a.Spec.Task.Ports,
			Health:    toAPIHealth(a.Spec.Task.Health),
		})
	}
	for _, k := range o.Kill {
		out.Kill = append(out.Kill, api.KillOrder{TaskID: k.TaskID, Reason: k.Reason})
	}
	out.Ack = o.Ack
	return out
}

func toAPIHealth(h *job.Health) *api.HealthCheck {
	if h == nil {
		return nil
	}
	return &api.HealthCheck{Command: h.Command, HTTP: h.HTTP, Interval: api.Duration(h.Interval),
		Timeout: api.Duration(h.Timeout), Failures: h.Failures}
}
