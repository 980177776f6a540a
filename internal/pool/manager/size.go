package manager

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/drover-dev/drover/internal/event"
	"github.com/drover-dev/drover/internal/pool"
	"github.com/drover-dev/drover/internal/provider"
	"github.com/drover-dev/drover/internal/store"
	"github.com/drover-dev/drover/internal/task"
)

var activeStates = []task.State{task.Assigned, task.Starting, task.Running}

// size asks the pool's policy how many machines it wants, launches the
// difference, or drains machines it no longer wants: only idle ones (for a
// queue or schedule pool, idle for idle_timeout), so scale-down never
// kills a running task. A launch never waits for a drain.
func (m *Manager) size(ctx context.Context, name string, prov provider.Provider, w world) error {
	var p pool.Pool
	if err := m.store.View(ctx, func(r store.Reader) error {
		var err error
		p, err = r.GetPool(ctx, name)
		return err
	}); err != nil {
		return err
	}
	recs, err := m.machines(ctx, name)
	if err != nil {
		return err
	}
	now := m.clock.Now()
	l := pool.Load{Now: now}
	for _, t := range w.pending {
		if wants(t.spec, p) {
			l.Pending++
		}
	}
	var live, idle []pool.Machine
	for _, r := range recs {
		switch r.State {
		case pool.Launching, pool.Starting:
			live = append(live, r)
		case pool.Ready:
			live = append(live, r)
			n := w.active[r.Node]
			l.Running += n
			if n > 0 {
				l.Busy++
			}
		}
	}
	l.Live = len(live)
	m.mu.Lock()
	for _, r := range live {
		if r.State != pool.Ready {
			continue
		}
		if w.active[r.Node] > 0 {
			delete(m.idleSince, r.Node)
			continue
		}
		since, ok := m.idleSince[r.Node]
		if !ok {
			since = now
			m.idleSince[r.Node] = now
		}
		if p.Policy.Fixed != nil || now.Sub(since) >= p.IdleTimeout {
			idle = append(idle, r)
		}
	}
	m.mu.Unlock()

	want, why := pool.SizerOf(p).Desired(p, l)
	want = p.Clamp(want)
	if p.Status.Desired != want {
		if err := m.updatePool(ctx, name, func(q *pool.Pool) { q.Status.Desired = want }); err != nil {
			return err
		}
	}
	switch {
	case want > l.Live:
		switch {
		case now.Before(p.Status.BackoffUntil):
			return m.decide(ctx, name, fmt.Sprintf("%s; wants %d, has %d, but backs off until %s", why, want, l.Live, p.Status.BackoffUntil.Format(time.RFC3339)))
		case now.Sub(p.Status.LastScaleUp) < p.ScaleUpCooldown:
			return m.decide(ctx, name, fmt.Sprintf("%s; wants %d, has %d; scale-up cooldown", why, want, l.Live))
		}
		if err := m.record(ctx, name, fmt.Sprintf("%s: launching %d (has %d, wants %d)", why, want-l.Live, l.Live, want), true); err != nil {
			return err
		}
		if err := m.updatePool(ctx, name, func(q *pool.Pool) { q.Status.LastScaleUp = now }); err != nil {
			return err
		}
		for range want - l.Live {
			if err := m.launch(ctx, p, prov); err != nil {
				return err
			}
			// A failure may have started a backoff: no more launches.
			var q pool.Pool
			if err := m.store.View(ctx, func(r store.Reader) error {
				var err error
				q, err = r.GetPool(ctx, name)
				return err
			}); err != nil {
				return err
			}
			if m.clock.Now().Before(q.Status.BackoffUntil) {
				break
			}
		}
	case want < l.Live:
		if now.Sub(p.Status.LastDown) < p.ScaleDownCooldown {
			return m.decide(ctx, name, fmt.Sprintf("%s; wants %d, has %d; scale-down cooldown", why, want, l.Live))
		}
		// Machines that never registered go first, then the idle ones
		// that have been idle longest.
		var victims []pool.Machine
		for _, r := range live {
			if r.State == pool.Starting {
				victims = append(victims, r)
			}
		}
		m.mu.Lock()
		slices.SortFunc(idle, func(a, b pool.Machine) int { return m.idleSince[a.Node].Compare(m.idleSince[b.Node]) })
		m.mu.Unlock()
		victims = append(victims, idle...)
		victims = victims[:min(len(victims), l.Live-want)]
		if len(victims) == 0 {
			return m.decide(ctx, name, fmt.Sprintf("%s; wants %d, has %d; no machine is idle (for idle_timeout %s) to remove", why, want, l.Live, p.IdleTimeout))
		}
		if err := m.record(ctx, name, fmt.Sprintf("%s: removing %d idle (has %d, wants %d)", why, len(victims), l.Live, want), true); err != nil {
			return err
		}
		if err := m.updatePool(ctx, name, func(q *pool.Pool) { q.Status.LastDown = now }); err != nil {
			return err
		}
		for _, r := range victims {
			if err := m.drain(ctx, p, r); err != nil {
				return err
			}
		}
	default:
		return m.decide(ctx, name, fmt.Sprintf("%s; has %d", why, l.Live))
	}
	return nil
}

// drain takes a machine out of service: its node takes no new work, and
// the machine is terminated once its tasks have ended (watch).
func (m *Manager) drain(ctx context.Context, p pool.Pool, r pool.Machine) error {
	now := m.clock.Now()
	if r.State == pool.Ready {
		if _, err := m.sched.Drain(ctx, r.Node, true); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	r.State, r.Reason, r.UpdatedAt = pool.Draining, "scale-down", now
	return m.putMachine(ctx, r, event.PoolDecision, fmt.Sprintf("pool %s: draining node %s for scale-down", p.Name, r.Node))
}

// launch launches one machine: the record first, then the provider call,
// then the record updated with what the provider said.
func (m *Manager) launch(ctx context.Context, p pool.Pool, prov provider.Provider) error {
	now := m.clock.Now()
	r := pool.Machine{ID: "m" + newID(), Pool: p.Name, Node: p.Name + "-" + newID(), State: pool.Launching,
		LaunchedAt: now, UpdatedAt: now}
	if err := m.putMachine(ctx, r, event.MachineLaunched, fmt.Sprintf("pool %s: launching machine %s as node %s", p.Name, r.ID, r.Node)); err != nil {
		return err
	}
	m.failpoint("after-intent")
	agent := m.cfg.Agent
	agent.Capabilities = p.Attributes()
	lctx, cancel := context.WithTimeout(ctx, callTimeout)
	pm, err := prov.Launch(lctx, provider.LaunchRequest{Pool: p.Name, Cluster: m.cluster, Intent: r.ID, Node: r.Node, Agent: agent})
	cancel()
	m.failpoint("after-launch")
	now = m.clock.Now()
	if err != nil {
		r.State, r.Reason, r.EndedAt, r.UpdatedAt = pool.Failed, "launch failed: "+err.Error(), now, now
		if err := m.putMachine(ctx, r, event.MachineFailed, fmt.Sprintf("pool %s: %s", p.Name, r.Reason)); err != nil {
			return err
		}
		capacity := errors.Is(err, provider.ErrCapacity)
		// The event is written after updatePool's transaction: a write
		// inside it would wait forever for the store's only writer.
		var backingOff string
		uerr := m.updatePool(ctx, p.Name, func(q *pool.Pool) {
			q.Status.Failures++
			if capacity || q.Status.Failures >= q.MaxFailures {
				q.Status.BackoffUntil = now.Add(backoff(max(0, q.Status.Failures-q.MaxFailures)))
				q.Status.LastDecision = fmt.Sprintf("launch failed (%d in a row): %v; no launch before %s",
					q.Status.Failures, err, q.Status.BackoffUntil.Format(time.RFC3339))
				backingOff = "pool " + q.Name + ": " + q.Status.LastDecision
			}
		})
		if uerr != nil || backingOff == "" {
			return uerr
		}
		return m.event(ctx, event.Event{Reason: event.PoolBackoff, Message: backingOff})
	}
	r.State, r.ProviderID, r.Address, r.UpdatedAt = pool.Starting, pm.ID, pm.Address, now
	if pm.Node != "" {
		r.Node = pm.Node
	}
	return m.putMachine(ctx, r, "", "")
}

// putMachine stores a machine record, with an event when reason is set.
func (m *Manager) putMachine(ctx context.Context, r pool.Machine, reason event.Reason, msg string) error {
	return m.store.Update(ctx, func(tx store.Tx) error {
		if err := tx.PutMachine(ctx, r); err != nil {
			return err
		}
		if reason == "" {
			return nil
		}
		return tx.InsertEvents(ctx, event.Event{At: m.clock.Now(), Node: r.Node, Reason: reason, Message: msg})
	})
}

// event records an event now.
func (m *Manager) event(ctx context.Context, e event.Event) error {
	e.At = m.clock.Now()
	return m.store.Update(ctx, func(tx store.Tx) error { return tx.InsertEvents(ctx, e) })
}

// updatePool changes a stored pool.
func (m *Manager) updatePool(ctx context.Context, name string, fn func(*pool.Pool)) error {
	return m.store.Update(ctx, func(tx store.Tx) error {
		p, err := tx.GetPool(ctx, name)
		if err != nil {
			return err
		}
		fn(&p)
		return tx.PutPool(ctx, p)
	})
}

// decide records the reason of a round's decision to hold (or why it
// could not act). A decision of a new kind is an event too; one that
// differs from the last only in its figures ("7 tasks pending" after "8
// tasks pending") updates the pool's last decision without one, so a busy
// queue does not flood the events. Every launch and removal is an event
// (record with acted).
func (m *Manager) decide(ctx context.Context, name, why string) error {
	return m.record(ctx, name, why, false)
}

// record stores a decision, as an event too when the pool acted on it or
// its kind is new.
func (m *Manager) record(ctx context.Context, name, why string, acted bool) error {
	return m.store.Update(ctx, func(tx store.Tx) error {
		p, err := tx.GetPool(ctx, name)
		if err != nil {
			return err
		}
		if p.Status.LastDecision == why && !acted {
			return nil
		}
		sameKind := !acted && withoutFigures(p.Status.LastDecision) == withoutFigures(why)
		p.Status.LastDecision = why
		if err := tx.PutPool(ctx, p); err != nil {
			return err
		}
		if sameKind {
			return nil
		}
		return tx.InsertEvents(ctx, event.Event{At: m.clock.Now(), Reason: event.PoolDecision, Message: "pool " + name + ": " + why})
	})
}

// withoutFigures drops the digits of a decision: what is left is its kind.
func withoutFigures(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return -1
		}
		return r
	}, s)
}
