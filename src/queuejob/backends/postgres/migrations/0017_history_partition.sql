-- Finished jobs in their own partition: the claim, the outcome writes, the rescue and the
-- heartbeat work on a table holding only unfinished jobs, whatever the history kept.
--
-- queue_job is partitioned by state: queue_job_live holds every job not yet finished
-- (the default partition), queue_job_history the done and cancelled ones. A job that ends
-- moves from one to the other in the statement that writes its outcome (an UPDATE of the
-- partition key moves the row); a requeued one moves back. Reads keep naming queue_job.
-- Inserts of new jobs name queue_job_live: its unique identity index is the arbiter of
-- ON CONFLICT (a partitioned table cannot hold a unique index without its partition key).
--
-- An existing table is renamed queue_job_legacy; its unfinished jobs move into the new
-- table here (few, through the queue_job_unfinished index), its finished ones afterwards
-- in batches of their own transactions, newest first (`queuejob migrate`, or the
-- workers' cleaner, a batch per turn), and the emptied table is dropped. Until a finished
-- job has moved it is not listed.

ALTER TABLE queue_job RENAME TO queue_job_legacy;
DO $$
DECLARE
    name text;
BEGIN
    FOR name IN SELECT indexname FROM pg_indexes
                WHERE schemaname = current_schema() AND tablename = 'queue_job_legacy' LOOP
        EXECUTE format('ALTER INDEX %I RENAME TO %I', name,
                       'queue_job_legacy' || substr(name, length('queue_job') + 1));
    END LOOP;
END
$$;
DROP TRIGGER queue_job_notify ON queue_job_legacy;
-- a job's log lines and batch memberships cannot keep a foreign key to it (the unique
-- keys of a partitioned table include its partition key): a statement trigger removes
-- them with the jobs a DELETE removes (not with a row that moves between partitions: that
-- is an UPDATE)
ALTER TABLE queue_job_log DROP CONSTRAINT queue_job_log_job_uuid_fkey;
ALTER TABLE queue_batch_job DROP CONSTRAINT queue_batch_job_job_uuid_fkey;

ALTER SEQUENCE queue_job_id_seq RENAME TO queue_job_legacy_id_seq;
CREATE SEQUENCE queue_job_id_seq AS bigint;
SELECT setval('queue_job_id_seq', greatest(
    (SELECT last_value FROM queue_job_legacy_id_seq), coalesce((SELECT max(id) FROM queue_job_legacy), 0), 1));

CREATE TABLE queue_job (
    LIKE queue_job_legacy INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE
) PARTITION BY LIST (state);
ALTER TABLE queue_job ALTER COLUMN id DROP IDENTITY IF EXISTS;
ALTER TABLE queue_job ALTER COLUMN id SET DEFAULT nextval('queue_job_id_seq');
ALTER SEQUENCE queue_job_id_seq OWNED BY queue_job.id;

CREATE TABLE queue_job_history PARTITION OF queue_job FOR VALUES IN ('done', 'cancelled');
CREATE TABLE queue_job_live PARTITION OF queue_job DEFAULT;

-- Indexes: each partition has those its own reads use (the comments of 0001 and of the
-- later migrations say what each is for); the partial indexes on unfinished states are
-- the live partition's only, those on finished jobs the history's.
CREATE UNIQUE INDEX queue_job_live_id ON queue_job_live (id);
CREATE UNIQUE INDEX queue_job_live_uuid ON queue_job_live (uuid);
CREATE UNIQUE INDEX queue_job_identity ON queue_job_live (identity_key)
    WHERE identity_key IS NOT NULL AND state IN ('pending', 'enqueued', 'wait_dependencies');
CREATE INDEX queue_job_pending ON queue_job_live (channel, priority, date_created, id)
    INCLUDE (eta) WHERE state = 'pending';
CREATE INDEX queue_job_next ON queue_job_live (priority, date_created, id)
    INCLUDE (channel, eta) WHERE state = 'pending';
CREATE INDEX queue_job_pending_by_key
    ON queue_job_live (channel, concurrency_key, priority, date_created, id) INCLUDE (eta)
    WHERE state = 'pending' AND concurrency_key <> '';
CREATE INDEX queue_job_started ON queue_job_live (worker_id, channel) WHERE state = 'started';
CREATE INDEX queue_job_started_by_key ON queue_job_live (channel, concurrency_key)
    WHERE state = 'started' AND concurrency_key <> '';
CREATE INDEX queue_job_failed ON queue_job_live (channel) WHERE state = 'failed';
CREATE INDEX queue_job_failed_by_exception ON queue_job_live (exc_name) WHERE state = 'failed';
CREATE INDEX queue_job_enqueued ON queue_job_live (id) WHERE state = 'enqueued';
-- a removal of old history rows reads them in (date_done, id) order; each partition
-- gives its rows in id order (the dashboard's lists, newest first) and by uuid
CREATE INDEX queue_job_history_id ON queue_job_history (id);
CREATE INDEX queue_job_history_uuid ON queue_job_history (uuid);
CREATE INDEX queue_job_finished ON queue_job_history (date_done, id) INCLUDE (channel, state);
CREATE INDEX queue_job_cancelled ON queue_job_history (id) WHERE state = 'cancelled';
CREATE INDEX queue_job_failed_at ON queue_job (date_failed) WHERE date_failed IS NOT NULL;
CREATE INDEX queue_job_graph ON queue_job (graph_uuid) WHERE graph_uuid IS NOT NULL;

-- new jobs are inserted into queue_job_live (statement triggers fire on the table a
-- statement names), bulk ones copied into queue_job
CREATE TRIGGER queue_job_notify AFTER INSERT ON queue_job
    FOR EACH STATEMENT EXECUTE FUNCTION queue_job_notify();
CREATE TRIGGER queue_job_notify AFTER INSERT ON queue_job_live
    FOR EACH STATEMENT EXECUTE FUNCTION queue_job_notify();

CREATE FUNCTION queue_job_gone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM queue_job_log WHERE job_uuid IN (SELECT uuid FROM gone);
    DELETE FROM queue_batch_job WHERE job_uuid IN (SELECT uuid FROM gone);
    RETURN NULL;
END
$$;
CREATE TRIGGER queue_job_gone AFTER DELETE ON queue_job REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION queue_job_gone();

-- the unfinished jobs now; the finished ones later, in batches
WITH moved AS (
    DELETE FROM queue_job_legacy WHERE state NOT IN ('done', 'cancelled') RETURNING *
)
INSERT INTO queue_job_live SELECT * FROM moved;
-- a new queue (or one without history) has nothing more to move; else fresh statistics
-- for the estimate of what is left (`queuejob migrate` says it as it moves)
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM queue_job_legacy) THEN
        DROP TABLE queue_job_legacy;
    ELSE
        ANALYZE queue_job_legacy;
    END IF;
END
$$;
