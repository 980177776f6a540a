package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/drover-dev/drover/internal/event"
	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/node"
	"github.com/drover-dev/drover/internal/store"
	"github.com/drover-dev/drover/internal/task"
)

// querier is what *sql.DB and *sql.Tx share.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

type tx struct {
	q     querier
	sqlTx *sql.Tx // set in write transactions
	db    *DB     // set in write transactions
	seal  *sealer
}

// The three query helpers use the writer's prepared statements inside
// write transactions.

func (t *tx) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if t.db != nil {
		if st := t.db.stmt(query); st != nil {
			return t.sqlTx.StmtContext(ctx, st).ExecContext(ctx, args...)
		}
	}
	return t.q.ExecContext(ctx, query, args...)
}

func (t *tx) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if t.db != nil {
		if st := t.db.stmt(query); st != nil {
			return t.sqlTx.StmtContext(ctx, st).QueryContext(ctx, args...)
		}
	}
	return t.q.QueryContext(ctx, query, args...)
}

func (t *tx) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	if t.db != nil {
		if st := t.db.stmt(query); st != nil {
			return t.sqlTx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
		}
	}
	return t.q.QueryRowContext(ctx, query, args...)
}

var _ store.Tx = (*tx)(nil)

func ns(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.Unix(0, v).UTC()
}

func nsPtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixNano()
}

func fromNSPtr(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromNS(v.Int64)
	return &t
}

// ---- jobs

const jobCols = `key, role, env, name, version, type, state, created_at, updated_at, run`

func scanJob(row interface{ Scan(...any) error }) (job.Job, error) {
	var j job.Job
	var key, typ, state string
	var created, updated int64
	if err := row.Scan(&key, &j.Key.Role, &j.Key.Env, &j.Key.Name, &j.Version, &typ, &state, &created, &updated, &j.Run); err != nil {
		return job.Job{}, translate(err)
	}
	j.Type, j.State = job.Type(typ), job.State(state)
	j.CreatedAt, j.UpdatedAt = fromNS(created), fromNS(updated)
	return j, nil
}

func (t *tx) GetJob(ctx context.Context, key job.Key) (job.Job, error) {
	j, err := scanJob(t.queryRow(ctx, `SELECT `+jobCols+` FROM jobs WHERE key = ?`, key.String()))
	if err != nil {
		return job.Job{}, fmt.Errorf("get job %s: %w", key, err)
	}
	return j, nil
}

func (t *tx) ListJobs(ctx context.Context) ([]job.Job, error) {
	rows, err := t.query(ctx, `SELECT `+jobCols+` FROM jobs ORDER BY key`)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", translate(err))
	}
	defer rows.Close()
	var out []job.Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, fmt.Errorf("list jobs: %w", err)
		}
		out = append(out, j)
	}
	return out, translate(rows.Err())
}

func (t *tx) PutJob(ctx context.Context, j job.Job) error {
	_, err := t.exec(ctx, `INSERT INTO jobs (`+jobCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET version = excluded.version, type = excluded.type,
		state = excluded.state, updated_at = excluded.updated_at, run = excluded.run`,
		j.Key.String(), j.Key.Role, j.Key.Env, j.Key.Name, j.Version, string(j.Type), string(j.State), ns(j.CreatedAt), ns(j.UpdatedAt), j.Run)
	if err != nil {
		return fmt.Errorf("put job %s: %w", j.Key, translate(err))
	}
	return nil
}

func scanVersion(row interface{ Scan(...any) error }) (job.Version, error) {
	var v job.Version
	var key, spec string
	var idem sql.NullString
	var created int64
	if err := row.Scan(&key, &v.Version, &spec, &idem, &created); err != nil {
		return job.Version{}, translate(err)
	}
	k, err := job.ParseKey(key)
	if err != nil {
		return job.Version{}, err
	}
	if err := json.Unmarshal([]byte(spec), &v.Spec); err != nil {
		return job.Version{}, fmt.Errorf("decode spec of %s version %d: %w", key, v.Version, err)
	}
	v.Key, v.Spec.Key = k, k
	v.IdempotencyKey = idem.String
	v.CreatedAt = fromNS(created)
	return v, nil
}

const versionCols = `job_key, version, spec, idempotency_key, created_at`

func (t *tx) GetJobVersion(ctx context.Context, key job.Key, version int) (job.Version, error) {
	v, err := scanVersion(t.queryRow(ctx, `SELECT `+versionCols+` FROM job_versions WHERE job_key = ? AND version = ?`, key.String(), version))
	if err != nil {
		return job.Version{}, fmt.Errorf("get job %s version %d: %w", key, version, err)
	}
	return v, nil
}

func (t *tx) ListJobVersions(ctx context.Context, key job.Key) ([]job.Version, error) {
	rows, err := t.query(ctx, `SELECT `+versionCols+` FROM job_versions WHERE job_key = ? ORDER BY version DESC`, key.String())
	if err != nil {
		return nil, fmt.Errorf("list versions of job %s: %w", key, translate(err))
	}
	defer rows.Close()
	var out []job.Version
	for rows.Next() {
		v, err := scanVersion(rows)
		if err != nil {
			return nil, fmt.Errorf("list versions of job %s: %w", key, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list versions of job %s: %w", key, translate(err))
	}
	return out, nil
}

func (t *tx) FindIdempotencyKey(ctx context.Context, idem string) (job.Version, error) {
	v, err := scanVersion(t.queryRow(ctx, `SELECT `+versionCols+` FROM job_versions WHERE idempotency_key = ?`, idem))
	if err != nil {
		return job.Version{}, fmt.Errorf("find idempotency key: %w", err)
	}
	return v, nil
}

func (t *tx) InsertJobVersion(ctx context.Context, v job.Version) error {
	spec, err := json.Marshal(v.Spec)
	if err != nil {
		return fmt.Errorf("encode spec of %s: %w", v.Key, err)
	}
	var idem any
	if v.IdempotencyKey != "" {
		idem = v.IdempotencyKey
	}
	_, err = t.exec(ctx, `INSERT INTO job_versions (`+versionCols+`) VALUES (?, ?, ?, ?, ?)`,
		v.Key.String(), v.Version, string(spec), idem, ns(v.CreatedAt))
	if err != nil {
		return fmt.Errorf("insert job %s version %d: %w", v.Key, v.Version, translate(err))
	}
	return nil
}

// ---- tasks

const taskCols = `id, job_key, job_version, instance, attempt, retries, state, node, kill_requested, priority,
	cpu, memory, exit_code, reason, message, created_at, not_before, updated_at, started_at, finished_at, reschedules, run`

func scanTask(row interface{ Scan(...any) error }) (task.Task, error) {
	var tk task.Task
	var key, state, reason string
	var exit sql.NullInt64
	var created, notBefore, updated int64
	var started, finished sql.NullInt64
	if err := row.Scan(&tk.ID, &key, &tk.JobVersion, &tk.Instance, &tk.Attempt, &tk.Retries, &state, &tk.Node,
		&tk.KillRequested, &tk.Priority, &tk.Resources.CPU, &tk.Resources.Memory, &exit, &reason, &tk.Message,
		&created, &notBefore, &updated, &started, &finished, &tk.Reschedules, &tk.Run); err != nil {
		return task.Task{}, translate(err)
	}
	k, err := job.ParseKey(key)
	if err != nil {
		return task.Task{}, err
	}
	tk.Job, tk.State, tk.Reason = k, task.State(state), event.Reason(reason)
	if exit.Valid {
		c := int(exit.Int64)
		tk.ExitCode = &c
	}
	tk.CreatedAt, tk.NotBefore, tk.UpdatedAt = fromNS(created), fromNS(notBefore), fromNS(updated)
	tk.StartedAt, tk.FinishedAt = fromNSPtr(started), fromNSPtr(finished)
	return tk, nil
}

func (t *tx) GetTask(ctx context.Context, id string) (task.Task, error) {
	tk, err := scanTask(t.queryRow(ctx, `SELECT `+taskCols+` FROM tasks WHERE id = ?`, id))
	if err != nil {
		return task.Task{}, fmt.Errorf("get task %s: %w", id, err)
	}
	return tk, nil
}

func taskWhere(f store.TaskFilter) (string, []any) {
	var conds []string
	var args []any
	if f.Job != nil {
		conds = append(conds, "job_key = ?")
		args = append(args, f.Job.String())
		if f.JobVersion != 0 {
			conds = append(conds, "job_version = ?")
			args = append(args, f.JobVersion)
		}
		if f.Run != 0 {
			conds = append(conds, "run = ?")
			args = append(args, f.Run)
		}
	}
	if f.Instance != nil {
		conds = append(conds, "instance = ?")
		args = append(args, *f.Instance)
	}
	if f.Node != "" {
		conds = append(conds, "node = ?")
		args = append(args, f.Node)
	}
	if len(f.States) > 0 {
		conds = append(conds, "state IN (?"+strings.Repeat(", ?", len(f.States)-1)+")")
		for _, s := range f.States {
			args = append(args, string(s))
		}
	}
	if !f.ReadyBy.IsZero() {
		conds = append(conds, "not_before <= ?")
		args = append(args, ns(f.ReadyBy))
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

func (t *tx) ListTasks(ctx context.Context, f store.TaskFilter) ([]task.Task, error) {
	where, args := taskWhere(f)
	q := `SELECT ` + taskCols + ` FROM tasks` + where + ` ORDER BY priority DESC, created_at, job_key, instance, attempt`
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	rows, err := t.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list tasks: %w", translate(err))
	}
	defer rows.Close()
	var out []task.Task
	for rows.Next() {
		tk, err := scanTask(rows)
		if err != nil {
			return nil, fmt.Errorf("list tasks: %w", err)
		}
		out = append(out, tk)
	}
	return out, translate(rows.Err())
}

func (t *tx) CountTasks(ctx context.Context, f store.TaskFilter) (int, error) {
	where, args := taskWhere(f)
	var n int
	if err := t.queryRow(ctx, `SELECT COUNT(*) FROM tasks`+where, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count tasks: %w", translate(err))
	}
	return n, nil
}

func (t *tx) NextNotBefore(ctx context.Context, now time.Time) (time.Time, error) {
	var v sql.NullInt64
	err := t.queryRow(ctx, `SELECT MIN(not_before) FROM tasks WHERE state = ? AND not_before > ?`,
		string(task.Pending), ns(now)).Scan(&v)
	if err != nil {
		return time.Time{}, fmt.Errorf("next not-before: %w", translate(err))
	}
	if !v.Valid {
		return time.Time{}, nil
	}
	return fromNS(v.Int64), nil
}

func exitArg(c *int) any {
	if c == nil {
		return nil
	}
	return *c
}

func (t *tx) InsertTasks(ctx context.Context, ts ...task.Task) error {
	for _, tk := range ts {
		_, err := t.exec(ctx, `INSERT INTO tasks (`+taskCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			tk.ID, tk.Job.String(), tk.JobVersion, tk.Instance, tk.Attempt, tk.Retries, string(tk.State), tk.Node,
			tk.KillRequested, tk.Priority, tk.Resources.CPU, tk.Resources.Memory, exitArg(tk.ExitCode), string(tk.Reason), tk.Message,
			ns(tk.CreatedAt), ns(tk.NotBefore), ns(tk.UpdatedAt), nsPtr(tk.StartedAt), nsPtr(tk.FinishedAt), tk.Reschedules, tk.Run)
		if err != nil {
			return fmt.Errorf("insert task %s: %w", tk.ID, translate(err))
		}
	}
	return nil
}

func (t *tx) UpdateTask(ctx context.Context, tk task.Task, expect task.State) error {
	res, err := t.exec(ctx, `UPDATE tasks SET state = ?, node = ?, kill_requested = ?, exit_code = ?, reason = ?,
		message = ?, not_before = ?, updated_at = ?, started_at = ?, finished_at = ? WHERE id = ? AND state = ?`,
		string(tk.State), tk.Node, tk.KillRequested, exitArg(tk.ExitCode), string(tk.Reason), tk.Message,
		ns(tk.NotBefore), ns(tk.UpdatedAt), nsPtr(tk.StartedAt), nsPtr(tk.FinishedAt), tk.ID, string(expect))
	if err != nil {
		return fmt.Errorf("update task %s: %w", tk.ID, translate(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("update task %s: %w", tk.ID, translate(err))
	}
	if n == 0 {
		if _, err := t.GetTask(ctx, tk.ID); err != nil {
			return err
		}
		return fmt.Errorf("update task %s: not in state %s: %w", tk.ID, expect, store.ErrConflict)
	}
	return nil
}

// ---- nodes

const nodeCols = `name, state, address, attributes, cpu, memory, version, registered_at, last_seen, drain, token_id`

func scanNode(row interface{ Scan(...any) error }) (node.Node, error) {
	var n node.Node
	var state, attrs string
	var reg, seen int64
	if err := row.Scan(&n.Name, &state, &n.Address, &attrs, &n.Capacity.CPU, &n.Capacity.Memory, &n.Version, &reg, &seen, &n.Drain, &n.TokenID); err != nil {
		return node.Node{}, translate(err)
	}
	n.State = node.State(state)
	if err := json.Unmarshal([]byte(attrs), &n.Attributes); err != nil {
		return node.Node{}, fmt.Errorf("decode attributes of node %s: %w", n.Name, err)
	}
	n.RegisteredAt, n.LastSeen = fromNS(reg), fromNS(seen)
	return n, nil
}

func (t *tx) GetNode(ctx context.Context, name string) (node.Node, error) {
	n, err := scanNode(t.queryRow(ctx, `SELECT `+nodeCols+` FROM nodes WHERE name = ?`, name))
	if err != nil {
		return node.Node{}, fmt.Errorf("get node %s: %w", name, err)
	}
	return n, nil
}

func (t *tx) ListNodes(ctx context.Context) ([]node.Node, error) {
	rows, err := t.query(ctx, `SELECT `+nodeCols+` FROM nodes ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", translate(err))
	}
	defer rows.Close()
	var out []node.Node
	for rows.Next() {
		n, err := scanNode(rows)
		if err != nil {
			return nil, fmt.Errorf("list nodes: %w", err)
		}
		out = append(out, n)
	}
	return out, translate(rows.Err())
}

func (t *tx) PutNode(ctx context.Context, n node.Node) error {
	attrs, err := json.Marshal(n.Attributes)
	if err != nil {
		return fmt.Errorf("encode attributes of node %s: %w", n.Name, err)
	}
	_, err = t.exec(ctx, `INSERT INTO nodes (`+nodeCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET state = excluded.state, address = excluded.address,
		attributes = excluded.attributes, cpu = excluded.cpu, memory = excluded.memory,
		version = excluded.version, last_seen = excluded.last_seen, drain = excluded.drain, token_id = excluded.token_id`,
		n.Name, string(n.State), n.Address, string(attrs), n.Capacity.CPU, n.Capacity.Memory, n.Version, ns(n.RegisteredAt), ns(n.LastSeen), n.Drain, n.TokenID)
	if err != nil {
		return fmt.Errorf("put node %s: %w", n.Name, translate(err))
	}
	return nil
}

// ---- events

func (t *tx) ListEvents(ctx context.Context, f store.EventFilter) ([]event.Event, error) {
	conds := []string{"id > ?"}
	args := []any{f.AfterID}
	if f.Job != "" {
		conds = append(conds, "job_key = ?")
		args = append(args, f.Job)
	}
	if f.TaskID != "" {
		conds = append(conds, "task_id = ?")
		args = append(args, f.TaskID)
	}
	if f.Node != "" {
		conds = append(conds, "node = ?")
		args = append(args, f.Node)
	}
	if f.Reason != "" {
		conds = append(conds, "reason = ?")
		args = append(args, f.Reason)
	}
	q := `SELECT id, at, job_key, task_id, node, from_state, to_state, reason, message, actor, source, run FROM events WHERE ` +
		strings.Join(conds, " AND ") + ` ORDER BY id`
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	rows, err := t.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", translate(err))
	}
	defer rows.Close()
	var out []event.Event
	for rows.Next() {
		var e event.Event
		var at int64
		var reason string
		if err := rows.Scan(&e.ID, &at, &e.Job, &e.TaskID, &e.Node, &e.From, &e.To, &reason, &e.Message, &e.Actor, &e.Source, &e.Run); err != nil {
			return nil, fmt.Errorf("list events: %w", translate(err))
		}
		e.At, e.Reason = fromNS(at), event.Reason(reason)
		out = append(out, e)
	}
	return out, translate(rows.Err())
}

func (t *tx) LastEventID(ctx context.Context, jobKey string) (int64, error) {
	var v sql.NullInt64
	var err error
	if jobKey == "" {
		err = t.queryRow(ctx, `SELECT MAX(id) FROM events`).Scan(&v)
	} else {
		err = t.queryRow(ctx, `SELECT MAX(id) FROM events WHERE job_key = ?`, jobKey).Scan(&v)
	}
	if err != nil {
		return 0, fmt.Errorf("last event: %w", translate(err))
	}
	return v.Int64, nil
}

func (t *tx) InsertEvents(ctx context.Context, es ...event.Event) error {
	for _, e := range es {
		_, err := t.exec(ctx, `INSERT INTO events (at, job_key, task_id, node, from_state, to_state, reason, message, actor, source, run)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, ns(e.At), e.Job, e.TaskID, e.Node, e.From, e.To, string(e.Reason), e.Message, e.Actor, e.Source, e.Run)
		if err != nil {
			return fmt.Errorf("insert event: %w", translate(err))
		}
	}
	return nil
}
