// Package sqlite is the embedded engine of store: one SQLite file in WAL mode
// with synchronous=FULL, so a commit that returned survives a crash. It keeps
// one writer connection (SQLite allows one writer at a time; transactions
// begin IMMEDIATE so they never deadlock upgrading a read lock) and a small
// pool of read-only connections.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/drover-dev/drover/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is a store.Store backed by one SQLite file.
type DB struct {
	write *sql.DB
	read  *sql.DB
	// dir holds the database file; a failed write looks at its free
	// space (see noSpace).
	dir string

	// Statements of write transactions, prepared once on the writer
	// connection and reused: parsing each statement again was a third of
	// the writer's time. A statement seen in a transaction is prepared
	// after it commits, when the one writer connection is free.
	// seal encrypts secret parameter values (sealer.go).
	seal *sealer

	stmtMu sync.Mutex
	stmts  map[string]*sql.Stmt
	want   map[string]bool
	closed bool
}

var _ store.Store = (*DB)(nil)

// Open opens (creating if needed) the database file at path and applies
// pending migrations.
func Open(ctx context.Context, path string) (*DB, error) {
	dsn := func(readOnly bool) string {
		q := url.Values{}
		q.Add("_pragma", "busy_timeout(10000)")
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(FULL)")
		q.Add("_pragma", "foreign_keys(1)")
		q.Add("_txlock", "immediate")
		if readOnly {
			q.Add("_pragma", "query_only(1)")
		}
		return "file:" + path + "?" + q.Encode()
	}
	w, err := sql.Open("sqlite", dsn(false))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	seal, err := openSealer(path)
	if err != nil {
		w.Close()
		return nil, err
	}
	db := &DB{write: w, dir: filepath.Dir(path), seal: seal, stmts: map[string]*sql.Stmt{}, want: map[string]bool{}}
	if err := db.migrate(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("migrate %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", dsn(true))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	r.SetMaxOpenConns(4)
	db.read = r
	if err := db.sealOld(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("seal the secret parameters of %s: %w", path, err)
	}
	return db, nil
}

// sealOld seals the secret parameter values a store written before sealing
// holds in clear. (The clear bytes may linger in free pages until SQLite
// reuses them or a VACUUM.)
func (db *DB) sealOld(ctx context.Context) error {
	var roles []string
	err := db.View(ctx, func(r store.Reader) error {
		rows, err := r.(*tx).query(ctx, `SELECT role FROM params WHERE secret = 1 AND value NOT LIKE 'sealed:v1:%' GROUP BY role`)
		if err != nil {
			return translate(err)
		}
		defer rows.Close()
		for rows.Next() {
			var role string
			if err := rows.Scan(&role); err != nil {
				return translate(err)
			}
			roles = append(roles, role)
		}
		return translate(rows.Err())
	})
	if err != nil || len(roles) == 0 {
		return err // nothing to write: a store on a full disk still opens
	}
	return db.Update(ctx, func(t store.Tx) error {
		for _, role := range roles {
			ps, err := t.ListParams(ctx, role)
			if err != nil {
				return err
			}
			for _, p := range ps {
				if p.Secret {
					if err := t.PutParam(ctx, p); err != nil {
						return err
					}
				}
			}
		}
		return nil
	})
}

// Close closes the database.
func (db *DB) Close() error {
	db.stmtMu.Lock()
	db.closed = true
	for q, st := range db.stmts {
		_ = st.Close()
		delete(db.stmts, q)
	}
	db.stmtMu.Unlock()
	return errors.Join(db.read.Close(), db.write.Close())
}

// View runs fn in a read-only transaction on the read pool, so all of fn's
// reads see the database as of one instant. In WAL mode the snapshot blocks
// no writer; it only holds back checkpoints while it lasts.
func (db *DB) View(ctx context.Context, fn func(store.Reader) error) error {
	sqlTx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("begin read: %w", translate(err))
	}
	// Nothing to commit: ending the transaction only drops the snapshot.
	defer func() { _ = sqlTx.Rollback() }()
	return fn(&tx{q: sqlTx, seal: db.seal})
}

// Update runs fn in one write transaction and commits if fn returns nil.
func (db *DB) Update(ctx context.Context, fn func(store.Tx) error) error {
	sqlTx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", translate(err))
	}
	// Deferred, so a panic in fn also ends the transaction: it would
	// otherwise keep the only writer connection, and every later Update
	// would wait for it forever. After Commit it does nothing.
	defer func() { _ = sqlTx.Rollback() }()
	if err := fn(&tx{q: sqlTx, sqlTx: sqlTx, db: db, seal: db.seal}); err != nil {
		return db.noSpace(err)
	}
	if err := sqlTx.Commit(); err != nil {
		return db.noSpace(fmt.Errorf("commit: %w", translate(err)))
	}
	db.prepareWanted(ctx)
	return nil
}

// stmt returns the prepared statement of query, or nil (and remembers to
// prepare it).
func (db *DB) stmt(query string) *sql.Stmt {
	db.stmtMu.Lock()
	defer db.stmtMu.Unlock()
	st, ok := db.stmts[query]
	if !ok && len(db.stmts) < maxStmts {
		db.want[query] = true
	}
	return st
}

// maxStmts bounds the statement cache; queries built from filters vary.
const maxStmts = 128

// prepareWanted prepares the statements stmt was asked for. It must not
// hold stmtMu while it prepares: preparing waits for the writer
// connection, and a transaction holding it may be asking stmt.
func (db *DB) prepareWanted(ctx context.Context) {
	db.stmtMu.Lock()
	var qs []string
	for q := range db.want {
		qs = append(qs, q)
		delete(db.want, q)
	}
	db.stmtMu.Unlock()
	for _, q := range qs {
		st, err := db.write.PrepareContext(ctx, q)
		if err != nil {
			continue
		}
		db.stmtMu.Lock()
		if _, dup := db.stmts[q]; dup || db.closed {
			_ = st.Close()
		} else {
			db.stmts[q] = st
		}
		db.stmtMu.Unlock()
	}
}

func (db *DB) migrate(ctx context.Context) error {
	if _, err := db.write.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return translate(err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		v, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil {
			return fmt.Errorf("migration %s: name must start with its number", name)
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return err
		}
		err = db.Update(ctx, func(t store.Tx) error {
			q := t.(*tx).q
			var n int
			if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, v).Scan(&n); err != nil {
				return translate(err)
			}
			if n > 0 {
				return nil
			}
			if _, err := q.ExecContext(ctx, string(body)); err != nil {
				return fmt.Errorf("apply %s: %w", base, translate(err))
			}
			_, err := q.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, v, time.Now().UnixNano())
			return translate(err)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// translate turns engine errors into store's errors; nothing above this
// package sees a SQLite error.
func translate(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %v", store.ErrNoSpace, err)
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_CONSTRAINT:
			return fmt.Errorf("%w: %v", store.ErrConflict, err)
		case sqlite3.SQLITE_FULL:
			// write(2) failed with ENOSPC, or wrote short.
			return fmt.Errorf("%w: %v", store.ErrNoSpace, err)
		}
	}
	return err
}

// fullBelow is the free space under which the disk holding the database
// counts as full when a write fails with an I/O error.
const fullBelow = 1 << 20

// noSpace returns err as [store.ErrNoSpace] when it is a SQLite I/O error
// and the disk under the database is full. SQLite turns ENOSPC from
// write(2) into SQLITE_FULL, which translate maps, but a full disk also
// surfaces as SQLITE_IOERR_FSYNC (ENOSPC from fsync, as delayed allocation
// reports it), SQLITE_IOERR_SHMSIZE (growing the -shm index) or
// SQLITE_IOERR_WRITE (EDQUOT), and the driver does not give the errno; the
// free space tells instead. Other errors pass through.
func (db *DB) noSpace(err error) error {
	var se *sqlite.Error
	if errors.Is(err, store.ErrNoSpace) || !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_IOERR {
		return err
	}
	if free, ok := freeBytes(db.dir); !ok || free >= fullBelow {
		return err
	}
	return fmt.Errorf("%w: %v", store.ErrNoSpace, err)
}

// freeBytes returns the bytes free to this process on the filesystem
// holding dir: root may also use the blocks reserved for it.
func freeBytes(dir string) (uint64, bool) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, false
	}
	blocks := st.Bavail
	if os.Geteuid() == 0 {
		blocks = st.Bfree
	}
	return blocks * uint64(st.Bsize), true
}
