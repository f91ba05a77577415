-- Batches (queuejob.batch, the successor's queue_job_batch): a named group of jobs
-- delayed together, tracked as one. A worker service looks at the open batches every
-- second and concludes one whose jobs are all done ('done') or one of whose jobs failed
-- for good or was cancelled ('failed'), by a compare-and-set on state in the transaction
-- that delays its callback (one callback across all workers).
-- What a row holds is data: a value that does not make sense (written by hand) costs
-- that batch only. The callbacks are text (JSON of the function's name, its arguments
-- encoded by queuejob's codec and its job's options), never pickles.
CREATE TABLE queue_batch (
    uuid            uuid        PRIMARY KEY,
    name            text        NOT NULL,
    -- 'open', then 'done' or 'failed'
    state           text        NOT NULL DEFAULT 'open',
    date_created    timestamptz NOT NULL,
    date_concluded  timestamptz,
    -- JSON (NULL: none): the job delayed when the batch is done, when it failed
    on_done         text,
    on_failure      text,
    -- the uuid of the callback job delayed at the conclusion (NULL: none), and why a
    -- callback could not be delayed (a row that does not make sense)
    callback_uuid   text,
    callback_error  text,
    -- psycopg cannot read an infinite time back: one such row would cost every read
    CONSTRAINT queue_batch_times_finite CHECK (
        date_created BETWEEN '0001-01-02' AND '9999-12-30'
        AND (date_concluded IS NULL OR date_concluded BETWEEN '0001-01-02' AND '9999-12-30'))
);
-- the workers read the open batches, oldest first
CREATE INDEX queue_batch_open ON queue_batch (date_created) WHERE state = 'open';
CREATE INDEX queue_batch_created ON queue_batch (date_created);
-- Membership: written with the batch, in the transaction that delays the jobs; a job
-- removed (retention, by hand) leaves its batches.
CREATE TABLE queue_batch_job (
    batch_uuid  uuid NOT NULL REFERENCES queue_batch (uuid) ON DELETE CASCADE,
    job_uuid    uuid NOT NULL REFERENCES queue_job (uuid) ON DELETE CASCADE,
    PRIMARY KEY (batch_uuid, job_uuid)
);
-- a job's batches (and the removal of a job)
CREATE INDEX queue_batch_job_job ON queue_batch_job (job_uuid);
