-- The fields of the original's successor (OCA queue_job): what a failure was, how long a
-- job ran, when it was cancelled and which process ran it. Related actions people
-- configure per job function, beside its channel and retry pattern.
ALTER TABLE queue_job ADD COLUMN exc_name TEXT;       -- module.Class of the failure
ALTER TABLE queue_job ADD COLUMN exc_message TEXT;    -- its message
ALTER TABLE queue_job ADD COLUMN exec_time REAL;      -- seconds from started to done
ALTER TABLE queue_job ADD COLUMN date_cancelled REAL;
ALTER TABLE queue_job ADD COLUMN worker_pid INTEGER;  -- the process that ran the attempt
-- Failures grouped by exception (the dashboard, the filters): failed jobs are few.
CREATE INDEX queue_job_failed_by_exception ON queue_job (exc_name) WHERE state = 'failed';
-- JSON {"enable": bool, "func_name": "module.action", "kwargs": {...}}; NULL: the decorator's
ALTER TABLE queue_job_function ADD COLUMN related_action TEXT;
-- 'enqueued' has no step of its own here: a job found in it (stored by hand, or through
-- JobStorage.store after set_enqueued) goes back to pending; the rescue looks for such
-- jobs on this index, empty but for them.
UPDATE queue_job SET state = 'pending' WHERE state = 'enqueued';
CREATE INDEX queue_job_enqueued ON queue_job (id) WHERE state = 'enqueued';
