package scheduler

import (
	"context"
	"errors"
	"time"

	"github.com/drover-dev/drover/internal/event"
	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/node"
	"github.com/drover-dev/drover/internal/store"
	"github.com/drover-dev/drover/internal/task"
)

// PlaceOnce runs one placement round: it reads a snapshot, lets [Place]
// decide, and commits every placement of the round in one transaction. It
// returns when the next round is due because a retry's backoff ends (zero
// if none).
func (s *Scheduler) PlaceOnce(ctx context.Context) (time.Time, error) {
	now := s.clock.Now()
	var snap Snapshot
	var pending map[string]task.Task
	var next time.Time
	err := s.store.View(ctx, func(r store.Reader) error {
		ts, err := r.ListTasks(ctx, store.TaskFilter{States: []task.State{task.Pending}, ReadyBy: now, Limit: maxPlacePerRound})
		if err != nil {
			return err
		}
		if next, err = r.NextNotBefore(ctx, now); err != nil {
			return err
		}
		if len(ts) == 0 {
			return nil
		}
		nodes, err := r.ListNodes(ctx)
		if err != nil {
			return err
		}
		active, err := r.ListTasks(ctx, store.TaskFilter{States: []task.State{task.Assigned, task.Starting, task.Running}})
		if err != nil {
			return err
		}
		used := map[string]job.Resources{}
		count := map[string]int{}
		for _, t := range active {
			used[t.Node] = used[t.Node].Add(t.Resources)
			count[t.Node]++
		}
		for _, n := range nodes {
			if n.State != node.Ready || now.Sub(n.LastSeen) > s.nodeStale {
				continue
			}
			snap.Nodes = append(snap.Nodes, NodeCapacity{Node: n, Free: n.Capacity.Sub(used[n.Name]), Tasks: count[n.Name]})
		}
		snap.Pending = ts
		snap.Specs = map[VersionKey]job.Spec{}
		snap.Avoid, snap.Prefer = s.avoiding()
		pending = make(map[string]task.Task, len(ts))
		for _, t := range ts {
			pending[t.ID] = t
			vk := VersionKey{t.Job, t.JobVersion}
			if _, ok := snap.Specs[vk]; ok {
				continue
			}
			sp, err := s.spec(ctx, r, t.Job, t.JobVersion)
			if err != nil {
				return err
			}
			snap.Specs[vk] = sp
		}
		return nil
	})
	if err != nil || len(snap.Pending) == 0 {
		return next, err
	}
	plan := Place(snap)

	// Record why tasks wait, once per distinct reason, so `job status`
	// can answer "why is this still PENDING?".
	var notes []event.Event
	s.mu.Lock()
	for id, why := range plan.Unplaced {
		if s.unplaceable[id] != why {
			s.unplaceable[id] = why
			t := pending[id]
			notes = append(notes, event.Event{At: now, Job: t.Job.String(), TaskID: id, Reason: event.Unplaceable, Message: why})
		}
	}
	for _, p := range plan.Placements {
		delete(s.unplaceable, p.TaskID)
		delete(s.avoid, p.TaskID)
		delete(s.prefer, p.TaskID)
	}
	s.mu.Unlock()
	if len(plan.Placements) == 0 && len(notes) == 0 {
		return next, nil
	}
	var nodes []string
	err = s.store.Update(ctx, func(tx store.Tx) error {
		nodes = nodes[:0]
		for _, p := range plan.Placements {
			t := pending[p.TaskID]
			t.Node = p.Node
			ch, err := task.Move(t, task.Assigned, now, event.Placed, "on node "+p.Node)
			if err != nil {
				return err
			}
			if err := s.apply(ctx, tx, ch); err != nil {
				if errors.Is(err, store.ErrConflict) {
					continue // killed since the snapshot
				}
				return err
			}
			nodes = append(nodes, p.Node)
		}
		return tx.InsertEvents(ctx, notes...)
	})
	if err != nil {
		return next, err
	}
	s.broadcast(nodes...)
	if len(plan.Placements) == maxPlacePerRound {
		s.Wake()
	}
	return next, nil
}
