-- Batches (queuejob.batch, the successor's queue_job_batch): a named group of jobs
-- delayed together, tracked as one. A worker service looks at the open batches every
-- second and concludes one whose jobs are all done ('done') or one of whose jobs failed
-- for good or was cancelled ('failed'), by a compare-and-set on state in the transaction
-- that delays its callback (one callback across all workers).
-- What a row holds is data: a value that does not make sense (written by hand) costs
-- that batch only. The callbacks are text (JSON of the function's name, its arguments
-- encoded by queuejob's codec and its job's options), never pickles.
CREATE TABLE queue_batch (
    uuid            TEXT    PRIMARY KEY,
    name            TEXT    NOT NULL,
    -- 'open', then 'done' or 'failed'
    state           TEXT    NOT NULL DEFAULT 'open',
    date_created    REAL    NOT NULL,
    date_concluded  REAL,
    -- JSON (NULL: none): the job delayed when the batch is done, when it failed
    on_done         TEXT,
    on_failure      TEXT,
    -- the uuid of the callback job delayed at the conclusion (NULL: none), and why a
    -- callback could not be delayed (a row that does not make sense)
    callback_uuid   TEXT,
    callback_error  TEXT
);
-- the workers read the open batches, oldest first
CREATE INDEX queue_batch_open ON queue_batch (date_created) WHERE state = 'open';
CREATE INDEX queue_batch_created ON queue_batch (date_created);
-- Membership: written with the batch, in the transaction that delays the jobs; a job
-- removed (retention, by hand) leaves its batches.
CREATE TABLE queue_batch_job (
    batch_uuid  TEXT NOT NULL REFERENCES queue_batch (uuid) ON DELETE CASCADE,
    job_uuid    TEXT NOT NULL REFERENCES queue_job (uuid) ON DELETE CASCADE,
    PRIMARY KEY (batch_uuid, job_uuid)
);
-- a job's batches (and the removal of a job)
CREATE INDEX queue_batch_job_job ON queue_batch_job (job_uuid);
