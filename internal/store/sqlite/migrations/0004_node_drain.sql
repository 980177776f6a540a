-- A drain is a wish of the operator's, kept apart from liveness: a DOWN
-- node that was draining comes back DRAINING.
ALTER TABLE nodes ADD COLUMN drain INTEGER NOT NULL DEFAULT 0;
UPDATE nodes SET drain = 1 WHERE state = 'DRAINING';
