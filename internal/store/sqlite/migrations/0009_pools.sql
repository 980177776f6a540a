-- Pools and the machines launched for them. A machine's row is written
-- before its provider is called (the launch intent), so a crash between
-- the two leaves a record the reconcile loop resolves.
CREATE TABLE pools (
    name       TEXT PRIMARY KEY,
    definition TEXT NOT NULL, -- pool.Pool as JSON, status included
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE machines (
    id            TEXT PRIMARY KEY,
    pool          TEXT NOT NULL,
    node          TEXT NOT NULL,
    provider_id   TEXT NOT NULL DEFAULT '',
    state         TEXT NOT NULL,
    reason        TEXT NOT NULL DEFAULT '',
    address       TEXT NOT NULL DEFAULT '',
    launched_at   INTEGER NOT NULL,
    registered_at INTEGER NOT NULL DEFAULT 0,
    ended_at      INTEGER NOT NULL DEFAULT 0,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX machines_pool ON machines (pool, state);
CREATE INDEX machines_node ON machines (node);

-- Settings of the cluster (its ID, which tags every machine it launches).
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
