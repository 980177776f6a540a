-- Counts earlier tasks of the instance that ended LOST (the fleet's
-- failures), apart from retries (the job's own).
ALTER TABLE tasks ADD COLUMN reschedules INTEGER NOT NULL DEFAULT 0;
