package sqlite_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/drover-dev/drover/internal/event"
	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/node"
	"github.com/drover-dev/drover/internal/store"
	"github.com/drover-dev/drover/internal/store/sqlite"
	"github.com/drover-dev/drover/internal/store/storetest"
	"github.com/drover-dev/drover/internal/task"
)

// TestMain fails the package on leaked goroutines. database/sql keeps a
// connection opener per pool until Close, so every test closes every DB.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// open opens the database at path and closes it when tb ends. Close is
// idempotent, so tests may also close it early to reopen the file.
func open(tb testing.TB, path string) *sqlite.DB {
	tb.Helper()
	db, err := sqlite.Open(context.Background(), path)
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = db.Close() })
	return db
}

func TestContract(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store {
		db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "drover.db"))
		require.NoError(t, err)
		return db // storetest closes it
	})
}

func TestReopenKeepsData(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "drover.db")
	j := storetest.NewJob()
	v := storetest.NewJobVersion(func(v *job.Version) { v.IdempotencyKey = "submit-1" })
	n := storetest.NewNode()
	tk := storetest.NewTask(func(tk *task.Task) {
		tk.State, tk.Node = task.Running, n.Name
		tk.StartedAt = new(storetest.T0.Add(time.Second))
	})
	ev := storetest.NewEvent(func(e *event.Event) { e.TaskID, e.Node, e.Message = tk.ID, n.Name, "placed" })

	db := open(t, path)
	require.NoError(t, db.Update(ctx, func(tx store.Tx) error {
		if err := tx.PutJob(ctx, j); err != nil {
			return err
		}
		if err := tx.InsertJobVersion(ctx, v); err != nil {
			return err
		}
		if err := tx.PutNode(ctx, n); err != nil {
			return err
		}
		if err := tx.InsertTasks(ctx, tk); err != nil {
			return err
		}
		return tx.InsertEvents(ctx, ev)
	}))
	require.NoError(t, db.Close())

	db = open(t, path)
	type snapshot struct {
		job     job.Job
		version job.Version
		node    node.Node
		task    task.Task
		events  []event.Event
	}
	var got snapshot
	require.NoError(t, db.View(ctx, func(r store.Reader) (err error) {
		if got.job, err = r.GetJob(ctx, j.Key); err != nil {
			return err
		}
		if got.version, err = r.FindIdempotencyKey(ctx, v.IdempotencyKey); err != nil {
			return err
		}
		if got.node, err = r.GetNode(ctx, n.Name); err != nil {
			return err
		}
		if got.task, err = r.GetTask(ctx, tk.ID); err != nil {
			return err
		}
		got.events, err = r.ListEvents(ctx, store.EventFilter{})
		return err
	}))
	require.Len(t, got.events, 1)
	firstEventID := got.events[0].ID
	ev.ID = firstEventID
	want := snapshot{job: j, version: v, node: n, task: tk, events: []event.Event{ev}}
	require.Empty(t, cmp.Diff(want, got, cmp.AllowUnexported(snapshot{})), "after reopening (-want +got)")

	// The reopened file takes writes, and event IDs go on from where they
	// were.
	require.NoError(t, db.Update(ctx, func(tx store.Tx) error {
		return tx.InsertEvents(ctx, storetest.NewEvent(func(e *event.Event) { e.Message = "second" }))
	}))
	require.NoError(t, db.Close())
	db = open(t, path)
	var last int64
	require.NoError(t, db.View(ctx, func(r store.Reader) (err error) {
		last, err = r.LastEventID(ctx, "")
		return err
	}))
	require.Greater(t, last, firstEventID)
	require.NoError(t, db.Close())
}

func TestOpenAppliesMigrationsOnce(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "drover.db")

	// Open, close, open again; then open a second handle on the file while
	// the first is still open. Re-running a migration would fail on its
	// CREATE TABLE.
	require.NoError(t, open(t, path).Close())
	first := open(t, path)
	second := open(t, path)
	require.NoError(t, second.Close())
	require.NoError(t, first.Close())

	var want []int
	entries, err := os.ReadDir("migrations")
	require.NoError(t, err)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".sql") {
			v, err := strconv.Atoi(strings.SplitN(e.Name(), "_", 2)[0])
			require.NoError(t, err, e.Name())
			want = append(want, v)
		}
	}
	require.NotEmpty(t, want)

	raw, err := sql.Open("sqlite", "file:"+path)
	require.NoError(t, err)
	defer raw.Close()
	rows, err := raw.QueryContext(t.Context(), `SELECT version FROM schema_migrations ORDER BY version`)
	require.NoError(t, err)
	defer rows.Close()
	var got []int
	for rows.Next() {
		var v int
		require.NoError(t, rows.Scan(&v))
		got = append(got, v)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, want, got, "each migration recorded once")
}

func TestOpenMissingDir(t *testing.T) {
	t.Parallel()
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "no-such-dir", "drover.db"))
	if err == nil {
		_ = db.Close()
	}
	require.Error(t, err)
}

// BenchmarkUpdateTasks measures the scheduler's way of writing: one Update
// committing a batch of 100 task transitions and their 100 events.
func BenchmarkUpdateTasks(b *testing.B) { benchTransitions(b, 100) }

// BenchmarkSingleCommit measures one transition and its event per commit:
// the cost of not batching.
func BenchmarkSingleCommit(b *testing.B) { benchTransitions(b, 1) }

// life is the path each benchmarked task walks, one step per commit.
var life = []task.State{task.Pending, task.Assigned, task.Starting, task.Running, task.Succeeded}

// benchTransitions times b.N commits of batch transitions plus batch events
// each, built by task.Move as the scheduler builds them. Every transition is
// legal and a compare-and-set on the task's real state: each group of batch
// tasks walks its life in len(life)-1 commits, and enough groups are
// inserted, untimed, before the clock starts.
func benchTransitions(b *testing.B, batch int) {
	ctx := b.Context()
	db := open(b, filepath.Join(b.TempDir(), "drover.db"))
	steps := len(life) - 1
	groups := make([][]task.Task, (b.N+steps-1)/steps)
	var all []task.Task
	for g := range groups {
		for i := range batch {
			tk := storetest.NewTask(func(tk *task.Task) { tk.Instance = i })
			groups[g] = append(groups[g], tk)
			all = append(all, tk)
		}
	}
	for len(all) > 0 {
		chunk := all[:min(len(all), 1000)]
		all = all[len(chunk):]
		require.NoError(b, db.Update(ctx, func(tx store.Tx) error { return tx.InsertTasks(ctx, chunk...) }))
	}

	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		g, to := groups[i/steps], life[i%steps+1]
		at := storetest.T0.Add(time.Duration(i+1) * time.Millisecond)
		err := db.Update(ctx, func(tx store.Tx) error {
			events := make([]event.Event, 0, len(g))
			for j := range g {
				g[j].Node = "node-1"
				ch, err := task.Move(g[j], to, at, event.Placed, "")
				if err != nil {
					return err
				}
				if err := tx.UpdateTask(ctx, ch.Task, ch.Expect); err != nil {
					return err
				}
				g[j] = ch.Task
				events = append(events, ch.Event)
			}
			return tx.InsertEvents(ctx, events...)
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "transitions/s")
}
