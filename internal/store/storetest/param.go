package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/param"
	"github.com/drover-dev/drover/internal/secret"
	"github.com/drover-dev/drover/internal/store"
)

func paramCases() []testCase {
	return []testCase{
		{"round trip and replace", testParamRoundTrip},
		{"list per role", testParamList},
		{"delete", testParamDelete},
	}
}

// requireParam fails t unless got holds want's fields; a secret.String
// is compared by its revealed value.
func requireParam(t *testing.T, want, got param.Param) {
	t.Helper()
	require.Equal(t, want.Role, got.Role)
	require.Equal(t, want.Name, got.Name)
	require.Equal(t, want.Value.Reveal(), got.Value.Reveal())
	require.Equal(t, want.Secret, got.Secret)
	require.True(t, want.UpdatedAt.Equal(got.UpdatedAt), "updated_at %s, want %s", got.UpdatedAt, want.UpdatedAt)
	requireUTC(t, "param", &got.UpdatedAt)
}

func getParam(t *testing.T, s store.Store, role, name string) param.Param {
	t.Helper()
	var got param.Param
	view(t, s, func(ctx context.Context, r store.Reader) (err error) {
		got, err = r.GetParam(ctx, role, name)
		return err
	})
	return got
}

// testParamRoundTrip: a parameter round-trips, a secret one too, with a
// value that is not plain text; a second put replaces value, secrecy and
// time.
func testParamRoundTrip(t *testing.T, s store.Store) {
	p := param.Param{Role: "analytics", Name: "db_host", Value: secret.New("db.internal"), UpdatedAt: T0}
	pw := param.Param{Role: "analytics", Name: "pw", Value: secret.New("hünter2 $(id); 'x'\n"), Secret: true, UpdatedAt: T0}
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := tx.PutParam(ctx, p); err != nil {
			return err
		}
		return tx.PutParam(ctx, pw)
	})
	requireParam(t, p, getParam(t, s, "analytics", "db_host"))
	requireParam(t, pw, getParam(t, s, "analytics", "pw"))

	p2 := param.Param{Role: "analytics", Name: "db_host", Value: secret.New("db2"), Secret: true, UpdatedAt: T0.Add(time.Hour)}
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.PutParam(ctx, p2) })
	requireParam(t, p2, getParam(t, s, "analytics", "db_host"))

	requireNotFound(t, s, "another role's parameter", func(ctx context.Context, r store.Reader) error {
		_, err := r.GetParam(ctx, "billing", "db_host")
		return err
	})
}

// testParamList: ListParams answers one role's parameters by name, and
// none for a role without any.
func testParamList(t *testing.T, s store.Store) {
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, p := range []param.Param{
			{Role: "a", Name: "zeta", Value: secret.New("1"), UpdatedAt: T0},
			{Role: "a", Name: "alpha", Value: secret.New("2"), UpdatedAt: T0},
			{Role: "b", Name: "alpha", Value: secret.New("3"), UpdatedAt: T0},
		} {
			if err := tx.PutParam(ctx, p); err != nil {
				return err
			}
		}
		return nil
	})
	var a, none []param.Param
	view(t, s, func(ctx context.Context, r store.Reader) (err error) {
		if a, err = r.ListParams(ctx, "a"); err != nil {
			return err
		}
		none, err = r.ListParams(ctx, "c")
		return err
	})
	require.Len(t, a, 2)
	require.Equal(t, "alpha", a[0].Name)
	require.Equal(t, "2", a[0].Value.Reveal())
	require.Equal(t, "zeta", a[1].Name)
	require.Empty(t, none)
}

// testParamDelete: delete removes one parameter; deleting it again, or
// one never set, is ErrNotFound.
func testParamDelete(t *testing.T, s store.Store) {
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := tx.PutParam(ctx, param.Param{Role: "a", Name: "x", Value: secret.New("1"), UpdatedAt: T0}); err != nil {
			return err
		}
		return tx.PutParam(ctx, param.Param{Role: "b", Name: "x", Value: secret.New("2"), UpdatedAt: T0})
	})
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.DeleteParam(ctx, "a", "x") })
	err := s.Update(t.Context(), func(tx store.Tx) error { return tx.DeleteParam(t.Context(), "a", "x") })
	require.ErrorIs(t, err, store.ErrNotFound)
	requireNotFound(t, s, "deleted parameter", func(ctx context.Context, r store.Reader) error {
		_, err := r.GetParam(ctx, "a", "x")
		return err
	})
	require.Equal(t, "2", getParam(t, s, "b", "x").Value.Reveal(), "the other role's parameter stays")
}
