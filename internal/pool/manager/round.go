package manager

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/drover-dev/drover/internal/event"
	"github.com/drover-dev/drover/internal/node"
	"github.com/drover-dev/drover/internal/pool"
	"github.com/drover-dev/drover/internal/provider"
	"github.com/drover-dev/drover/internal/store"
)

// poolRound is one pool's round: reconcile, watch, size, drain, terminate.
func (m *Manager) poolRound(ctx context.Context, p pool.Pool, w world) error {
	prov, err := m.provider(ctx, p)
	if err != nil {
		return m.decide(ctx, p.Name, fmt.Sprintf("no provider: %v", err))
	}
	now := m.clock.Now()
	if err := m.reconcile(ctx, p, prov, now); err != nil {
		return err
	}
	if err := m.watch(ctx, p, prov, w, now); err != nil {
		return err
	}
	return m.size(ctx, p.Name, prov, w)
}

// machines reads a pool's live machine records.
func (m *Manager) machines(ctx context.Context, name string) ([]pool.Machine, error) {
	var out []pool.Machine
	err := m.store.View(ctx, func(r store.Reader) error {
		var err error
		out, err = r.ListMachines(ctx, name, true)
		return err
	})
	return out, err
}

// reconcile compares the records with the provider's own list: a machine
// on record that the provider has is adopted (its launch went through);
// a launch the provider never got is dropped; a machine the provider lost
// is ended; a machine of this cluster's pool that is on no live record is
// a leak and is terminated.
func (m *Manager) reconcile(ctx context.Context, p pool.Pool, prov provider.Provider, now time.Time) error {
	m.mu.Lock()
	last := m.lastList[p.Name]
	due := p.Provider == pool.ProviderLocal || now.Sub(last) >= m.cfg.ReconcileEvery || last.IsZero()
	if due {
		m.lastList[p.Name] = now
	}
	m.mu.Unlock()
	if !due {
		return nil
	}
	lctx, cancel := context.WithTimeout(ctx, callTimeout)
	listed, err := prov.List(lctx, p.Name, m.cluster)
	cancel()
	if err != nil {
		return m.decide(ctx, p.Name, fmt.Sprintf("cannot list the provider's machines: %v", err))
	}
	recs, err := m.machines(ctx, p.Name)
	if err != nil {
		return err
	}
	byIntent := map[string]provider.Machine{}
	for _, pm := range listed {
		byIntent[pm.Intent] = pm
	}
	onRecord := map[string]bool{}
	for _, r := range recs {
		onRecord[r.ID] = true
		pm, ok := byIntent[r.ID]
		switch {
		case ok && pm.State == provider.Terminated:
			if err := m.end(ctx, p, prov, r, pm.ID, r.RegisteredAt.IsZero() && r.State != pool.Terminating,
				"the machine is gone (its agent process or instance ended)"); err != nil {
				return err
			}
		case ok && r.State == pool.Launching:
			r.State, r.ProviderID, r.Address, r.UpdatedAt = pool.Starting, pm.ID, pm.Address, now
			if pm.Node != "" {
				r.Node = pm.Node
			}
			if err := m.putMachine(ctx, r, event.MachineAdopted, fmt.Sprintf("pool %s: machine %s (%s) was launched before the server stopped; adopted", p.Name, r.ID, pm.ID)); err != nil {
				return err
			}
		case ok:
		case r.State == pool.Launching && now.Sub(r.LaunchedAt) < p.StartTimeout:
			// The call may be under way. A launch whose machine the
			// provider does not list within start_timeout never
			// happened (the server died between record and call).
		case r.State == pool.Launching:
			r.State, r.Reason, r.EndedAt, r.UpdatedAt = pool.Terminated, "the launch never reached the provider", now, now
			if err := m.putMachine(ctx, r, event.MachineTerminated, fmt.Sprintf("pool %s: machine %s: %s", p.Name, r.ID, r.Reason)); err != nil {
				return err
			}
		default:
			if err := m.end(ctx, p, prov, r, "", r.RegisteredAt.IsZero() && r.State != pool.Terminating,
				"the provider no longer lists it"); err != nil {
				return err
			}
		}
	}
	for _, pm := range listed {
		if onRecord[pm.Intent] || pm.State == provider.Terminated && pm.Intent == "" {
			continue
		}
		tctx, cancel := context.WithTimeout(ctx, callTimeout)
		err := prov.Terminate(tctx, pm.ID)
		cancel()
		msg := fmt.Sprintf("pool %s: machine %s (node %s, intent %q) runs but is on no live record; terminated", p.Name, pm.ID, pm.Node, pm.Intent)
		if err != nil {
			msg = fmt.Sprintf("pool %s: machine %s runs but is on no live record; terminating it failed: %v", p.Name, pm.ID, err)
		}
		m.log.WarnContext(ctx, msg)
		if err := m.event(ctx, event.Event{Node: pm.Node, Reason: event.MachineLeaked, Message: msg}); err != nil {
			return err
		}
	}
	return nil
}

// watch follows the machines after launch: registration, the startup
// watchdog, agents that died, and draining machines whose work is done.
func (m *Manager) watch(ctx context.Context, p pool.Pool, prov provider.Provider, w world, now time.Time) error {
	recs, err := m.machines(ctx, p.Name)
	if err != nil {
		return err
	}
	for _, r := range recs {
		n, known := w.nodes[r.Node]
		switch r.State {
		case pool.Starting:
			if known && n.State != node.Down && !n.LastSeen.Before(r.LaunchedAt) {
				r.State, r.RegisteredAt, r.UpdatedAt = pool.Ready, now, now
				if err := m.putMachine(ctx, r, event.MachineRegistered,
					fmt.Sprintf("pool %s: node %s registered %s after its launch", p.Name, r.Node, now.Sub(r.LaunchedAt).Round(time.Millisecond))); err != nil {
					return err
				}
				if err := m.updatePool(ctx, p.Name, func(q *pool.Pool) { q.Status.Failures = 0 }); err != nil {
					return err
				}
				continue
			}
			if now.Sub(r.LaunchedAt) > p.StartTimeout {
				if err := m.end(ctx, p, prov, r, "", true,
					fmt.Sprintf("its agent did not register within start_timeout %s", p.StartTimeout)); err != nil {
					return err
				}
			}
		case pool.Ready:
			if known && n.State == node.Down && now.Sub(n.LastSeen) > p.StartTimeout {
				if err := m.end(ctx, p, prov, r, "", false,
					fmt.Sprintf("its agent has been DOWN since %s", n.LastSeen.Format(time.RFC3339))); err != nil {
					return err
				}
			}
		case pool.Draining:
			if known && !n.Drain {
				// Chosen before its agent registered: it takes no new
				// work from now on.
				if _, err := m.sched.Drain(ctx, r.Node, true); err != nil && !errors.Is(err, store.ErrNotFound) {
					return err
				}
			}
			if w.active[r.Node] == 0 {
				if err := m.end(ctx, p, prov, r, "", false, "scale-down: drained, no task left"); err != nil {
					return err
				}
			}
		case pool.Terminating:
			if err := m.end(ctx, p, prov, r, "", false, "terminating"); err != nil {
				return err
			}
		}
	}
	return nil
}

// end terminates a machine and records its end: Failed (counting a failure
// of the pool) when failed, else Terminated. Its node's record goes too
// once no task is on it; until then liveness handles the node as any
// other.
func (m *Manager) end(ctx context.Context, p pool.Pool, prov provider.Provider, r pool.Machine, providerID string, failed bool, why string) error {
	now := m.clock.Now()
	if r.State != pool.Terminating {
		r.State, r.Reason, r.UpdatedAt = pool.Terminating, why, now
		if err := m.putMachine(ctx, r, "", ""); err != nil {
			return err
		}
	}
	id := r.ProviderID
	if providerID != "" {
		id = providerID
	}
	if r.Node != "" {
		// Its tasks are LOST and rescheduled now, not KILLED by the
		// agent stopping with its machine.
		if err := m.sched.NodeGone(ctx, r.Node, fmt.Sprintf("its machine %s of pool %s is terminated: %s", r.ID, p.Name, why)); err != nil {
			return err
		}
	}
	if id != "" {
		tctx, cancel := context.WithTimeout(ctx, callTimeout)
		err := prov.Terminate(tctx, id)
		cancel()
		if err != nil {
			return m.decide(ctx, p.Name, fmt.Sprintf("terminating machine %s (node %s) failed; will retry: %v", r.ID, r.Node, err))
		}
	}
	r.State, r.EndedAt, r.UpdatedAt = pool.Terminated, now, now
	reason := event.MachineTerminated
	if failed {
		r.State, reason = pool.Failed, event.MachineFailed
	}
	if err := m.putMachine(ctx, r, reason, fmt.Sprintf("pool %s: node %s %s: %s", p.Name, r.Node, r.State, why)); err != nil {
		return err
	}
	m.forgetNode(ctx, r.Node)
	if !failed {
		return nil
	}
	// The event is written after updatePool's transaction: a write
	// inside it would wait forever for the store's only writer.
	var backingOff string
	err := m.updatePool(ctx, p.Name, func(q *pool.Pool) {
		q.Status.Failures++
		if q.Status.Failures >= q.MaxFailures {
			d := backoff(q.Status.Failures - q.MaxFailures)
			q.Status.BackoffUntil = now.Add(d)
			q.Status.LastDecision = fmt.Sprintf("%d launches in a row failed (last: %s); no launch before %s",
				q.Status.Failures, why, q.Status.BackoffUntil.Format(time.RFC3339))
			backingOff = "pool " + q.Name + ": " + q.Status.LastDecision
		}
	})
	if err != nil || backingOff == "" {
		return err
	}
	return m.event(ctx, event.Event{Reason: event.PoolBackoff, Message: backingOff})
}

// backoff is the wait after n failures past the limit: doubling from
// DefaultBackoff up to MaxBackoff.
func backoff(n int) time.Duration {
	d := pool.DefaultBackoff
	for range min(n, 20) {
		d *= 2
		if d >= pool.MaxBackoff {
			return pool.MaxBackoff
		}
	}
	return d
}

// forgetNode removes the record of an ended machine's node if no task is
// on it; otherwise liveness declares it DOWN and its tasks LOST first, and
// a later round removes it.
func (m *Manager) forgetNode(ctx context.Context, name string) {
	if name == "" {
		return
	}
	_ = m.store.Update(ctx, func(tx store.Tx) error {
		n, err := tx.ListTasks(ctx, store.TaskFilter{Node: name, States: activeStates})
		if err != nil || len(n) > 0 {
			return err
		}
		err = tx.DeleteNode(ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return err
	})
	m.mu.Lock()
	delete(m.idleSince, name)
	m.mu.Unlock()
}

// failpoint kills the process at a named point, for the leak tests.
func (m *Manager) failpoint(name string) {
	if m.cfg.Failpoint == name {
		m.log.Warn("failpoint: killing the server", "failpoint", name)
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal arrives
	}
}
