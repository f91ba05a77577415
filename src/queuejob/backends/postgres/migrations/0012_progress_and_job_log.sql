-- What a running job reports of its progress (session.progress): the latest report of
-- attempt progress_attempt (a report of an earlier attempt is not shown), written at
-- most once a second per job (columns of no index: the update stays on its page).
ALTER TABLE queue_job ADD COLUMN progress_done bigint;
ALTER TABLE queue_job ADD COLUMN progress_total bigint;
ALTER TABLE queue_job ADD COLUMN progress_message text;
ALTER TABLE queue_job ADD COLUMN progress_attempt integer;
ALTER TABLE queue_job ADD COLUMN date_progress timestamptz;
-- What a job logged while it ran, per attempt (written with the attempt's outcome):
-- lines as JSON [[time, level, logger, message], ...], and the lines dropped over the
-- limits. Gone with its job.
CREATE TABLE queue_job_log (
    job_uuid  uuid    NOT NULL REFERENCES queue_job (uuid) ON DELETE CASCADE,
    attempt   integer NOT NULL,
    lines     text    NOT NULL,
    dropped   integer NOT NULL DEFAULT 0,
    PRIMARY KEY (job_uuid, attempt)
);
