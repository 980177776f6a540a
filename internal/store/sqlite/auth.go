package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/drover-dev/drover/internal/auth"
	"github.com/drover-dev/drover/internal/store"
)

// ---- users

func scanUser(row interface{ Scan(...any) error }) (auth.User, error) {
	var u auth.User
	var roles string
	var created int64
	if err := row.Scan(&u.Name, &u.PasswordHash, &roles, &created); err != nil {
		return auth.User{}, translate(err)
	}
	if err := json.Unmarshal([]byte(roles), &u.Roles); err != nil {
		return auth.User{}, fmt.Errorf("decode roles of user %s: %w", u.Name, err)
	}
	u.CreatedAt = fromNS(created)
	return u, nil
}

func (t *tx) GetUser(ctx context.Context, name string) (auth.User, error) {
	u, err := scanUser(t.queryRow(ctx, `SELECT name, password_hash, roles, created_at FROM users WHERE name = ?`, name))
	if err != nil {
		return auth.User{}, fmt.Errorf("get user %s: %w", name, err)
	}
	return u, nil
}

func (t *tx) ListUsers(ctx context.Context) ([]auth.User, error) {
	rows, err := t.query(ctx, `SELECT name, password_hash, roles, created_at FROM users ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", translate(err))
	}
	defer rows.Close()
	var out []auth.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
		out = append(out, u)
	}
	return out, translate(rows.Err())
}

func (t *tx) PutUser(ctx context.Context, u auth.User) error {
	roles, err := json.Marshal(nonNil(u.Roles))
	if err != nil {
		return err
	}
	_, err = t.exec(ctx, `INSERT INTO users (name, password_hash, roles, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET password_hash = excluded.password_hash, roles = excluded.roles`,
		u.Name, u.PasswordHash, string(roles), ns(u.CreatedAt))
	if err != nil {
		return fmt.Errorf("put user %s: %w", u.Name, translate(err))
	}
	return nil
}

func (t *tx) DeleteUser(ctx context.Context, name string) error {
	return t.deleteOne(ctx, `DELETE FROM users WHERE name = ?`, "user "+name, name)
}

// ---- roles

func scanRole(row interface{ Scan(...any) error }) (auth.Role, error) {
	var r auth.Role
	var perms string
	var created int64
	if err := row.Scan(&r.Name, &perms, &created); err != nil {
		return auth.Role{}, translate(err)
	}
	var ss []string
	if err := json.Unmarshal([]byte(perms), &ss); err != nil {
		return auth.Role{}, fmt.Errorf("decode permissions of role %s: %w", r.Name, err)
	}
	ps, err := auth.ParsePermissions(ss)
	if err != nil {
		return auth.Role{}, fmt.Errorf("role %s: %w", r.Name, err)
	}
	r.Permissions, r.CreatedAt = ps, fromNS(created)
	return r, nil
}

func (t *tx) GetRole(ctx context.Context, name string) (auth.Role, error) {
	r, err := scanRole(t.queryRow(ctx, `SELECT name, permissions, created_at FROM roles WHERE name = ?`, name))
	if err != nil {
		return auth.Role{}, fmt.Errorf("get role %s: %w", name, err)
	}
	return r, nil
}

func (t *tx) ListRoles(ctx context.Context) ([]auth.Role, error) {
	rows, err := t.query(ctx, `SELECT name, permissions, created_at FROM roles ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list roles: %w", translate(err))
	}
	defer rows.Close()
	var out []auth.Role
	for rows.Next() {
		r, err := scanRole(rows)
		if err != nil {
			return nil, fmt.Errorf("list roles: %w", err)
		}
		out = append(out, r)
	}
	return out, translate(rows.Err())
}

func (t *tx) PutRole(ctx context.Context, r auth.Role) error {
	perms, err := json.Marshal(auth.Strings(r.Permissions))
	if err != nil {
		return err
	}
	_, err = t.exec(ctx, `INSERT INTO roles (name, permissions, created_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET permissions = excluded.permissions`, r.Name, string(perms), ns(r.CreatedAt))
	if err != nil {
		return fmt.Errorf("put role %s: %w", r.Name, translate(err))
	}
	return nil
}

func (t *tx) DeleteRole(ctx context.Context, name string) error {
	return t.deleteOne(ctx, `DELETE FROM roles WHERE name = ?`, "role "+name, name)
}

// ---- tokens

const tokenCols = `id, secret_hash, kind, owner, name, scope, node, created_at, expires_at, revoked_at`

func scanToken(row interface{ Scan(...any) error }) (auth.Token, error) {
	var tk auth.Token
	var kind, scope string
	var created int64
	var expires, revoked sql.NullInt64
	if err := row.Scan(&tk.ID, &tk.SecretHash, &kind, &tk.Owner, &tk.Name, &scope, &tk.Node, &created, &expires, &revoked); err != nil {
		return auth.Token{}, translate(err)
	}
	var ss []string
	if err := json.Unmarshal([]byte(scope), &ss); err != nil {
		return auth.Token{}, fmt.Errorf("decode scope of token %s: %w", tk.ID, err)
	}
	ps, err := auth.ParsePermissions(ss)
	if err != nil {
		return auth.Token{}, fmt.Errorf("token %s: %w", tk.ID, err)
	}
	if len(ps) > 0 {
		tk.Scope = ps
	}
	tk.Kind, tk.CreatedAt = auth.TokenKind(kind), fromNS(created)
	tk.ExpiresAt, tk.RevokedAt = fromNSPtr(expires), fromNSPtr(revoked)
	return tk, nil
}

func (t *tx) GetToken(ctx context.Context, id string) (auth.Token, error) {
	tk, err := scanToken(t.queryRow(ctx, `SELECT `+tokenCols+` FROM tokens WHERE id = ?`, id))
	if err != nil {
		return auth.Token{}, fmt.Errorf("get token %s: %w", id, err)
	}
	return tk, nil
}

func (t *tx) ListTokens(ctx context.Context, owner string) ([]auth.Token, error) {
	q, args := `SELECT `+tokenCols+` FROM tokens ORDER BY created_at, id`, []any{}
	if owner != "" {
		q, args = `SELECT `+tokenCols+` FROM tokens WHERE owner = ? ORDER BY created_at, id`, []any{owner}
	}
	rows, err := t.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", translate(err))
	}
	defer rows.Close()
	var out []auth.Token
	for rows.Next() {
		tk, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("list tokens: %w", err)
		}
		out = append(out, tk)
	}
	return out, translate(rows.Err())
}

func (t *tx) PutToken(ctx context.Context, tk auth.Token) error {
	scope, err := json.Marshal(nonNil(auth.Strings(tk.Scope)))
	if err != nil {
		return err
	}
	_, err = t.exec(ctx, `INSERT INTO tokens (`+tokenCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET node = excluded.node, expires_at = excluded.expires_at, revoked_at = excluded.revoked_at`,
		tk.ID, tk.SecretHash, string(tk.Kind), tk.Owner, tk.Name, string(scope), tk.Node, ns(tk.CreatedAt),
		nsPtr(tk.ExpiresAt), nsPtr(tk.RevokedAt))
	if err != nil {
		return fmt.Errorf("put token %s: %w", tk.ID, translate(err))
	}
	return nil
}

// ---- sessions

func (t *tx) GetSession(ctx context.Context, token string, now time.Time) ([]byte, error) {
	var data []byte
	err := t.queryRow(ctx, `SELECT data FROM sessions WHERE token = ? AND expiry > ?`, token, ns(now)).Scan(&data)
	if err != nil {
		return nil, fmt.Errorf("get session: %w", translate(err))
	}
	return data, nil
}

func (t *tx) PutSession(ctx context.Context, token string, data []byte, expiry time.Time) error {
	_, err := t.exec(ctx, `INSERT INTO sessions (token, data, expiry) VALUES (?, ?, ?)
		ON CONFLICT (token) DO UPDATE SET data = excluded.data, expiry = excluded.expiry`, token, data, ns(expiry))
	if err != nil {
		return fmt.Errorf("put session: %w", translate(err))
	}
	return nil
}

func (t *tx) DeleteSession(ctx context.Context, token string) error {
	if _, err := t.exec(ctx, `DELETE FROM sessions WHERE token = ?`, token); err != nil {
		return fmt.Errorf("delete session: %w", translate(err))
	}
	return nil
}

func (t *tx) DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error) {
	res, err := t.exec(ctx, `DELETE FROM sessions WHERE expiry <= ?`, ns(now))
	if err != nil {
		return 0, fmt.Errorf("delete expired sessions: %w", translate(err))
	}
	n, err := res.RowsAffected()
	return int(n), translate(err)
}

// deleteOne deletes the one row a statement names, or answers ErrNotFound.
func (t *tx) deleteOne(ctx context.Context, q, what string, args ...any) error {
	res, err := t.exec(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("delete %s: %w", what, translate(err))
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("delete %s: %w", what, store.ErrNotFound)
	}
	return nil
}

func nonNil(ss []string) []string {
	if ss == nil {
		return []string{}
	}
	return ss
}
