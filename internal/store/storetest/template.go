package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/store"
	"github.com/drover-dev/drover/internal/template"
)

func templateCases() []testCase {
	return []testCase{
		{"round trip and replace", testTemplateRoundTrip},
		{"list by key", testTemplateList},
		{"delete", testTemplateDelete},
	}
}

func getTemplate(t *testing.T, s store.Store, key job.Key) template.Template {
	t.Helper()
	var got template.Template
	view(t, s, func(ctx context.Context, r store.Reader) (err error) {
		got, err = r.GetTemplate(ctx, key)
		return err
	})
	return got
}

func requireTemplate(t *testing.T, want, got template.Template) {
	t.Helper()
	require.Equal(t, want.Key, got.Key)
	require.Equal(t, want.Source, got.Source)
	require.True(t, want.UpdatedAt.Equal(got.UpdatedAt), "updated_at %s, want %s", got.UpdatedAt, want.UpdatedAt)
	requireUTC(t, "template", &got.UpdatedAt)
}

// testTemplateRoundTrip: a template's source comes back byte for byte,
// comments, odd spacing and all; a second put replaces source and time.
func testTemplateRoundTrip(t *testing.T, s store.Store) {
	key := job.Key{Role: "etl", Env: "prod", Name: "nightly"}
	tp := template.Template{Key: key, UpdatedAt: T0,
		Source: "# nightly load\ntemplate:   etl/prod/nightly\t\njob: {task: {command: [\"echo\", \"{{ .Inputs.date }}\", \"hünter'$(id)\"]}}\n\n"}
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.PutTemplate(ctx, tp) })
	requireTemplate(t, tp, getTemplate(t, s, key))

	tp2 := template.Template{Key: key, Source: "template: etl/prod/nightly\n", UpdatedAt: T0.Add(time.Hour)}
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.PutTemplate(ctx, tp2) })
	requireTemplate(t, tp2, getTemplate(t, s, key))

	requireNotFound(t, s, "a template never put", func(ctx context.Context, r store.Reader) error {
		_, err := r.GetTemplate(ctx, job.Key{Role: "etl", Env: "dev", Name: "nightly"})
		return err
	})
}

// testTemplateList: ListTemplates answers every template ordered by key,
// and none (no error) when there are none.
func testTemplateList(t *testing.T, s store.Store) {
	var none []template.Template
	view(t, s, func(ctx context.Context, r store.Reader) (err error) {
		none, err = r.ListTemplates(ctx)
		return err
	})
	require.Empty(t, none)
	keys := []job.Key{{Role: "b", Env: "prod", Name: "x"}, {Role: "a", Env: "prod", Name: "z"}, {Role: "a", Env: "dev", Name: "y"}}
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, k := range keys {
			if err := tx.PutTemplate(ctx, template.Template{Key: k, Source: "template: " + k.String() + "\n", UpdatedAt: T0}); err != nil {
				return err
			}
		}
		return nil
	})
	var got []template.Template
	view(t, s, func(ctx context.Context, r store.Reader) (err error) {
		got, err = r.ListTemplates(ctx)
		return err
	})
	require.Len(t, got, 3)
	for i, want := range []job.Key{keys[2], keys[1], keys[0]} {
		require.Equal(t, want, got[i].Key)
		require.Equal(t, "template: "+want.String()+"\n", got[i].Source)
	}
}

// testTemplateDelete: delete removes one template; deleting it again is
// ErrNotFound, and the others stay.
func testTemplateDelete(t *testing.T, s store.Store) {
	a, b := job.Key{Role: "a", Env: "prod", Name: "x"}, job.Key{Role: "b", Env: "prod", Name: "x"}
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := tx.PutTemplate(ctx, template.Template{Key: a, Source: "1", UpdatedAt: T0}); err != nil {
			return err
		}
		return tx.PutTemplate(ctx, template.Template{Key: b, Source: "2", UpdatedAt: T0})
	})
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.DeleteTemplate(ctx, a) })
	err := s.Update(t.Context(), func(tx store.Tx) error { return tx.DeleteTemplate(t.Context(), a) })
	require.ErrorIs(t, err, store.ErrNotFound)
	requireNotFound(t, s, "deleted template", func(ctx context.Context, r store.Reader) error {
		_, err := r.GetTemplate(ctx, a)
		return err
	})
	require.Equal(t, "2", getTemplate(t, s, b).Source, "the other template stays")
}
