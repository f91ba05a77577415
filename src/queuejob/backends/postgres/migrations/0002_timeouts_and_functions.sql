-- Per-job timeouts, when jobs failed, and job functions whose channel and retry pattern
-- people changed.

ALTER TABLE queue_job ADD COLUMN timeout float8;  -- seconds an attempt may run; NULL: no limit
ALTER TABLE queue_job ADD COLUMN date_failed timestamptz;  -- when the job last failed

-- Overrides of a job function's decorator (set in the dashboard or with
-- `queuejob functions set`): used for jobs delayed afterwards and by every worker.
CREATE TABLE queue_job_function (
    name           text PRIMARY KEY,             -- module.function
    channel        text,                         -- NULL: the decorator's default_channel
    retry_pattern  text,                         -- JSON {"retry count": seconds}; NULL: the decorator's
    date_updated   timestamptz
);
