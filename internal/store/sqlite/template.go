package sqlite

import (
	"context"
	"fmt"

	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/template"
)

func scanTemplate(row interface{ Scan(...any) error }) (template.Template, error) {
	var t template.Template
	var updated int64
	if err := row.Scan(&t.Key.Role, &t.Key.Env, &t.Key.Name, &t.Source, &updated); err != nil {
		return template.Template{}, translate(err)
	}
	t.UpdatedAt = fromNS(updated)
	return t, nil
}

func (t *tx) GetTemplate(ctx context.Context, key job.Key) (template.Template, error) {
	tp, err := scanTemplate(t.queryRow(ctx, `SELECT role, env, name, source, updated_at FROM templates WHERE key = ?`, key.String()))
	if err != nil {
		return template.Template{}, fmt.Errorf("get template %s: %w", key, err)
	}
	return tp, nil
}

func (t *tx) ListTemplates(ctx context.Context) ([]template.Template, error) {
	rows, err := t.query(ctx, `SELECT role, env, name, source, updated_at FROM templates ORDER BY role, env, name`)
	if err != nil {
		return nil, fmt.Errorf("list templates: %w", translate(err))
	}
	defer rows.Close()
	var out []template.Template
	for rows.Next() {
		tp, err := scanTemplate(rows)
		if err != nil {
			return nil, fmt.Errorf("list templates: %w", err)
		}
		out = append(out, tp)
	}
	return out, translate(rows.Err())
}

func (t *tx) PutTemplate(ctx context.Context, tp template.Template) error {
	_, err := t.exec(ctx, `INSERT INTO templates (key, role, env, name, source, updated_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET source = excluded.source, updated_at = excluded.updated_at`,
		tp.Key.String(), tp.Key.Role, tp.Key.Env, tp.Key.Name, tp.Source, ns(tp.UpdatedAt))
	if err != nil {
		return fmt.Errorf("put template %s: %w", tp.Key, translate(err))
	}
	return nil
}

func (t *tx) DeleteTemplate(ctx context.Context, key job.Key) error {
	return t.deleteOne(ctx, `DELETE FROM templates WHERE key = ?`, "template "+key.String(), key.String())
}
