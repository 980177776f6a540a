package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/drover-dev/drover/internal/pool"
)

// ---- pools

func (t *tx) GetPool(ctx context.Context, name string) (pool.Pool, error) {
	var def string
	if err := t.queryRow(ctx, `SELECT definition FROM pools WHERE name = ?`, name).Scan(&def); err != nil {
		return pool.Pool{}, fmt.Errorf("get pool %s: %w", name, translate(err))
	}
	var p pool.Pool
	if err := json.Unmarshal([]byte(def), &p); err != nil {
		return pool.Pool{}, fmt.Errorf("decode pool %s: %w", name, err)
	}
	return p, nil
}

func (t *tx) ListPools(ctx context.Context) ([]pool.Pool, error) {
	rows, err := t.query(ctx, `SELECT name, definition FROM pools ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list pools: %w", translate(err))
	}
	defer rows.Close()
	var out []pool.Pool
	for rows.Next() {
		var name, def string
		if err := rows.Scan(&name, &def); err != nil {
			return nil, fmt.Errorf("list pools: %w", translate(err))
		}
		var p pool.Pool
		if err := json.Unmarshal([]byte(def), &p); err != nil {
			return nil, fmt.Errorf("decode pool %s: %w", name, err)
		}
		out = append(out, p)
	}
	return out, translate(rows.Err())
}

func (t *tx) PutPool(ctx context.Context, p pool.Pool) error {
	// The definition is JSON, which keeps a time's zone; the store hands
	// every time back in UTC, so it writes them in UTC.
	p.CreatedAt, p.UpdatedAt = p.CreatedAt.UTC(), p.UpdatedAt.UTC()
	p.Status.BackoffUntil, p.Status.LastScaleUp, p.Status.LastDown = p.Status.BackoffUntil.UTC(), p.Status.LastScaleUp.UTC(), p.Status.LastDown.UTC()
	p.Packages = slices.Clone(p.Packages)
	for i := range p.Packages {
		p.Packages[i].AddedAt = p.Packages[i].AddedAt.UTC()
	}
	def, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode pool %s: %w", p.Name, err)
	}
	_, err = t.exec(ctx, `INSERT INTO pools (name, definition, created_at, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET definition = excluded.definition, updated_at = excluded.updated_at`,
		p.Name, string(def), ns(p.CreatedAt), ns(p.UpdatedAt))
	if err != nil {
		return fmt.Errorf("put pool %s: %w", p.Name, translate(err))
	}
	return nil
}

func (t *tx) DeletePool(ctx context.Context, name string) error {
	if err := t.deleteOne(ctx, `DELETE FROM pools WHERE name = ?`, "pool "+name, name); err != nil {
		return err
	}
	if _, err := t.exec(ctx, `DELETE FROM machines WHERE pool = ?`, name); err != nil {
		return fmt.Errorf("delete machines of pool %s: %w", name, translate(err))
	}
	return nil
}

// ---- machines

const machineCols = `id, pool, node, provider_id, state, reason, address, launched_at, registered_at, ended_at, updated_at`

func scanMachine(row interface{ Scan(...any) error }) (pool.Machine, error) {
	var m pool.Machine
	var state string
	var launched, registered, ended, updated int64
	if err := row.Scan(&m.ID, &m.Pool, &m.Node, &m.ProviderID, &state, &m.Reason, &m.Address,
		&launched, &registered, &ended, &updated); err != nil {
		return pool.Machine{}, translate(err)
	}
	m.State = pool.MachineState(state)
	m.LaunchedAt, m.RegisteredAt, m.EndedAt, m.UpdatedAt = fromNS(launched), fromNS(registered), fromNS(ended), fromNS(updated)
	return m, nil
}

func (t *tx) GetMachine(ctx context.Context, id string) (pool.Machine, error) {
	m, err := scanMachine(t.queryRow(ctx, `SELECT `+machineCols+` FROM machines WHERE id = ?`, id))
	if err != nil {
		return pool.Machine{}, fmt.Errorf("get machine %s: %w", id, err)
	}
	return m, nil
}

func (t *tx) ListMachines(ctx context.Context, poolName string, live bool) ([]pool.Machine, error) {
	q := `SELECT ` + machineCols + ` FROM machines WHERE (? = '' OR pool = ?)`
	if live {
		q += ` AND state NOT IN ('terminated', 'failed')`
	}
	q += ` ORDER BY launched_at, id`
	rows, err := t.query(ctx, q, poolName, poolName)
	if err != nil {
		return nil, fmt.Errorf("list machines: %w", translate(err))
	}
	defer rows.Close()
	var out []pool.Machine
	for rows.Next() {
		m, err := scanMachine(rows)
		if err != nil {
			return nil, fmt.Errorf("list machines: %w", err)
		}
		out = append(out, m)
	}
	return out, translate(rows.Err())
}

func (t *tx) PutMachine(ctx context.Context, m pool.Machine) error {
	_, err := t.exec(ctx, `INSERT INTO machines (`+machineCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET node = excluded.node, provider_id = excluded.provider_id, state = excluded.state,
		reason = excluded.reason, address = excluded.address, registered_at = excluded.registered_at,
		ended_at = excluded.ended_at, updated_at = excluded.updated_at`,
		m.ID, m.Pool, m.Node, m.ProviderID, string(m.State), m.Reason, m.Address,
		ns(m.LaunchedAt), ns(m.RegisteredAt), ns(m.EndedAt), ns(m.UpdatedAt))
	if err != nil {
		return fmt.Errorf("put machine %s: %w", m.ID, translate(err))
	}
	return nil
}

// ---- settings, nodes

func (t *tx) GetSetting(ctx context.Context, key string) (string, error) {
	var v string
	if err := t.queryRow(ctx, `SELECT value FROM settings WHERE key = ?`, key).Scan(&v); err != nil {
		return "", fmt.Errorf("get setting %s: %w", key, translate(err))
	}
	return v, nil
}

func (t *tx) PutSetting(ctx context.Context, key, value string) error {
	_, err := t.exec(ctx, `INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
	if err != nil {
		return fmt.Errorf("put setting %s: %w", key, translate(err))
	}
	return nil
}

func (t *tx) DeleteNode(ctx context.Context, name string) error {
	return t.deleteOne(ctx, `DELETE FROM nodes WHERE name = ?`, "node "+name, name)
}
