-- The placement order (ListTasks): an index in exactly that order lets a
-- placement round read the first pending tasks without sorting them all.
DROP INDEX tasks_state;
CREATE INDEX tasks_queue ON tasks (state, priority DESC, created_at, job_key, instance, attempt);
