-- Times are Unix nanoseconds (UTC).
CREATE TABLE jobs (
    key        TEXT PRIMARY KEY,
    role       TEXT NOT NULL,
    env        TEXT NOT NULL,
    name       TEXT NOT NULL,
    version    INTEGER NOT NULL,
    type       TEXT NOT NULL,
    state      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE job_versions (
    job_key         TEXT NOT NULL,
    version         INTEGER NOT NULL,
    spec            TEXT NOT NULL,
    idempotency_key TEXT UNIQUE,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (job_key, version)
);

CREATE TABLE tasks (
    id             TEXT PRIMARY KEY,
    job_key        TEXT NOT NULL,
    job_version    INTEGER NOT NULL,
    instance       INTEGER NOT NULL,
    attempt        INTEGER NOT NULL,
    retries        INTEGER NOT NULL,
    state          TEXT NOT NULL,
    node           TEXT NOT NULL DEFAULT '',
    kill_requested INTEGER NOT NULL DEFAULT 0,
    priority       INTEGER NOT NULL,
    cpu            INTEGER NOT NULL,
    memory         INTEGER NOT NULL,
    exit_code      INTEGER,
    reason         TEXT NOT NULL DEFAULT '',
    message        TEXT NOT NULL DEFAULT '',
    created_at     INTEGER NOT NULL,
    not_before     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    started_at     INTEGER,
    finished_at    INTEGER
);
CREATE INDEX tasks_job ON tasks (job_key, job_version, instance);
CREATE INDEX tasks_state ON tasks (state, priority, created_at);
CREATE INDEX tasks_node ON tasks (node, state);

CREATE TABLE nodes (
    name          TEXT PRIMARY KEY,
    state         TEXT NOT NULL,
    address       TEXT NOT NULL DEFAULT '',
    attributes    TEXT NOT NULL,
    cpu           INTEGER NOT NULL,
    memory        INTEGER NOT NULL,
    version       TEXT NOT NULL DEFAULT '',
    registered_at INTEGER NOT NULL,
    last_seen     INTEGER NOT NULL
);

CREATE TABLE events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    job_key    TEXT NOT NULL DEFAULT '',
    task_id    TEXT NOT NULL DEFAULT '',
    node       TEXT NOT NULL DEFAULT '',
    from_state TEXT NOT NULL DEFAULT '',
    to_state   TEXT NOT NULL DEFAULT '',
    reason     TEXT NOT NULL,
    message    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX events_job ON events (job_key, id);
CREATE INDEX events_task ON events (task_id, id);
