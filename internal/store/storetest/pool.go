package storetest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/node"
	"github.com/drover-dev/drover/internal/pool"
	"github.com/drover-dev/drover/internal/store"
)

// poolCases cover PoolReader and PoolWriter: pools, their machines, the
// cluster's settings, and DeleteNode.
func poolCases() []testCase {
	return []testCase{
		{"PoolRoundTripAndReplace", testPoolRoundTrip},
		{"PoolTimesInUTC", testPoolTimesUTC},
		{"GetPoolMissing", testGetPoolMissing},
		{"ListPoolsOrderedByName", testListPools},
		{"DeletePoolRemovesItsMachines", testDeletePool},
		{"MachineRoundTripAndUpdate", testMachineRoundTrip},
		{"GetMachineMissing", testGetMachineMissing},
		{"ListMachinesLiveAndAllPools", testListMachines},
		{"Settings", testSettings},
		{"DeleteNode", testDeleteNode},
	}
}

// NewPool returns a valid queue pool with a unique name that sets every
// field, so a round trip through a store exercises all of them. opts
// change it in turn.
func NewPool(opts ...func(*pool.Pool)) pool.Pool {
	p := pool.Pool{
		Name:              nextName("pool"),
		Provider:          pool.ProviderEC2,
		Spec:              json.RawMessage(`{"instance_type":"t3.small","image_id":"ami-1234","tags":{"team":"data"}}`),
		Capabilities:      map[string]string{"burst": "true", "zone": "eu-1b"},
		Min:               1,
		Max:               8,
		Policy:            pool.Policy{Queue: &pool.QueuePolicy{HighWater: 4, LowWater: 1}},
		StartTimeout:      90*time.Second + time.Nanosecond,
		IdleTimeout:       10 * time.Minute,
		ScaleUpCooldown:   5 * time.Second,
		ScaleDownCooldown: time.Minute,
		MaxFailures:       3,
		Desired:           1,
		CreatedAt:         T0,
		UpdatedAt:         T0.Add(time.Second),
		Status: pool.Status{
			Failures:     2,
			BackoffUntil: T0.Add(time.Minute),
			LastDecision: "queue: 6 tasks pending > high water 4: launching 2 (has 1, wants 3)",
			Desired:      3,
			LastScaleUp:  T0.Add(2 * time.Second),
			LastDown:     T0.Add(-time.Hour),
		},
		Packages: []pool.Package{{SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", To: "/opt/app", Size: 4096, AddedAt: T0}},
	}
	for _, o := range opts {
		o(&p)
	}
	return p
}

// NewMachine returns a ready machine of pool with a unique ID and node
// name, changed by each of opts in turn.
func NewMachine(poolName string, opts ...func(*pool.Machine)) pool.Machine {
	m := pool.Machine{
		ID:           nextName("m"),
		Pool:         poolName,
		Node:         nextName(poolName),
		ProviderID:   nextName("i"),
		State:        pool.Ready,
		Address:      "10.0.0.9",
		LaunchedAt:   T0,
		RegisteredAt: T0.Add(40 * time.Second),
		UpdatedAt:    T0.Add(40 * time.Second),
	}
	for _, o := range opts {
		o(&m)
	}
	return m
}

func putPool(t *testing.T, s store.Store, ps ...pool.Pool) {
	t.Helper()
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, p := range ps {
			if err := tx.PutPool(ctx, p); err != nil {
				return err
			}
		}
		return nil
	})
}

func getPool(t *testing.T, s store.Store, name string) pool.Pool {
	t.Helper()
	var got pool.Pool
	view(t, s, func(ctx context.Context, r store.Reader) (err error) {
		got, err = r.GetPool(ctx, name)
		return err
	})
	return got
}

func putMachine(t *testing.T, s store.Store, ms ...pool.Machine) {
	t.Helper()
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, m := range ms {
			if err := tx.PutMachine(ctx, m); err != nil {
				return err
			}
		}
		return nil
	})
}

func getMachine(t *testing.T, s store.Store, id string) pool.Machine {
	t.Helper()
	var got pool.Machine
	view(t, s, func(ctx context.Context, r store.Reader) (err error) {
		got, err = r.GetMachine(ctx, id)
		return err
	})
	return got
}

func listMachines(t *testing.T, s store.Store, poolName string, live bool) []pool.Machine {
	t.Helper()
	var got []pool.Machine
	view(t, s, func(ctx context.Context, r store.Reader) (err error) {
		got, err = r.ListMachines(ctx, poolName, live)
		return err
	})
	return got
}

// machineIDs returns the IDs of ms in order.
func machineIDs(ms []pool.Machine) []string {
	ids := make([]string, 0, len(ms))
	for _, m := range ms {
		ids = append(ids, m.ID)
	}
	return ids
}

// testPoolRoundTrip: every field of a pool, its node spec and its run-time
// status included, comes back as written; a second put replaces it (a
// pool update, a new status after a round), each policy kind included.
func testPoolRoundTrip(t *testing.T, s store.Store) {
	p := NewPool()
	putPool(t, s, p)
	requireEqual(t, p, getPool(t, s, p.Name))

	p2 := p
	p2.Spec = json.RawMessage(`{"hosts":[{"address":"a.example"}]}`)
	p2.Capabilities = nil
	p2.Policy = pool.Policy{Schedule: &pool.SchedulePolicy{Cron: "0 2 * * *", TimeZone: "Europe/Amsterdam", Size: 6, Duration: 3 * time.Hour}}
	p2.UpdatedAt = T0.Add(time.Hour)
	p2.Status = pool.Status{LastDecision: "schedule: outside the window", Desired: 1}
	putPool(t, s, p2)
	requireEqual(t, p2, getPool(t, s, p.Name))

	p3 := p2
	p3.Policy = pool.Policy{Fixed: &pool.FixedPolicy{Size: 4}}
	p3.Desired = 4
	putPool(t, s, p3)
	got := getPool(t, s, p.Name)
	requireEqual(t, p3, got)
	require.Equal(t, "fixed", got.Policy.Kind(), "a replaced policy leaves nothing of the old one")
}

// testPoolTimesInUTC: a pool's times come back in UTC, whatever zone they
// were written in, as every other record's do.
func testPoolTimesUTC(t *testing.T, s store.Store) {
	pst := time.FixedZone("PST", -8*60*60)
	p := NewPool(func(p *pool.Pool) {
		p.CreatedAt, p.UpdatedAt = T0.In(pst), T0.In(pst)
		p.Status.BackoffUntil, p.Status.LastScaleUp, p.Status.LastDown = T0.In(pst), T0.In(pst), T0.In(pst)
	})
	putPool(t, s, p)
	got := getPool(t, s, p.Name)
	requireEqual(t, p, got)
	requireUTC(t, "pool", &got.CreatedAt, &got.UpdatedAt, &got.Status.BackoffUntil, &got.Status.LastScaleUp, &got.Status.LastDown)
}

func testGetPoolMissing(t *testing.T, s store.Store) {
	putPool(t, s, NewPool())
	requireNotFound(t, s, "pool never stored", func(ctx context.Context, r store.Reader) error {
		_, err := r.GetPool(ctx, "nope")
		return err
	})
}

// testListPools: every pool, by name; none is an empty answer.
func testListPools(t *testing.T, s store.Store) {
	var none []pool.Pool
	view(t, s, func(ctx context.Context, r store.Reader) (err error) {
		none, err = r.ListPools(ctx)
		return err
	})
	require.Empty(t, none)

	b := NewPool(func(p *pool.Pool) { p.Name = "nightly" })
	a := NewPool(func(p *pool.Pool) { p.Name = "burst" })
	c := NewPool(func(p *pool.Pool) { p.Name = "services" })
	putPool(t, s, b, c, a)
	var got []pool.Pool
	view(t, s, func(ctx context.Context, r store.Reader) (err error) {
		got, err = r.ListPools(ctx)
		return err
	})
	requireEqual(t, []pool.Pool{a, b, c}, got)
}

// testDeletePool: deleting a pool removes its machine records and no
// other pool's; deleting it again, or one never stored, is ErrNotFound.
func testDeletePool(t *testing.T, s store.Store) {
	gone, kept := NewPool(), NewPool()
	putPool(t, s, gone, kept)
	m1 := NewMachine(gone.Name)
	m2 := NewMachine(gone.Name, func(m *pool.Machine) { m.State, m.EndedAt = pool.Terminated, T0.Add(time.Hour) })
	m3 := NewMachine(kept.Name)
	putMachine(t, s, m1, m2, m3)

	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.DeletePool(ctx, gone.Name) })
	requireNotFound(t, s, "deleted pool", func(ctx context.Context, r store.Reader) error {
		_, err := r.GetPool(ctx, gone.Name)
		return err
	})
	for _, m := range []pool.Machine{m1, m2} {
		requireNotFound(t, s, "machine of the deleted pool", func(ctx context.Context, r store.Reader) error {
			_, err := r.GetMachine(ctx, m.ID)
			return err
		})
	}
	require.Empty(t, listMachines(t, s, gone.Name, false))
	requireEqual(t, []pool.Machine{m3}, listMachines(t, s, "", false), "the other pool's machine stays")
	requireEqual(t, kept, getPool(t, s, kept.Name))

	for _, name := range []string{gone.Name, "never"} {
		err := s.Update(t.Context(), func(tx store.Tx) error { return tx.DeletePool(t.Context(), name) })
		require.ErrorIs(t, err, store.ErrNotFound, "delete pool %s", name)
	}
}

// testMachineRoundTrip: a launch record round-trips with nanosecond times
// in UTC; the updates a machine goes through (the provider's answer,
// registration, its end) replace its fields.
func testMachineRoundTrip(t *testing.T, s store.Store) {
	p := NewPool()
	putPool(t, s, p)
	pst := time.FixedZone("PST", -8*60*60)
	intent := NewMachine(p.Name, func(m *pool.Machine) {
		m.ProviderID, m.Address, m.State = "", "", pool.Launching
		m.LaunchedAt, m.UpdatedAt, m.RegisteredAt = T0.In(pst), T0.In(pst), time.Time{}
	})
	putMachine(t, s, intent)
	got := getMachine(t, s, intent.ID)
	requireEqual(t, intent, got)
	require.True(t, got.RegisteredAt.IsZero(), "unset times stay zero")
	require.True(t, got.EndedAt.IsZero(), "unset times stay zero")
	requireUTC(t, "machine", &got.LaunchedAt, &got.UpdatedAt)

	started := intent
	started.State, started.ProviderID, started.Address, started.Node = pool.Starting, "i-0abc", "10.1.2.3", "burst-renamed"
	started.UpdatedAt = T0.Add(time.Second)
	putMachine(t, s, started)
	requireEqual(t, started, getMachine(t, s, intent.ID))

	ended := started
	ended.State, ended.Reason = pool.Failed, "its agent did not register within start_timeout 30s"
	ended.EndedAt, ended.UpdatedAt = T0.Add(31*time.Second), T0.Add(31*time.Second)
	putMachine(t, s, ended)
	requireEqual(t, ended, getMachine(t, s, intent.ID))
	require.Len(t, listMachines(t, s, p.Name, false), 1, "an updated machine is still one machine")
}

func testGetMachineMissing(t *testing.T, s store.Store) {
	putMachine(t, s, NewMachine("burst"))
	requireNotFound(t, s, "machine never stored", func(ctx context.Context, r store.Reader) error {
		_, err := r.GetMachine(ctx, "m-nope")
		return err
	})
}

// testListMachines: a pool's machines, oldest launch first; live leaves
// out the terminated and failed; "" lists every pool's.
func testListMachines(t *testing.T, s store.Store) {
	at := func(d time.Duration, state pool.MachineState) func(*pool.Machine) {
		return func(m *pool.Machine) {
			m.LaunchedAt, m.State = T0.Add(d), state
			if state.Ended() {
				m.EndedAt = T0.Add(d + time.Minute)
			}
		}
	}
	a3 := NewMachine("a", at(3*time.Second, pool.Draining))
	a1 := NewMachine("a", at(time.Second, pool.Failed))
	a2 := NewMachine("a", at(2*time.Second, pool.Launching))
	a4 := NewMachine("a", at(4*time.Second, pool.Terminated))
	a5 := NewMachine("a", at(5*time.Second, pool.Starting))
	a6 := NewMachine("a", at(6*time.Second, pool.Terminating))
	b0 := NewMachine("b", at(0, pool.Ready))
	putMachine(t, s, a3, a1, b0, a2, a4, a5, a6)

	require.Equal(t, machineIDs([]pool.Machine{a1, a2, a3, a4, a5, a6}), machineIDs(listMachines(t, s, "a", false)))
	require.Equal(t, machineIDs([]pool.Machine{a2, a3, a5, a6}), machineIDs(listMachines(t, s, "a", true)),
		"live: launching, starting, ready, draining and terminating; not terminated or failed")
	require.Equal(t, machineIDs([]pool.Machine{b0, a1, a2, a3, a4, a5, a6}), machineIDs(listMachines(t, s, "", false)))
	require.Equal(t, machineIDs([]pool.Machine{b0, a2, a3, a5, a6}), machineIDs(listMachines(t, s, "", true)))
	require.Empty(t, listMachines(t, s, "c", false))
	requireEqual(t, []pool.Machine{b0}, listMachines(t, s, "b", true))
}

// testSettings: an unset setting is ErrNotFound; a put sets it, a second
// put replaces it.
func testSettings(t *testing.T, s store.Store) {
	requireNotFound(t, s, "unset setting", func(ctx context.Context, r store.Reader) error {
		_, err := r.GetSetting(ctx, "cluster_id")
		return err
	})
	get := func(key string) string {
		var v string
		view(t, s, func(ctx context.Context, r store.Reader) (err error) {
			v, err = r.GetSetting(ctx, key)
			return err
		})
		return v
	}
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.PutSetting(ctx, "cluster_id", "cabcdefgh") })
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.PutSetting(ctx, "other", "") })
	require.Equal(t, "cabcdefgh", get("cluster_id"))
	require.Equal(t, "", get("other"), "an empty value is a value")
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.PutSetting(ctx, "cluster_id", "c2") })
	require.Equal(t, "c2", get("cluster_id"))
}

// testDeleteNode: DeleteNode removes one node's record and no other's;
// a node that is not there is ErrNotFound.
func testDeleteNode(t *testing.T, s store.Store) {
	gone, kept := NewNode(), NewNode()
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := tx.PutNode(ctx, gone); err != nil {
			return err
		}
		return tx.PutNode(ctx, kept)
	})
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.DeleteNode(ctx, gone.Name) })
	requireNotFound(t, s, "deleted node", func(ctx context.Context, r store.Reader) error {
		_, err := r.GetNode(ctx, gone.Name)
		return err
	})
	var left []node.Node
	view(t, s, func(ctx context.Context, r store.Reader) (err error) {
		left, err = r.ListNodes(ctx)
		return err
	})
	requireEqual(t, []node.Node{kept}, left)
	for _, name := range []string{gone.Name, "never"} {
		err := s.Update(t.Context(), func(tx store.Tx) error { return tx.DeleteNode(t.Context(), name) })
		require.ErrorIs(t, err, store.ErrNotFound, "delete node %s", name)
	}
}
