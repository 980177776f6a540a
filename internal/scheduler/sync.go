package scheduler

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/drover-dev/drover/internal/event"
	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/node"
	"github.com/drover-dev/drover/internal/store"
	"github.com/drover-dev/drover/internal/task"
)

// Report is what an agent says in one sync: who it is, and every task it
// holds with what it knows of it.
type Report struct {
	Node node.Node // Name, Address, Attributes, Capacity, Version
	// Seq orders an agent's reports; see api.SyncRequest.Seq. Zero is
	// always applied.
	Seq      uint64
	Statuses []Status
}

// Status is the agent's view of one task.
type Status struct {
	TaskID     string
	State      task.State
	ExitCode   *int
	Reason     event.Reason
	Message    string
	StartedAt  *time.Time
	FinishedAt *time.Time
}

// Orders is what the server tells an agent.
type Orders struct {
	Assign []Assignment
	Kill   []KillOrder
	Ack    []string
}

// Empty reports whether there is nothing to tell.
func (o Orders) Empty() bool { return len(o.Assign) == 0 && len(o.Kill) == 0 && len(o.Ack) == 0 }

// Assignment tells an agent to run a task with a spec.
type Assignment struct {
	Task task.Task
	Spec job.Spec
	// ScheduledAt is the fire time of the task's run (zero when no
	// schedule made it); the task sees it as DROVER_SCHEDULED_AT.
	ScheduledAt time.Time
}

// assignment builds the order to start t.
func (s *Scheduler) assignment(ctx context.Context, r store.Reader, t task.Task) (Assignment, error) {
	spec, err := s.spec(ctx, r, t.Job, t.JobVersion)
	if err != nil {
		return Assignment{}, err
	}
	a := Assignment{Task: t, Spec: spec}
	if t.Run > 0 {
		run, err := r.GetRun(ctx, t.Job, t.Run)
		if err != nil {
			return Assignment{}, err
		}
		a.ScheduledAt = run.ScheduledAt
	}
	return a, nil
}

// KillOrder tells an agent to stop a task.
type KillOrder struct {
	TaskID string
	Reason string
}

// Sync applies an agent's report and returns its orders. It is the
// heartbeat: the node's last-seen time moves with every call. Statuses are
// applied through the transition table; a status for a task the server no
// longer expects on this node (the fencing token is the task ID) changes
// nothing and earns a kill order.
func (s *Scheduler) Sync(ctx context.Context, r Report) (Orders, error) {
	s.heardFrom(r.Node.Name)
	if !s.newerReport(r) {
		return s.PendingOrders(ctx, r)
	}
	var orders Orders
	var freed, fenced bool
	err := s.store.Update(ctx, func(tx store.Tx) error {
		orders, freed, fenced = Orders{}, false, false
		now := s.clock.Now()
		joined, err := s.heartbeat(ctx, tx, r.Node, now)
		if err != nil {
			return err
		}
		// A node that joins or comes back is capacity pending tasks may
		// be waiting for.
		freed = joined
		active, err := tx.ListTasks(ctx, store.TaskFilter{Node: r.Node.Name, States: []task.State{task.Assigned, task.Starting, task.Running}})
		if err != nil {
			return err
		}
		byID := make(map[string]task.Task, len(active))
		for _, t := range active {
			byID[t.ID] = t
		}
		reported := map[string]bool{}
		touched := map[RunKey]bool{}
		for _, st := range r.Statuses {
			reported[st.TaskID] = true
			t, ok := byID[st.TaskID]
			if !ok {
				if s.staleStatus(ctx, tx, r.Node.Name, st, &orders) {
					fenced = true
				}
				continue
			}
			if st.State == t.State {
				if t.KillRequested {
					orders.Kill = append(orders.Kill, KillOrder{TaskID: t.ID, Reason: "kill requested"})
				}
				continue
			}
			path, err := task.Path(t.State, st.State)
			if err != nil {
				// The agent is behind the server (a late report); the
				// server's state stands.
				s.log.DebugContext(ctx, "ignored status", "task", t.ID, "server", t.State, "agent", st.State)
				continue
			}
			for _, to := range path {
				reason, msg := stepReason(to, st)
				if to == st.State && st.ExitCode != nil {
					t.ExitCode = st.ExitCode
				}
				if to == task.Running && st.StartedAt != nil {
					t.StartedAt = st.StartedAt
				}
				if to.IsTerminal() && st.FinishedAt != nil {
					t.FinishedAt = st.FinishedAt
				}
				ch, err := task.Move(t, to, now, reason, msg)
				if err != nil {
					return err
				}
				if err := s.apply(ctx, tx, ch); err != nil {
					return err
				}
				t = ch.Task
			}
			if t.State.IsTerminal() {
				orders.Ack = append(orders.Ack, t.ID)
				if err := s.ended(ctx, tx, t, now); err != nil {
					return err
				}
				touched[RunKey{t.Job, t.Run}] = true
				freed = true
			} else if t.KillRequested {
				orders.Kill = append(orders.Kill, KillOrder{TaskID: t.ID, Reason: "kill requested"})
			}
		}
		for _, t := range active {
			if reported[t.ID] {
				continue
			}
			switch {
			case t.State == task.Assigned && t.KillRequested:
				ch, err := task.Move(t, task.Killed, now, event.KillRequest, "killed before it started")
				if err != nil {
					return err
				}
				if err := s.apply(ctx, tx, ch); err != nil {
					return err
				}
				touched[RunKey{t.Job, t.Run}] = true
				freed = true
			case t.State == task.Assigned:
				a, err := s.assignment(ctx, tx, t)
				if err != nil {
					return err
				}
				orders.Assign = append(orders.Assign, a)
			default:
				if err := s.lose(ctx, tx, t, now, event.AgentLost, fmt.Sprintf("the agent on node %s no longer has the task", r.Node.Name)); err != nil {
					return err
				}
				touched[RunKey{t.Job, t.Run}] = true
				freed = true
			}
		}
		for rk := range touched {
			if err := s.finishRunIfDone(ctx, tx, rk.Job, rk.Run); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return Orders{}, fmt.Errorf("sync node %s: %w", r.Node.Name, err)
	}
	if fenced {
		// Fencing: a node that still runs tasks the server has given up
		// on (it was DOWN, or cut off) first kills them; it gets new work
		// in a later sync, once its report no longer holds them.
		orders.Assign = nil
	}
	if freed || len(r.Statuses) > 0 {
		s.broadcast()
	}
	if freed {
		s.Wake()
	}
	return orders, nil
}

// stepReason is the reason recorded for each step of a reported path.
func stepReason(to task.State, st Status) (event.Reason, string) {
	if to == st.State && st.Reason != "" {
		return st.Reason, st.Message
	}
	switch to {
	case task.Starting:
		return event.AgentStart, ""
	case task.Running:
		return event.Started, ""
	}
	return st.Reason, st.Message
}

// staleStatus answers a status for a task that is not active on the node:
// an end state is acked, a live one is killed. It reports whether it
// ordered a kill.
func (s *Scheduler) staleStatus(ctx context.Context, tx store.Tx, nodeName string, st Status, o *Orders) bool {
	t, err := tx.GetTask(ctx, st.TaskID)
	switch {
	case st.State.IsTerminal():
		// Whatever the server thinks, the agent is done with it.
		o.Ack = append(o.Ack, st.TaskID)
	case errors.Is(err, store.ErrNotFound) || (err == nil && t.Node != nodeName):
		o.Kill = append(o.Kill, KillOrder{TaskID: st.TaskID, Reason: "the server has no such task on this node"})
		return true
	case err == nil:
		o.Kill = append(o.Kill, KillOrder{TaskID: st.TaskID, Reason: fmt.Sprintf("the task is %s on the server", t.State)})
		return true
	}
	return false
}

// ended handles a task that reached an end state: a FAILED task whose job
// has retry budget left gets a new PENDING task for the same instance after
// the backoff, in the same transaction.
func (s *Scheduler) ended(ctx context.Context, tx store.Tx, t task.Task, now time.Time) error {
	s.mu.Lock()
	delete(s.unplaceable, t.ID)
	delete(s.avoid, t.ID)
	delete(s.prefer, t.ID)
	s.mu.Unlock()
	if t.KillRequested || t.State == task.Killed {
		return nil
	}
	spec, err := s.spec(ctx, tx, t.Job, t.JobVersion)
	if err != nil {
		return err
	}
	if spec.Type == job.Service {
		return s.restart(ctx, tx, t, spec, now)
	}
	if t.State == task.Lost {
		return s.reschedule(ctx, tx, t, spec, now)
	}
	if t.State != task.Failed {
		return nil
	}
	if t.Retries >= spec.Retry.Attempts {
		return tx.InsertEvents(ctx, event.Event{At: now, Job: t.Job.String(), TaskID: t.ID,
			Reason: event.Retry, Message: fmt.Sprintf("no retry left for instance %d (%d of %d used)", t.Instance, t.Retries, spec.Retry.Attempts)})
	}
	delay := spec.Retry.Delay(t.Retries + 1)
	next := task.Task{
		ID: s.newID(), Job: t.Job, JobVersion: t.JobVersion, Run: t.Run, Instance: t.Instance, Attempt: t.Attempt + 1,
		Retries: t.Retries + 1, Reschedules: t.Reschedules, State: task.Pending, Priority: t.Priority, Resources: t.Resources,
		Reason: event.Retry, CreatedAt: now, NotBefore: now.Add(delay), UpdatedAt: now,
	}
	if err := tx.InsertTasks(ctx, next); err != nil {
		return err
	}
	return tx.InsertEvents(ctx, event.Event{At: now, Job: t.Job.String(), TaskID: next.ID, To: string(task.Pending),
		Reason: event.Retry, Message: fmt.Sprintf("instance %d attempt %d: retry %d of %d after %s, because task %s %s (%s)",
			t.Instance, next.Attempt, next.Retries, spec.Retry.Attempts, delay, t.ID, t.State, t.Message)})
}

// reschedule gives a LOST task's instance a new task, elsewhere if it can
// be, while the job's reschedule budget allows. The budget is apart from
// retry: the fleet's failures do not use up the job's own.
func (s *Scheduler) reschedule(ctx context.Context, tx store.Tx, t task.Task, spec job.Spec, now time.Time) error {
	if t.Reschedules >= spec.Reschedule.Attempts {
		return tx.InsertEvents(ctx, event.Event{At: now, Job: t.Job.String(), TaskID: t.ID,
			Reason: event.Reschedule, Message: fmt.Sprintf("no reschedule left for instance %d (%d of %d used)", t.Instance, t.Reschedules, spec.Reschedule.Attempts)})
	}
	next := task.Task{
		ID: s.newID(), Job: t.Job, JobVersion: t.JobVersion, Run: t.Run, Instance: t.Instance, Attempt: t.Attempt + 1,
		Retries: t.Retries, Reschedules: t.Reschedules + 1, State: task.Pending, Priority: t.Priority, Resources: t.Resources,
		Reason: event.Reschedule, CreatedAt: now, NotBefore: now.Add(spec.Reschedule.Delay), UpdatedAt: now,
	}
	if err := tx.InsertTasks(ctx, next); err != nil {
		return err
	}
	s.avoidNode(next.ID, t.Node)
	return tx.InsertEvents(ctx, event.Event{At: now, Job: t.Job.String(), TaskID: next.ID, To: string(task.Pending),
		Reason: event.Reschedule, Message: fmt.Sprintf("instance %d attempt %d: reschedule %d of %d after %s, because task %s was LOST on node %s (%s)",
			t.Instance, next.Attempt, next.Reschedules, spec.Reschedule.Attempts, spec.Reschedule.Delay, t.ID, t.Node, t.Message)})
}

// restart keeps a service's instance running: whatever ended its task
// (an exit, a failed health check, a lost node) short of a kill, a new task
// follows after restart.delay. It goes back to the same node while fewer
// than restart.attempts restarts happened there within restart.interval,
// and elsewhere after that; a LOST task always goes elsewhere if it can.
func (s *Scheduler) restart(ctx context.Context, tx store.Tx, t task.Task, spec job.Spec, now time.Time) error {
	inst := t.Instance
	prev, err := tx.ListTasks(ctx, store.TaskFilter{Job: &t.Job, Run: t.Run, Instance: &inst})
	if err != nil {
		return err
	}
	recent := 0
	for _, p := range prev {
		if p.ID != t.ID && p.Node == t.Node && p.FinishedAt != nil && now.Sub(*p.FinishedAt) <= spec.Restart.Interval {
			recent++
		}
	}
	move := t.State == task.Lost || recent >= spec.Restart.Attempts
	next := task.Task{
		ID: s.newID(), Job: t.Job, JobVersion: t.JobVersion, Run: t.Run, Instance: t.Instance, Attempt: t.Attempt + 1,
		Retries: t.Retries, Reschedules: t.Reschedules, State: task.Pending, Priority: t.Priority, Resources: t.Resources,
		Reason: event.Restart, CreatedAt: now, NotBefore: now.Add(spec.Restart.Delay), UpdatedAt: now,
	}
	where := "on the same node if it fits"
	if move {
		next.Reschedules++
		where = "on another node if one fits"
		s.avoidNode(next.ID, t.Node)
	} else {
		s.preferNode(next.ID, t.Node)
	}
	if err := tx.InsertTasks(ctx, next); err != nil {
		return err
	}
	return tx.InsertEvents(ctx, event.Event{At: now, Job: t.Job.String(), TaskID: next.ID, To: string(task.Pending),
		Reason: event.Restart, Message: fmt.Sprintf("service instance %d attempt %d after %s, %s (%d restarts on %s within %s), because task %s %s (%s)",
			t.Instance, next.Attempt, spec.Restart.Delay, where, recent, t.Node, spec.Restart.Interval, t.ID, t.State, t.Message)})
}

// heartbeat records that a node synced. It reports whether the node joined
// the ready fleet just now: new, back from DOWN, or silent for so long that
// placement had stopped counting it.
func (s *Scheduler) heartbeat(ctx context.Context, tx store.Tx, in node.Node, now time.Time) (bool, error) {
	n, err := tx.GetNode(ctx, in.Name)
	joined := false
	switch {
	case errors.Is(err, store.ErrNotFound):
		joined = true
		n = node.Node{Name: in.Name, State: node.Ready, RegisteredAt: now}
		if err := tx.InsertEvents(ctx, event.Event{At: now, Node: in.Name, Reason: event.NodeRegistered,
			Message: fmt.Sprintf("cpu %d, memory %d", in.Capacity.CPU, in.Capacity.Memory)}); err != nil {
			return false, err
		}
	case err != nil:
		return false, err
	case n.State == node.Down:
		joined = !n.Drain
		n.State = node.Ready
		if n.Drain {
			n.State = node.Draining
		}
		if err := tx.InsertEvents(ctx, event.Event{At: now, Node: in.Name, Reason: event.NodeReturned}); err != nil {
			return false, err
		}
	case now.Sub(n.LastSeen) > s.nodeStale:
		joined = true
	}
	if n.Capacity != in.Capacity || !maps.Equal(n.Attributes, in.Attributes) {
		joined = true // new capacity or attributes may fit waiting tasks
	}
	if in.TokenID != "" {
		if n.TokenID != "" && n.TokenID != in.TokenID {
			return false, &ForbiddenError{Msg: fmt.Sprintf("node %s was registered with another agent token", in.Name)}
		}
		n.TokenID = in.TokenID
	}
	n.Address, n.Capacity, n.Version, n.LastSeen = in.Address, in.Capacity, in.Version, now
	n.Attributes = maps.Clone(in.Attributes)
	return joined, tx.PutNode(ctx, n)
}

// PendingOrders computes a node's orders from a report without changing
// anything. A held-open sync calls it when woken: the report it holds may
// be older than the agent's state, so it only hands out new assignments and
// kills, never judges a missing task lost.
func (s *Scheduler) PendingOrders(ctx context.Context, r Report) (Orders, error) {
	var orders Orders
	err := s.store.View(ctx, func(rd store.Reader) error {
		active, err := rd.ListTasks(ctx, store.TaskFilter{Node: r.Node.Name, States: []task.State{task.Assigned, task.Starting, task.Running}})
		if err != nil {
			return err
		}
		reported := map[string]bool{}
		for _, st := range r.Statuses {
			reported[st.TaskID] = true
		}
		for _, t := range active {
			switch {
			case reported[t.ID] && t.KillRequested:
				orders.Kill = append(orders.Kill, KillOrder{TaskID: t.ID, Reason: "kill requested"})
			case !reported[t.ID] && t.State == task.Assigned && !t.KillRequested:
				a, err := s.assignment(ctx, rd, t)
				if err != nil {
					return err
				}
				orders.Assign = append(orders.Assign, a)
			}
		}
		return nil
	})
	return orders, err
}

// newerReport reports whether r is newer than the last report applied for
// its node, and records it as the last one if so.
func (s *Scheduler) newerReport(r Report) bool {
	if r.Seq == 0 {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Seq <= s.lastSeq[r.Node.Name] {
		return false
	}
	s.lastSeq[r.Node.Name] = r.Seq
	return true
}
