-- Job graphs (jobs that wait for other jobs), periodic jobs, and waiters of outcomes.

ALTER TABLE queue_job ADD COLUMN graph_uuid uuid;
-- the job has children waiting for it: its completion releases them
ALTER TABLE queue_job ADD COLUMN has_dependents boolean NOT NULL DEFAULT false;
CREATE INDEX queue_job_graph ON queue_job (graph_uuid) WHERE graph_uuid IS NOT NULL;

CREATE TABLE queue_job_dependency (
    parent_uuid  uuid NOT NULL,
    child_uuid   uuid NOT NULL,
    PRIMARY KEY (parent_uuid, child_uuid)
);
CREATE INDEX queue_job_dependency_child ON queue_job_dependency (child_uuid);

-- A job waiting for its parents holds its identity key too.
DROP INDEX queue_job_identity;
CREATE UNIQUE INDEX queue_job_identity ON queue_job (identity_key)
    WHERE identity_key IS NOT NULL AND state IN ('pending', 'enqueued', 'wait_dependencies');

-- Periodic jobs: the last slot each schedule enqueued. Advancing it is a
-- compare-and-set, so one worker only enqueues a slot, however many run.
CREATE TABLE queue_schedule (
    name          text PRIMARY KEY,
    last_slot     timestamptz,
    date_updated  timestamptz
);

-- Jobs someone waits for (db.wait): their outcome is announced, and only theirs, so that
-- ending jobs nobody waits for costs no notification.
CREATE TABLE queue_job_waiter (
    uuid          uuid NOT NULL,
    date_created  timestamptz NOT NULL
);
CREATE INDEX queue_job_waiter_uuid ON queue_job_waiter (uuid);

-- The version of the configuration stored for channels and job functions: changed with
-- every change of it. A worker that claims without reading the configuration claims
-- only while the version is the one it read last.
CREATE TABLE queue_config (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    version  INTEGER NOT NULL
);
INSERT INTO queue_config (id, version) VALUES (1, 0);
