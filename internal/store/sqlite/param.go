package sqlite

import (
	"context"
	"fmt"

	"github.com/drover-dev/drover/internal/param"
	"github.com/drover-dev/drover/internal/secret"
)

func (t *tx) scanParam(row interface{ Scan(...any) error }) (param.Param, error) {
	var p param.Param
	var value string
	var updated int64
	if err := row.Scan(&p.Role, &p.Name, &value, &p.Secret, &updated); err != nil {
		return param.Param{}, translate(err)
	}
	if p.Secret {
		v, err := t.seal.open(value, paramAD(p.Role, p.Name))
		if err != nil {
			return param.Param{}, fmt.Errorf("parameter %s/%s: %w", p.Role, p.Name, err)
		}
		value = v
	}
	p.Value, p.UpdatedAt = secret.New(value), fromNS(updated)
	return p, nil
}

// paramAD binds a sealed value to its parameter.
func paramAD(role, name string) string { return "param\x00" + role + "\x00" + name }

func (t *tx) GetParam(ctx context.Context, role, name string) (param.Param, error) {
	p, err := t.scanParam(t.queryRow(ctx, `SELECT role, name, value, secret, updated_at FROM params WHERE role = ? AND name = ?`, role, name))
	if err != nil {
		return param.Param{}, fmt.Errorf("get parameter %s/%s: %w", role, name, err)
	}
	return p, nil
}

func (t *tx) ListParams(ctx context.Context, role string) ([]param.Param, error) {
	rows, err := t.query(ctx, `SELECT role, name, value, secret, updated_at FROM params WHERE role = ? ORDER BY name`, role)
	if err != nil {
		return nil, fmt.Errorf("list parameters of %s: %w", role, translate(err))
	}
	defer rows.Close()
	var out []param.Param
	for rows.Next() {
		p, err := t.scanParam(rows)
		if err != nil {
			return nil, fmt.Errorf("list parameters of %s: %w", role, err)
		}
		out = append(out, p)
	}
	return out, translate(rows.Err())
}

func (t *tx) PutParam(ctx context.Context, p param.Param) error {
	value := p.Value.Reveal()
	if p.Secret {
		var err error
		if value, err = t.seal.seal(value, paramAD(p.Role, p.Name)); err != nil {
			return fmt.Errorf("put parameter %s/%s: %w", p.Role, p.Name, err)
		}
	}
	_, err := t.exec(ctx, `INSERT INTO params (role, name, value, secret, updated_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (role, name) DO UPDATE SET value = excluded.value, secret = excluded.secret, updated_at = excluded.updated_at`,
		p.Role, p.Name, value, p.Secret, ns(p.UpdatedAt))
	if err != nil {
		return fmt.Errorf("put parameter %s/%s: %w", p.Role, p.Name, translate(err))
	}
	return nil
}

func (t *tx) DeleteParam(ctx context.Context, role, name string) error {
	return t.deleteOne(ctx, `DELETE FROM params WHERE role = ? AND name = ?`, "parameter "+role+"/"+name, role, name)
}
