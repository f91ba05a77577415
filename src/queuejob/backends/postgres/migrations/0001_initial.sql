-- queuejob schema, PostgreSQL dialect.

CREATE TABLE queue_job (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- creation order
    uuid           uuid        NOT NULL UNIQUE,
    state          text        NOT NULL,
    func_name      text        NOT NULL,
    model_name     text,
    args           text        NOT NULL,         -- JSON with type tags, never pickle
    kwargs         text        NOT NULL,
    description    text,
    channel        text        NOT NULL,
    priority       integer     NOT NULL,
    max_retries    integer     NOT NULL,
    retry          integer     NOT NULL DEFAULT 0,  -- attempts counted (perform adds 1)
    attempt        integer     NOT NULL DEFAULT 0,  -- claims so far, never reset: fences late writes
    worker_deaths  integer     NOT NULL DEFAULT 0,
    identity_key   text,
    user_id        bigint,
    context        text,
    result         text,
    exc_info       text,
    worker_id      text,
    eta            timestamptz,
    date_created   timestamptz NOT NULL,
    date_enqueued  timestamptz,
    date_started   timestamptz,
    date_done      timestamptz
);

-- The claim reads due jobs of one channel in start order from this index only.
CREATE INDEX queue_job_pending ON queue_job (channel, priority, date_created, id) INCLUDE (eta)
    WHERE state = 'pending';
-- The claim of a queue without per-channel rules reads due jobs in start order from this
-- one, whatever their channel.
CREATE INDEX queue_job_next ON queue_job (priority, date_created, id) INCLUDE (channel, eta)
    WHERE state = 'pending';
-- Running jobs: counted per channel at every claim, rescued per worker.
CREATE INDEX queue_job_started ON queue_job (worker_id, channel) WHERE state = 'started';
-- Sequential channels are blocked while they hold a failed job.
CREATE INDEX queue_job_failed ON queue_job (channel) WHERE state = 'failed';
-- Removal of old done and cancelled jobs (in (date_done, id) order), and their counts
-- by channel and state read from the index alone.
CREATE INDEX queue_job_finished ON queue_job (date_done, id) INCLUDE (channel, state)
    WHERE state IN ('done', 'cancelled');
-- One pending or enqueued job per identity key: concurrent delays cannot both insert.
CREATE UNIQUE INDEX queue_job_identity ON queue_job (identity_key)
    WHERE identity_key IS NOT NULL AND state IN ('pending', 'enqueued');
-- Every index is written at each change of a job's state (pending, started, done: three
-- row versions per job: a state change is never a HOT update), so the table has few full
-- indexes: the others are partial, on states a job passes through once or that are rare.

-- Workers are woken by a notification when jobs are inserted (one per statement,
-- delivered at commit, so never for a transaction that rolls back).
CREATE FUNCTION queue_job_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('queuejob', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER queue_job_notify AFTER INSERT ON queue_job
    FOR EACH STATEMENT EXECUTE FUNCTION queue_job_notify();

-- Global channel configuration, shared by every worker of the database.
CREATE TABLE queue_channel (
    name              text        PRIMARY KEY,
    capacity          integer,                   -- NULL: no global limit
    sequential        boolean     NOT NULL DEFAULT false,
    throttle          float8      NOT NULL DEFAULT 0,
    removal_interval  float8,                    -- days; NULL: inherited (default 30)
    paused            boolean     NOT NULL DEFAULT false,
    last_started      timestamptz,               -- bookkeeping of throttled channels
    date_updated      timestamptz
);

-- Workers and their heartbeats: liveness for the rescue of their jobs.
CREATE TABLE queue_worker (
    id            text        PRIMARY KEY,
    hostname      text        NOT NULL,
    pid           integer     NOT NULL,
    channels      text,
    state         text        NOT NULL,          -- alive, stopped, dead
    date_started  timestamptz NOT NULL,
    heartbeat     timestamptz NOT NULL,
    date_stopped  timestamptz
);
CREATE INDEX queue_worker_alive ON queue_worker (heartbeat) WHERE state = 'alive';
