package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/store"
)

// ---- runs

const runCols = `job_key, number, version, state, trigger, scheduled_at, of_run, instances, created_at, finished_at, message, idempotency_key`

func scanRun(row interface{ Scan(...any) error }) (job.Run, error) {
	var r job.Run
	var key, state, trigger, instances string
	var scheduled, created, finished int64
	var idem sql.NullString
	if err := row.Scan(&key, &r.Number, &r.Version, &state, &trigger, &scheduled, &r.Of, &instances, &created, &finished, &r.Message, &idem); err != nil {
		return job.Run{}, translate(err)
	}
	k, err := job.ParseKey(key)
	if err != nil {
		return job.Run{}, err
	}
	r.Job, r.State, r.Trigger, r.IdempotencyKey = k, job.State(state), job.Trigger(trigger), idem.String
	r.ScheduledAt, r.CreatedAt, r.FinishedAt = fromNS(scheduled), fromNS(created), fromNS(finished)
	if instances != "" {
		for _, f := range strings.Split(instances, ",") {
			i, err := strconv.Atoi(f)
			if err != nil {
				return job.Run{}, fmt.Errorf("decode instances of %s run %d: %w", key, r.Number, err)
			}
			r.Instances = append(r.Instances, i)
		}
	}
	return r, nil
}

func (t *tx) GetRun(ctx context.Context, key job.Key, number int) (job.Run, error) {
	r, err := scanRun(t.queryRow(ctx, `SELECT `+runCols+` FROM runs WHERE job_key = ? AND number = ?`, key.String(), number))
	if err != nil {
		return job.Run{}, fmt.Errorf("get job %s run %d: %w", key, number, err)
	}
	return r, nil
}

func (t *tx) ListRuns(ctx context.Context, f store.RunFilter) ([]job.Run, error) {
	q := `SELECT ` + runCols + ` FROM runs WHERE job_key = ?`
	if f.Active {
		q += ` AND state IN ('RUNNING', 'WAITING')`
	}
	q += ` ORDER BY number DESC`
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	rows, err := t.query(ctx, q, f.Job.String())
	if err != nil {
		return nil, fmt.Errorf("list runs of %s: %w", f.Job, translate(err))
	}
	defer rows.Close()
	var out []job.Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, fmt.Errorf("list runs of %s: %w", f.Job, err)
		}
		out = append(out, r)
	}
	return out, translate(rows.Err())
}

func (t *tx) FindRun(ctx context.Context, idempotencyKey string) (job.Run, error) {
	r, err := scanRun(t.queryRow(ctx, `SELECT `+runCols+` FROM runs WHERE idempotency_key = ?`, idempotencyKey))
	if err != nil {
		return job.Run{}, fmt.Errorf("find run by idempotency key: %w", err)
	}
	return r, nil
}

func (t *tx) PutRun(ctx context.Context, r job.Run) error {
	insts := make([]string, len(r.Instances))
	for i, n := range r.Instances {
		insts[i] = strconv.Itoa(n)
	}
	var idem any
	if r.IdempotencyKey != "" {
		idem = r.IdempotencyKey
	}
	_, err := t.exec(ctx, `INSERT INTO runs (`+runCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (job_key, number) DO UPDATE SET state = excluded.state, finished_at = excluded.finished_at,
		message = excluded.message`,
		r.Job.String(), r.Number, r.Version, string(r.State), string(r.Trigger), ns(r.ScheduledAt), r.Of,
		strings.Join(insts, ","), ns(r.CreatedAt), ns(r.FinishedAt), r.Message, idem)
	if err != nil {
		return fmt.Errorf("put job %s run %d: %w", r.Job, r.Number, translate(err))
	}
	return nil
}

func (t *tx) DeleteRun(ctx context.Context, key job.Key, number int) ([]string, error) {
	r, err := t.GetRun(ctx, key, number)
	if err != nil {
		return nil, err
	}
	if r.Active() {
		return nil, fmt.Errorf("delete job %s run %d: it is %s: %w", key, number, r.State, store.ErrConflict)
	}
	rows, err := t.query(ctx, `SELECT id FROM tasks WHERE job_key = ? AND run = ?`, key.String(), number)
	if err != nil {
		return nil, fmt.Errorf("delete job %s run %d: %w", key, number, translate(err))
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("delete job %s run %d: %w", key, number, translate(err))
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("delete job %s run %d: %w", key, number, translate(err))
	}
	for _, id := range ids {
		if _, err := t.exec(ctx, `DELETE FROM events WHERE task_id = ?`, id); err != nil {
			return nil, fmt.Errorf("delete events of task %s: %w", id, translate(err))
		}
	}
	for _, q := range []string{
		`DELETE FROM tasks WHERE job_key = ? AND run = ?`,
		`DELETE FROM events WHERE job_key = ? AND run = ? AND task_id = ''`,
		`DELETE FROM runs WHERE job_key = ? AND number = ?`,
	} {
		if _, err := t.exec(ctx, q, key.String(), number); err != nil {
			return nil, fmt.Errorf("delete job %s run %d: %w", key, number, translate(err))
		}
	}
	return ids, nil
}

// ---- schedules

const cronCols = `job_key, schedule, paused, template, inputs, raw_spec, last_at, created_at, updated_at`

func scanCron(row interface{ Scan(...any) error }) (job.CronEntry, error) {
	var e job.CronEntry
	var key, sched, inputs, raw string
	var last, created, updated int64
	if err := row.Scan(&key, &sched, &e.Paused, &e.Template, &inputs, &raw, &last, &created, &updated); err != nil {
		return job.CronEntry{}, translate(err)
	}
	k, err := job.ParseKey(key)
	if err != nil {
		return job.CronEntry{}, err
	}
	e.Job = k
	if err := json.Unmarshal([]byte(sched), &e.Schedule); err != nil {
		return job.CronEntry{}, fmt.Errorf("decode schedule of %s: %w", key, err)
	}
	if err := json.Unmarshal([]byte(raw), &e.Raw); err != nil {
		return job.CronEntry{}, fmt.Errorf("decode spec of schedule %s: %w", key, err)
	}
	e.Raw.Key = k
	if inputs != "" {
		if err := json.Unmarshal([]byte(inputs), &e.Inputs); err != nil {
			return job.CronEntry{}, fmt.Errorf("decode inputs of schedule %s: %w", key, err)
		}
	}
	e.LastAt, e.CreatedAt, e.UpdatedAt = fromNS(last), fromNS(created), fromNS(updated)
	return e, nil
}

func (t *tx) GetCron(ctx context.Context, key job.Key) (job.CronEntry, error) {
	e, err := scanCron(t.queryRow(ctx, `SELECT `+cronCols+` FROM schedules WHERE job_key = ?`, key.String()))
	if err != nil {
		return job.CronEntry{}, fmt.Errorf("get schedule of %s: %w", key, err)
	}
	return e, nil
}

func (t *tx) ListCrons(ctx context.Context) ([]job.CronEntry, error) {
	rows, err := t.query(ctx, `SELECT `+cronCols+` FROM schedules ORDER BY job_key`)
	if err != nil {
		return nil, fmt.Errorf("list schedules: %w", translate(err))
	}
	defer rows.Close()
	var out []job.CronEntry
	for rows.Next() {
		e, err := scanCron(rows)
		if err != nil {
			return nil, fmt.Errorf("list schedules: %w", err)
		}
		out = append(out, e)
	}
	return out, translate(rows.Err())
}

func (t *tx) PutCron(ctx context.Context, e job.CronEntry) error {
	sched, err := json.Marshal(e.Schedule)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(e.Raw)
	if err != nil {
		return err
	}
	inputs := ""
	if e.Inputs != nil {
		b, err := json.Marshal(e.Inputs)
		if err != nil {
			return err
		}
		inputs = string(b)
	}
	_, err = t.exec(ctx, `INSERT INTO schedules (`+cronCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (job_key) DO UPDATE SET schedule = excluded.schedule, paused = excluded.paused,
		template = excluded.template, inputs = excluded.inputs, raw_spec = excluded.raw_spec,
		last_at = excluded.last_at, updated_at = excluded.updated_at`,
		e.Job.String(), string(sched), e.Paused, e.Template, inputs, string(raw), ns(e.LastAt), ns(e.CreatedAt), ns(e.UpdatedAt))
	if err != nil {
		return fmt.Errorf("put schedule of %s: %w", e.Job, translate(err))
	}
	return nil
}

func (t *tx) DeleteCron(ctx context.Context, key job.Key) error {
	return t.deleteOne(ctx, `DELETE FROM schedules WHERE job_key = ?`, "schedule of "+key.String(), key.String())
}

func (t *tx) ListFires(ctx context.Context, key job.Key, limit int) ([]job.Fire, error) {
	q := `SELECT at, outcome, run, decided_at, message FROM schedule_fires WHERE job_key = ? ORDER BY at DESC`
	if limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", limit)
	}
	rows, err := t.query(ctx, q, key.String())
	if err != nil {
		return nil, fmt.Errorf("list fires of %s: %w", key, translate(err))
	}
	defer rows.Close()
	var out []job.Fire
	for rows.Next() {
		f := job.Fire{Job: key}
		var at, decided int64
		var outcome string
		if err := rows.Scan(&at, &outcome, &f.Run, &decided, &f.Message); err != nil {
			return nil, fmt.Errorf("list fires of %s: %w", key, translate(err))
		}
		f.At, f.DecidedAt, f.Outcome = fromNS(at), fromNS(decided), job.FireOutcome(outcome)
		out = append(out, f)
	}
	return out, translate(rows.Err())
}

func (t *tx) InsertFire(ctx context.Context, f job.Fire) error {
	_, err := t.exec(ctx, `INSERT INTO schedule_fires (job_key, at, outcome, run, decided_at, message) VALUES (?, ?, ?, ?, ?, ?)`,
		f.Job.String(), ns(f.At), string(f.Outcome), f.Run, ns(f.DecidedAt), f.Message)
	if err != nil {
		return fmt.Errorf("record fire of %s at %s: %w", f.Job, f.At.UTC().Format("2006-01-02T15:04:05Z"), translate(err))
	}
	return nil
}
