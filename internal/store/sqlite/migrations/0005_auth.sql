-- Users, roles, tokens and web sessions. Secrets are stored only as hashes
-- (passwords: argon2id; tokens: SHA-256 of 160 random bits).
CREATE TABLE users (
    name          TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL DEFAULT '',
    roles         TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);

CREATE TABLE roles (
    name        TEXT PRIMARY KEY,
    permissions TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE tokens (
    id          TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    kind        TEXT NOT NULL,
    owner       TEXT NOT NULL DEFAULT '',
    name        TEXT NOT NULL DEFAULT '',
    scope       TEXT NOT NULL,
    node        TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER,
    revoked_at  INTEGER
);
CREATE INDEX tokens_owner ON tokens (owner);

CREATE TABLE sessions (
    token  TEXT PRIMARY KEY,
    data   BLOB NOT NULL,
    expiry INTEGER NOT NULL
);
CREATE INDEX sessions_expiry ON sessions (expiry);

-- Who did it and from where: audit events of every mutating call.
ALTER TABLE events ADD COLUMN actor TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN source TEXT NOT NULL DEFAULT '';

-- The agent token that registered each node: another token cannot sync as
-- that node.
ALTER TABLE nodes ADD COLUMN token_id TEXT NOT NULL DEFAULT '';
