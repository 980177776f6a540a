package sqlite

import (
	"context"
	"fmt"

	"github.com/drover-dev/drover/internal/param"
	"github.com/drover-dev/drover/internal/secret"
)

func scanParam(row interface{ Scan(...any) error }) (param.Param, error) {
	var p param.Param
	var value string
	var updated int64
	if err := row.Scan(&p.Role, &p.Name, &value, &p.Secret, &updated); err != nil {
		return param.Param{}, translate(err)
	}
	p.Value, p.UpdatedAt = secret.New(value), fromNS(updated)
	return p, nil
}

func (t *tx) GetParam(ctx context.Context, role, name string) (param.Param, error) {
	p, err := scanParam(t.queryRow(ctx, `SELECT role, name, value, secret, updated_at FROM params WHERE role = ? AND name = ?`, role, name))
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
		p, err := scanParam(rows)
		if err != nil {
			return nil, fmt.Errorf("list parameters of %s: %w", role, err)
		}
		out = append(out, p)
	}
	return out, translate(rows.Err())
}

func (t *tx) PutParam(ctx context.Context, p param.Param) error {
	_, err := t.exec(ctx, `INSERT INTO params (role, name, value, secret, updated_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (role, name) DO UPDATE SET value = excluded.value, secret = excluded.secret, updated_at = excluded.updated_at`,
		p.Role, p.Name, p.Value.Reveal(), p.Secret, ns(p.UpdatedAt))
	if err != nil {
		return fmt.Errorf("put parameter %s/%s: %w", p.Role, p.Name, translate(err))
	}
	return nil
}

func (t *tx) DeleteParam(ctx context.Context, role, name string) error {
	return t.deleteOne(ctx, `DELETE FROM params WHERE role = ? AND name = ?`, "parameter "+role+"/"+name, role, name)
}
