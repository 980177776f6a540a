-- Job templates. source is the template file as written, so that showing
-- a template gives back what its author wrote; the server parses it.
CREATE TABLE templates (
    key        TEXT NOT NULL PRIMARY KEY, -- ROLE/ENV/NAME
    role       TEXT NOT NULL,
    env        TEXT NOT NULL,
    name       TEXT NOT NULL,
    source     TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
