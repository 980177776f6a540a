package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/param"
	"github.com/drover-dev/drover/internal/secret"
	"github.com/drover-dev/drover/internal/store"
	"github.com/drover-dev/drover/internal/store/sqlite"
)

// TestSecretParamsSealedAtRest (SECURITY.md S13): a secret parameter's
// value is nowhere in the database's files in clear, only in what the
// store hands back; the key is a 0600 file beside the database, and a
// database copied without its key does not give its secrets away.
func TestSecretParamsSealedAtRest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "drover.db")
	const literal = "hunter2-very-secret-7f3a"
	const plain = "visible-value-5c1e"
	put := func(db *sqlite.DB) {
		require.NoError(t, db.Update(ctx, func(tx store.Tx) error {
			if err := tx.PutParam(ctx, param.Param{Role: "acme", Name: "db_password", Value: secret.New(literal), Secret: true, UpdatedAt: time.Now()}); err != nil {
				return err
			}
			return tx.PutParam(ctx, param.Param{Role: "acme", Name: "bucket", Value: secret.New(plain), UpdatedAt: time.Now()})
		}))
	}
	db, err := sqlite.Open(ctx, path)
	require.NoError(t, err)
	put(db)
	get := func(db *sqlite.DB) (param.Param, error) {
		var p param.Param
		err := db.View(ctx, func(r store.Reader) error {
			var err error
			p, err = r.GetParam(ctx, "acme", "db_password")
			return err
		})
		return p, err
	}
	p, err := get(db)
	require.NoError(t, err)
	require.Equal(t, literal, p.Value.Reveal())

	// Every file of the database, WAL included, while it is open.
	files, err := filepath.Glob(path + "*")
	require.NoError(t, err)
	var all []byte
	for _, f := range files {
		if f == path+".key" {
			continue
		}
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		all = append(all, data...)
	}
	require.True(t, bytes.Contains(all, []byte(plain)), "the search reads the files (a plain value is found)")
	require.False(t, bytes.Contains(all, []byte(literal)), "a secret value is in the database's files in clear")
	require.NoError(t, db.Close())

	info, err := os.Stat(path + ".key")
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())

	// Reopened, it reads back; the file alone, with another key, does not.
	db, err = sqlite.Open(ctx, path)
	require.NoError(t, err)
	p, err = get(db)
	require.NoError(t, err)
	require.Equal(t, literal, p.Value.Reveal())
	require.NoError(t, db.Close())

	copyDir := t.TempDir()
	for _, f := range files {
		if f == path+".key" {
			continue
		}
		data, err := os.ReadFile(f)
		if os.IsNotExist(err) {
			continue // the WAL went at close
		}
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(copyDir, filepath.Base(f)), data, 0o600))
	}
	stolen, err := sqlite.Open(ctx, filepath.Join(copyDir, "drover.db"))
	require.NoError(t, err)
	defer stolen.Close()
	_, err = get(stolen)
	require.ErrorContains(t, err, "does not open with the store's key")
}

// TestOldSecretsSealedAtOpen: a store written before sealing (secret
// values in clear) has them sealed when it is opened, and reads the same.
func TestOldSecretsSealedAtOpen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "drover.db")
	db, err := sqlite.Open(ctx, path)
	require.NoError(t, err)
	require.NoError(t, db.Close())
	raw, err := sql.Open("sqlite", "file:"+path)
	require.NoError(t, err)
	_, err = raw.Exec(`INSERT INTO params (role, name, value, secret, updated_at) VALUES ('acme', 'pw', 'old-clear-secret', 1, 1)`)
	require.NoError(t, err)

	db, err = sqlite.Open(ctx, path)
	require.NoError(t, err)
	defer db.Close()
	var stored string
	require.NoError(t, raw.QueryRow(`SELECT value FROM params WHERE name = 'pw'`).Scan(&stored))
	require.NoError(t, raw.Close())
	require.NotContains(t, stored, "old-clear-secret")
	require.True(t, strings.HasPrefix(stored, "sealed:v1:"), stored)
	require.NoError(t, db.View(ctx, func(r store.Reader) error {
		p, err := r.GetParam(ctx, "acme", "pw")
		require.NoError(t, err)
		require.Equal(t, "old-clear-secret", p.Value.Reveal())
		return nil
	}))
}
