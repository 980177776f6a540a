package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/auth"
	"github.com/drover-dev/drover/internal/store"
)

func authCases() []testCase {
	return []testCase{
		{"users", testUsers},
		{"roles", testRoles},
		{"tokens", testTokens},
		{"sessions", testSessions},
	}
}

// testUsers: a user round-trips; a second put replaces password and roles
// but keeps the creation time; delete removes it, and deleting again is
// ErrNotFound.
func testUsers(t *testing.T, s store.Store) {
	u := auth.User{Name: "alice", PasswordHash: "$argon2id$x", Roles: []string{"team-a", "viewer"}, CreatedAt: T0}
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.PutUser(ctx, u) })
	var got auth.User
	view(t, s, func(ctx context.Context, r store.Reader) (err error) {
		got, err = r.GetUser(ctx, "alice")
		return err
	})
	requireEqual(t, u, got)

	u2 := auth.User{Name: "alice", Roles: nil, CreatedAt: T0.Add(time.Hour)}
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.PutUser(ctx, u2) })
	var all []auth.User
	view(t, s, func(ctx context.Context, r store.Reader) (err error) {
		all, err = r.ListUsers(ctx)
		return err
	})
	require.Len(t, all, 1)
	require.Empty(t, all[0].PasswordHash)
	require.Empty(t, all[0].Roles)
	require.Equal(t, T0, all[0].CreatedAt, "the first creation time stays")

	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.DeleteUser(ctx, "alice") })
	err := s.Update(context.Background(), func(tx store.Tx) error { return tx.DeleteUser(context.Background(), "alice") })
	require.True(t, errors.Is(err, store.ErrNotFound), "err %v", err)
	err = s.View(context.Background(), func(r store.Reader) error {
		_, err := r.GetUser(context.Background(), "alice")
		return err
	})
	require.True(t, errors.Is(err, store.ErrNotFound), "err %v", err)
}

func testRoles(t *testing.T, s store.Store) {
	r := auth.Role{Name: "team-a", Permissions: auth.TeamPermissions("team-a"), CreatedAt: T0}
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := tx.PutRole(ctx, auth.AdminRole); err != nil {
			return err
		}
		return tx.PutRole(ctx, r)
	})
	var got auth.Role
	var all []auth.Role
	view(t, s, func(ctx context.Context, rd store.Reader) (err error) {
		if got, err = rd.GetRole(ctx, "team-a"); err != nil {
			return err
		}
		all, err = rd.ListRoles(ctx)
		return err
	})
	requireEqual(t, r, got)
	require.Len(t, all, 2)
	require.Equal(t, "admin", all[0].Name, "by name")
	require.Equal(t, []auth.Permission{auth.Admin}, all[0].Permissions)
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.DeleteRole(ctx, "team-a") })
	err := s.View(context.Background(), func(rd store.Reader) error {
		_, err := rd.GetRole(context.Background(), "team-a")
		return err
	})
	require.True(t, errors.Is(err, store.ErrNotFound), "err %v", err)
}

// testTokens: every field round-trips, the owner filter holds, and a later
// put records a revocation and a node binding.
func testTokens(t *testing.T, s store.Store) {
	exp := T0.Add(24 * time.Hour)
	a := auth.Token{ID: "aaaaaaaaaaaa", SecretHash: "h1", Kind: auth.APIToken, Owner: "alice", Name: "ci",
		Scope: []auth.Permission{{Resource: "job", Verb: "read", Scope: "team-a"}}, CreatedAt: T0, ExpiresAt: &exp}
	b := auth.Token{ID: "bbbbbbbbbbbb", SecretHash: "h2", Kind: auth.AgentToken, Name: "agents", CreatedAt: T0.Add(time.Second)}
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := tx.PutToken(ctx, a); err != nil {
			return err
		}
		return tx.PutToken(ctx, b)
	})
	var got auth.Token
	var alices, all []auth.Token
	view(t, s, func(ctx context.Context, r store.Reader) (err error) {
		if got, err = r.GetToken(ctx, a.ID); err != nil {
			return err
		}
		if alices, err = r.ListTokens(ctx, "alice"); err != nil {
			return err
		}
		all, err = r.ListTokens(ctx, "")
		return err
	})
	requireEqual(t, a, got)
	require.Len(t, alices, 1)
	require.Len(t, all, 2)

	rev := T0.Add(time.Minute)
	b.RevokedAt, b.Node = &rev, "n1"
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.PutToken(ctx, b) })
	view(t, s, func(ctx context.Context, r store.Reader) (err error) {
		got, err = r.GetToken(ctx, b.ID)
		return err
	})
	requireEqual(t, b, got)
	require.False(t, got.IsUsable(T0.Add(time.Hour)))
}

// testSessions: a session is found until it expires; expired ones are
// swept.
func testSessions(t *testing.T, s store.Store) {
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := tx.PutSession(ctx, "old", []byte("a"), T0); err != nil {
			return err
		}
		return tx.PutSession(ctx, "new", []byte("b"), T0.Add(time.Hour))
	})
	var data []byte
	view(t, s, func(ctx context.Context, r store.Reader) (err error) {
		data, err = r.GetSession(ctx, "new", T0)
		return err
	})
	require.Equal(t, []byte("b"), data)
	err := s.View(context.Background(), func(r store.Reader) error {
		_, err := r.GetSession(context.Background(), "old", T0)
		return err
	})
	require.True(t, errors.Is(err, store.ErrNotFound), "an expired session is not found: %v", err)
	var n int
	update(t, s, func(ctx context.Context, tx store.Tx) (err error) {
		n, err = tx.DeleteExpiredSessions(ctx, T0)
		return err
	})
	require.Equal(t, 1, n)
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.DeleteSession(ctx, "new") })
	err = s.View(context.Background(), func(r store.Reader) error {
		_, err := r.GetSession(context.Background(), "new", T0)
		return err
	})
	require.True(t, errors.Is(err, store.ErrNotFound))
}
