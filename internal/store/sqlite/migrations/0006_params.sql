-- Each role's (tenant's) named parameters. A secret one is kept here as
-- written; it is redacted wherever it is shown and kept out of job specs.
CREATE TABLE params (
    role       TEXT NOT NULL,
    name       TEXT NOT NULL,
    value      TEXT NOT NULL,
    secret     INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (role, name)
);
