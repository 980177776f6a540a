package scheduler

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/drover-dev/drover/internal/event"
	"github.com/drover-dev/drover/internal/node"
	"github.com/drover-dev/drover/internal/store"
	"github.com/drover-dev/drover/internal/task"
)

// Node liveness and the startup watchdog. Both deadlines are kept in the
// store, not in timers: a node's is its LastSeen plus the grace, a task's
// its UpdatedAt plus the start timeout. A restarted server so has them all
// at once, and honours the reconnection window before it judges any node.
// One check a second reads the few rows that are due (an index-free scan of
// nodes, and of the ASSIGNED and STARTING tasks, which are few).

func (s *Scheduler) livenessLoop(ctx context.Context) {
	s.tickLoop(ctx, livenessTick, "liveness check failed", s.CheckOnce)
}

// tickLoop calls fn every d until ctx ends, logging its failures as what.
func (s *Scheduler) tickLoop(ctx context.Context, d time.Duration, what string, fn func(context.Context) error) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := fn(ctx); err != nil && !errors.Is(err, context.Canceled) {
			s.logLoopError(ctx, what, err)
		}
	}
}

// Stats are counters of the scheduler's judgments since it started.
type Stats struct {
	TimedOutTasks int64 // tasks LOST by the startup watchdog
	NodesDown     int64 // nodes declared DOWN
}

// Stats returns the counters.
func (s *Scheduler) Stats() Stats {
	return Stats{TimedOutTasks: s.timedOut.Load(), NodesDown: s.nodesDown.Load()}
}

// CheckOnce declares DOWN every node silent for longer than the grace (once
// the reconnection window after start is over) and makes its tasks LOST;
// and makes LOST every task ASSIGNED or STARTING for longer than the start
// timeout. Lost tasks are rescheduled within their job's budget.
func (s *Scheduler) CheckOnce(ctx context.Context) error {
	now := s.clock.Now()
	var down []string
	var overdue []task.Task
	err := s.store.View(ctx, func(r store.Reader) error {
		if !now.Before(s.downAfter) {
			nodes, err := r.ListNodes(ctx)
			if err != nil {
				return err
			}
			for _, n := range nodes {
				if n.State != node.Down && now.Sub(s.lastHeard(n.Name, n.LastSeen)) > s.nodeStale {
					down = append(down, n.Name)
				}
			}
		}
		var err error
		overdue, err = r.ListTasks(ctx, store.TaskFilter{States: []task.State{task.Assigned, task.Starting}})
		return err
	})
	if err != nil {
		return err
	}
	late := overdue[:0]
	for _, t := range overdue {
		// No agent could report while the server was down, so the start
		// timeout counts from the later of the task's last change and the
		// scheduler's start, and ends no earlier than the reconnection
		// window: a task started just before a restart is not killed
		// before its agent had the chance to say so.
		since := t.UpdatedAt
		if since.Before(s.upSince) {
			since = s.upSince
		}
		if now.Sub(since) > s.startTimeout && !now.Before(s.downAfter) {
			late = append(late, t)
		}
	}
	if len(down) == 0 && len(late) == 0 {
		return nil
	}
	var changed bool
	var timedOut, nodesDown int64
	err = s.store.Update(ctx, func(tx store.Tx) error {
		changed, timedOut, nodesDown = false, 0, 0
		touched := map[RunKey]bool{}
		for _, name := range down {
			n, err := tx.GetNode(ctx, name)
			if err != nil {
				return err
			}
			// Read again inside the transaction: a sync may have come
			// in since the snapshot.
			if n.State == node.Down || now.Sub(s.lastHeard(n.Name, n.LastSeen)) <= s.nodeStale {
				continue
			}
			n.State = node.Down
			if err := tx.PutNode(ctx, n); err != nil {
				return err
			}
			silent := now.Sub(n.LastSeen).Round(time.Millisecond)
			if err := tx.InsertEvents(ctx, event.Event{At: now, Node: name, Reason: event.NodeDown,
				Message: fmt.Sprintf("no sync for %s (grace %s)", silent, s.nodeStale)}); err != nil {
				return err
			}
			nodesDown++
			ts, err := tx.ListTasks(ctx, store.TaskFilter{Node: name, States: []task.State{task.Assigned, task.Starting, task.Running}})
			if err != nil {
				return err
			}
			for _, t := range ts {
				if err := s.lose(ctx, tx, t, now, event.NodeDown, fmt.Sprintf("node %s is down: no sync for %s", name, silent)); err != nil {
					return err
				}
				touched[RunKey{t.Job, t.Run}] = true
			}
			changed = true
		}
		for _, t := range late {
			cur, err := tx.GetTask(ctx, t.ID)
			if err != nil {
				return err
			}
			if cur.State != t.State || cur.UpdatedAt != t.UpdatedAt {
				continue // moved since the snapshot
			}
			if err := s.lose(ctx, tx, cur, now, event.StartTimeout,
				fmt.Sprintf("still %s on node %s after %s (start timeout)", cur.State, cur.Node, s.startTimeout)); err != nil {
				return err
			}
			timedOut++
			touched[RunKey{t.Job, t.Run}] = true
			changed = true
		}
		for rk := range touched {
			if err := s.finishRunIfDone(ctx, tx, rk.Job, rk.Run); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("liveness: %w", err)
	}
	s.timedOut.Add(timedOut)
	s.nodesDown.Add(nodesDown)
	if changed {
		s.broadcast(down...)
		s.Wake()
	}
	return nil
}

// lose makes an active task LOST and reschedules its instance if the budget
// allows.
func (s *Scheduler) lose(ctx context.Context, tx store.Tx, t task.Task, now time.Time, reason event.Reason, msg string) error {
	ch, err := task.Move(t, task.Lost, now, reason, msg)
	if err != nil {
		return err
	}
	if err := s.apply(ctx, tx, ch); err != nil {
		return err
	}
	return s.ended(ctx, tx, ch.Task, now)
}

// Drain stops new work going to a node (running work finishes), or with
// drain false lets it take work again. The wish is kept apart from
// liveness: a DOWN node stays DOWN until it syncs, and then comes back
// DRAINING or READY as last asked.
func (s *Scheduler) Drain(ctx context.Context, name string, drain bool) (node.Node, error) {
	var out node.Node
	err := s.store.Update(ctx, func(tx store.Tx) error {
		n, err := tx.GetNode(ctx, name)
		if err != nil {
			return err
		}
		out = n
		if n.Drain == drain && (n.State == node.Down || (n.State == node.Draining) == drain) {
			return nil
		}
		n.Drain = drain
		if n.State != node.Down {
			n.State = node.Ready
			if drain {
				n.State = node.Draining
			}
		}
		if err := tx.PutNode(ctx, n); err != nil {
			return err
		}
		out = n
		reason, msg := event.NodeUndrain, ""
		if drain {
			reason = event.NodeDrain
		}
		if n.State == node.Down {
			back := node.Ready
			if drain {
				back = node.Draining
			}
			msg = "the node is DOWN; it comes back " + string(back)
		}
		return tx.InsertEvents(ctx, event.Event{At: s.clock.Now(), Node: name, Reason: reason, Message: msg})
	})
	if err != nil {
		return node.Node{}, fmt.Errorf("drain node %s: %w", name, err)
	}
	s.broadcast()
	if !drain {
		s.Wake()
	}
	return out, nil
}

// NodeGone declares a node DOWN at once because its machine is being
// terminated (a pool's destroy --force, a dead machine): its unfinished
// tasks are LOST and rescheduled within their budgets, as after a missed
// heartbeat, instead of ending KILLED when the agent stops them. A node
// that is unknown or already DOWN changes nothing.
func (s *Scheduler) NodeGone(ctx context.Context, name, why string) error {
	err := s.store.Update(ctx, func(tx store.Tx) error {
		n, err := tx.GetNode(ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		now := s.clock.Now()
		if n.State != node.Down {
			n.State = node.Down
			if err := tx.PutNode(ctx, n); err != nil {
				return err
			}
			if err := tx.InsertEvents(ctx, event.Event{At: now, Node: name, Reason: event.NodeDown, Message: why}); err != nil {
				return err
			}
		}
		ts, err := tx.ListTasks(ctx, store.TaskFilter{Node: name, States: []task.State{task.Assigned, task.Starting, task.Running}})
		if err != nil {
			return err
		}
		touched := map[RunKey]bool{}
		for _, t := range ts {
			if err := s.lose(ctx, tx, t, now, event.NodeDown, fmt.Sprintf("node %s is gone: %s", name, why)); err != nil {
				return err
			}
			touched[RunKey{t.Job, t.Run}] = true
		}
		for rk := range touched {
			if err := s.finishRunIfDone(ctx, tx, rk.Job, rk.Run); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("node %s gone: %w", name, err)
	}
	s.broadcast(name)
	s.Wake()
	return nil
}
