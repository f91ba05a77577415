-- What a running job reports of its progress (session.progress): the latest report of
-- attempt progress_attempt (a report of an earlier attempt is not shown), written at
-- most once a second per job.
ALTER TABLE queue_job ADD COLUMN progress_done INTEGER;
ALTER TABLE queue_job ADD COLUMN progress_total INTEGER;
ALTER TABLE queue_job ADD COLUMN progress_message TEXT;
ALTER TABLE queue_job ADD COLUMN progress_attempt INTEGER;
ALTER TABLE queue_job ADD COLUMN date_progress REAL;
-- What a job logged while it ran, per attempt (written with the attempt's outcome):
-- lines as JSON [[time, level, logger, message], ...], and the lines dropped over the
-- limits. Gone with its job.
CREATE TABLE queue_job_log (
    job_uuid  TEXT    NOT NULL REFERENCES queue_job (uuid) ON DELETE CASCADE,
    attempt   INTEGER NOT NULL,
    lines     TEXT    NOT NULL,
    dropped   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (job_uuid, attempt)
);
