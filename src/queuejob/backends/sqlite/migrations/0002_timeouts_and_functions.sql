-- Per-job timeouts, when jobs failed, and job functions whose channel and retry pattern
-- people changed.

ALTER TABLE queue_job ADD COLUMN timeout REAL;  -- seconds an attempt may run; NULL: no limit
ALTER TABLE queue_job ADD COLUMN date_failed REAL;  -- when the job last failed

-- Overrides of a job function's decorator (set in the dashboard or with
-- `queuejob functions set`): used for jobs delayed afterwards and by every worker.
CREATE TABLE queue_job_function (
    name           TEXT PRIMARY KEY,             -- module.function
    channel        TEXT,                         -- NULL: the decorator's default_channel
    retry_pattern  TEXT,                         -- JSON {"retry count": seconds}; NULL: the decorator's
    date_updated   REAL
);
