-- Runs: each instantiation of a job (a submission, a schedule's fire, a
-- rerun) with its own tasks and outcome. Before runs, every version ran
-- exactly once, so each existing version becomes run N = version N.
CREATE TABLE runs (
    job_key      TEXT NOT NULL,
    number       INTEGER NOT NULL,
    version      INTEGER NOT NULL,
    state        TEXT NOT NULL,
    trigger      TEXT NOT NULL,
    scheduled_at INTEGER NOT NULL DEFAULT 0,
    of_run       INTEGER NOT NULL DEFAULT 0,
    instances    TEXT NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    finished_at  INTEGER NOT NULL DEFAULT 0,
    message      TEXT NOT NULL DEFAULT '',
    -- the client's key of the submission that made the run
    idempotency_key TEXT UNIQUE,
    PRIMARY KEY (job_key, number)
);
CREATE INDEX runs_active ON runs (job_key) WHERE state IN ('RUNNING', 'WAITING');

ALTER TABLE tasks ADD COLUMN run INTEGER NOT NULL DEFAULT 0;
UPDATE tasks SET run = job_version;
CREATE INDEX tasks_run ON tasks (job_key, run, instance);

INSERT INTO runs (job_key, number, version, state, trigger, created_at, finished_at, idempotency_key)
SELECT v.job_key, v.version, v.version,
    CASE
        WHEN j.version = v.version THEN j.state
        WHEN EXISTS (SELECT 1 FROM tasks t WHERE t.job_key = v.job_key AND t.job_version = v.version
            AND t.state = 'KILLED') THEN 'KILLED'
        WHEN EXISTS (SELECT 1 FROM tasks t WHERE t.job_key = v.job_key AND t.job_version = v.version
            AND t.state IN ('FAILED', 'LOST') AND NOT EXISTS (SELECT 1 FROM tasks u
                WHERE u.job_key = t.job_key AND u.job_version = t.job_version
                AND u.instance = t.instance AND u.attempt > t.attempt)) THEN 'FAILED'
        ELSE 'SUCCEEDED'
    END,
    'submit', v.created_at,
    CASE
        WHEN j.version = v.version AND j.state = 'RUNNING' THEN 0
        ELSE COALESCE((SELECT MAX(t.finished_at) FROM tasks t WHERE t.job_key = v.job_key
            AND t.job_version = v.version), v.created_at)
    END,
    v.idempotency_key
FROM job_versions v JOIN jobs j ON j.key = v.job_key;

ALTER TABLE jobs ADD COLUMN run INTEGER NOT NULL DEFAULT 0;
UPDATE jobs SET run = version;

-- Run-level events (submitted, finished, fired) carry their run.
ALTER TABLE events ADD COLUMN run INTEGER NOT NULL DEFAULT 0;

-- Schedules: one per job. raw_spec is the spec before parameters were
-- resolved; last_at is the newest scheduled time handled.
CREATE TABLE schedules (
    job_key    TEXT PRIMARY KEY,
    schedule   TEXT NOT NULL,
    paused     INTEGER NOT NULL DEFAULT 0,
    template   TEXT NOT NULL DEFAULT '',
    inputs     TEXT NOT NULL DEFAULT '',
    raw_spec   TEXT NOT NULL,
    last_at    INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- One decision per (job, scheduled time): the primary key is what makes a
-- schedule fire at most once per time.
CREATE TABLE schedule_fires (
    job_key    TEXT NOT NULL,
    at         INTEGER NOT NULL,
    outcome    TEXT NOT NULL,
    run        INTEGER NOT NULL DEFAULT 0,
    decided_at INTEGER NOT NULL,
    message    TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (job_key, at)
);
