package manager

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/drover-dev/drover/internal/event"
	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/pool"
	"github.com/drover-dev/drover/internal/scheduler"
	"github.com/drover-dev/drover/internal/store"
)

// Create stores a new pool; ErrConflict if one has its name. The node spec
// must make a provider (checked first).
func (m *Manager) Create(ctx context.Context, p pool.Pool) (pool.Pool, error) {
	if err := p.Validate(); err != nil {
		return pool.Pool{}, err
	}
	if err := m.CheckSpec(ctx, p); err != nil {
		return pool.Pool{}, err
	}
	now := m.clock.Now()
	p.CreatedAt, p.UpdatedAt, p.Status = now, now, pool.Status{}
	err := m.store.Update(ctx, func(tx store.Tx) error {
		if _, err := tx.GetPool(ctx, p.Name); err == nil {
			return &scheduler.ConflictError{Msg: fmt.Sprintf("pool %s already exists; use update to change it", p.Name)}
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err := tx.PutPool(ctx, p); err != nil {
			return err
		}
		return tx.InsertEvents(ctx, event.Event{At: now, Reason: event.PoolChanged,
			Message: fmt.Sprintf("pool %s created: provider %s, %s policy, min %d, max %d", p.Name, p.Provider, p.Policy.Kind(), p.Min, p.Max)})
	})
	if err != nil {
		return pool.Pool{}, err
	}
	return p, nil
}

// Update replaces a pool's definition, keeping its status; a fixed pool's
// size becomes the file's. Its machines stay: the next rounds move the
// pool to its new size (the provider spec applies to new machines).
func (m *Manager) Update(ctx context.Context, p pool.Pool) (pool.Pool, error) {
	if err := p.Validate(); err != nil {
		return pool.Pool{}, err
	}
	if err := m.CheckSpec(ctx, p); err != nil {
		return pool.Pool{}, err
	}
	now := m.clock.Now()
	err := m.store.Update(ctx, func(tx store.Tx) error {
		old, err := tx.GetPool(ctx, p.Name)
		if err != nil {
			return fmt.Errorf("pool %s: %w", p.Name, err)
		}
		if old.Provider != p.Provider {
			return job.Fieldf("provider", "pool %s uses %s; a pool cannot change provider (destroy it and create it again)", p.Name, old.Provider)
		}
		p.CreatedAt, p.UpdatedAt, p.Status = old.CreatedAt, now, old.Status
		p.Packages = old.Packages // shipped by node sync, not part of the pool file
		if err := tx.PutPool(ctx, p); err != nil {
			return err
		}
		return tx.InsertEvents(ctx, event.Event{At: now, Reason: event.PoolChanged,
			Message: fmt.Sprintf("pool %s updated: %s policy, min %d, max %d", p.Name, p.Policy.Kind(), p.Min, p.Max)})
	})
	if err != nil {
		return pool.Pool{}, err
	}
	return p, nil
}

// Scale sets the size a fixed pool keeps.
func (m *Manager) Scale(ctx context.Context, name string, size int) (pool.Pool, error) {
	var out pool.Pool
	err := m.store.Update(ctx, func(tx store.Tx) error {
		p, err := tx.GetPool(ctx, name)
		if err != nil {
			return fmt.Errorf("pool %s: %w", name, err)
		}
		if p.Policy.Fixed == nil {
			return job.Fieldf("size", "pool %s has a %s policy, which sizes it; only a fixed pool is scaled by hand", name, p.Policy.Kind())
		}
		if size < p.Min || size > p.Max {
			return job.Fieldf("size", "must be between min %d and max %d of pool %s, not %d", p.Min, p.Max, name, size)
		}
		now := m.clock.Now()
		p.Desired, p.Policy.Fixed.Size, p.UpdatedAt = size, size, now
		out = p
		if err := tx.PutPool(ctx, p); err != nil {
			return err
		}
		return tx.InsertEvents(ctx, event.Event{At: now, Reason: event.PoolChanged, Message: fmt.Sprintf("pool %s scaled to %d", name, size)})
	})
	return out, err
}

// List lists the pools by name.
func (m *Manager) List(ctx context.Context) ([]pool.Pool, error) {
	var out []pool.Pool
	err := m.store.View(ctx, func(r store.Reader) error {
		var err error
		out, err = r.ListPools(ctx)
		return err
	})
	return out, err
}

// Get returns a pool with its machines: the live ones, and those that
// ended within the last hour.
func (m *Manager) Get(ctx context.Context, name string) (pool.Pool, []pool.Machine, error) {
	var p pool.Pool
	var out []pool.Machine
	err := m.store.View(ctx, func(r store.Reader) error {
		var err error
		if p, err = r.GetPool(ctx, name); err != nil {
			return fmt.Errorf("pool %s: %w", name, err)
		}
		all, err := r.ListMachines(ctx, name, false)
		if err != nil {
			return err
		}
		cut := m.clock.Now().Add(-time.Hour)
		for _, r := range all {
			if !r.State.Ended() || r.EndedAt.After(cut) {
				out = append(out, r)
			}
		}
		return nil
	})
	return p, out, err
}

// Destroy removes a pool. While it has machines it refuses, unless force:
// then it drains every machine, terminates it, and waits until the
// provider's own list is empty, before it removes the records.
func (m *Manager) Destroy(ctx context.Context, name string, force bool) error {
	m.round.Lock()
	defer m.round.Unlock()
	p, recs, err := m.Get(ctx, name)
	if err != nil {
		return err
	}
	var live []pool.Machine
	for _, r := range recs {
		if !r.State.Ended() {
			live = append(live, r)
		}
	}
	if len(live) > 0 && !force {
		return &scheduler.ConflictError{Msg: fmt.Sprintf("pool %s still has %d machines; destroy it with --force to terminate them (their unfinished tasks are rescheduled elsewhere)", name, len(live))}
	}
	prov, err := m.provider(ctx, p)
	if err != nil {
		return err
	}
	for _, r := range live {
		if r.State == pool.Ready {
			if _, err := m.sched.Drain(ctx, r.Node, true); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		if err := m.end(ctx, p, prov, r, "", false, "pool destroyed"); err != nil {
			return err
		}
	}
	// The provider confirms: nothing of the pool is left in its list.
	deadline := time.Now().Add(callTimeout)
	for {
		lctx, cancel := context.WithTimeout(ctx, callTimeout)
		listed, err := prov.List(lctx, name, m.cluster)
		cancel()
		if err != nil {
			return fmt.Errorf("pool %s: confirm the machines are gone: %w", name, err)
		}
		var left []string
		for _, pm := range listed {
			if pm.State != "terminated" {
				left = append(left, pm.ID)
				tctx, cancel := context.WithTimeout(ctx, callTimeout)
				_ = prov.Terminate(tctx, pm.ID)
				cancel()
			} else {
				tctx, cancel := context.WithTimeout(ctx, callTimeout)
				_ = prov.Terminate(tctx, pm.ID) // cleans up what the provider keeps
				cancel()
			}
		}
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pool %s: the provider still lists %v after terminating them", name, left)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	err = m.store.Update(ctx, func(tx store.Tx) error {
		if err := tx.DeletePool(ctx, name); err != nil {
			return err
		}
		return tx.InsertEvents(ctx, event.Event{At: m.clock.Now(), Reason: event.PoolChanged,
			Message: fmt.Sprintf("pool %s destroyed (%d machines terminated)", name, len(live))})
	})
	m.mu.Lock()
	delete(m.providers, name)
	delete(m.lastList, name)
	m.mu.Unlock()
	return err
}

// TerminateLocal terminates the machines of every local pool ('drover
// dev' stopping: a development cluster leaves no process behind). The
// pools stay; their next start launches machines again.
func (m *Manager) TerminateLocal(ctx context.Context) error {
	m.round.Lock()
	defer m.round.Unlock()
	ps, err := m.List(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range ps {
		if p.Provider != pool.ProviderLocal {
			continue
		}
		prov, err := m.provider(ctx, p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		recs, err := m.machines(ctx, p.Name)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if err := m.end(ctx, p, prov, r, "", false, "drover dev stopped"); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
