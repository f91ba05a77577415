-- queuejob schema, SQLite dialect. Timestamps are REAL seconds since the Unix epoch (UTC).

CREATE TABLE queue_job (
    id             INTEGER PRIMARY KEY,          -- creation order, the last sort key
    uuid           TEXT    NOT NULL UNIQUE,
    state          TEXT    NOT NULL,
    func_name      TEXT    NOT NULL,
    model_name     TEXT,
    args           TEXT    NOT NULL,             -- JSON with type tags, never pickle
    kwargs         TEXT    NOT NULL,
    description    TEXT,
    channel        TEXT    NOT NULL,
    priority       INTEGER NOT NULL,
    max_retries    INTEGER NOT NULL,
    retry          INTEGER NOT NULL DEFAULT 0,   -- attempts counted (perform adds 1)
    attempt        INTEGER NOT NULL DEFAULT 0,   -- claims so far, never reset: fences late writes
    worker_deaths  INTEGER NOT NULL DEFAULT 0,
    identity_key   TEXT,
    user_id        INTEGER,
    context        TEXT,
    result         TEXT,
    exc_info       TEXT,
    worker_id      TEXT,
    eta            REAL,
    date_created   REAL    NOT NULL,
    date_enqueued  REAL,
    date_started   REAL,
    date_done      REAL
);

-- The claim reads due jobs of one channel in start order from this index only
-- (eta is carried so that the due check needs no table lookup).
CREATE INDEX queue_job_pending ON queue_job (channel, priority, date_created, id, eta)
    WHERE state = 'pending';
-- The claim of a queue without per-channel rules reads due jobs in start order from this
-- one, whatever their channel.
CREATE INDEX queue_job_next ON queue_job (priority, date_created, id, channel, eta)
    WHERE state = 'pending';
-- Running jobs: counted per channel at every claim, rescued per worker.
CREATE INDEX queue_job_started ON queue_job (worker_id, channel) WHERE state = 'started';
-- Sequential channels are blocked while they hold a failed job.
CREATE INDEX queue_job_failed ON queue_job (channel) WHERE state = 'failed';
-- Removal of old done and cancelled jobs (in (date_done, id) order), and their counts
-- by channel and state read from the index alone.
CREATE INDEX queue_job_finished ON queue_job (date_done, id, channel, state)
    WHERE state IN ('done', 'cancelled');
-- One pending or enqueued job per identity key: concurrent delays cannot both insert.
CREATE UNIQUE INDEX queue_job_identity ON queue_job (identity_key)
    WHERE identity_key IS NOT NULL AND state IN ('pending', 'enqueued');
-- Every index is written at each change of a job's state (pending, started, done: three
-- row versions per job), so the table has few full indexes: the others are partial,
-- on states a job passes through once or that are rare.

-- Global channel configuration, shared by every worker of the database.
CREATE TABLE queue_channel (
    name              TEXT    PRIMARY KEY,
    capacity          INTEGER,                   -- NULL: no global limit
    sequential        INTEGER NOT NULL DEFAULT 0,
    throttle          REAL    NOT NULL DEFAULT 0,
    removal_interval  REAL,                      -- days; NULL: inherited (default 30)
    paused            INTEGER NOT NULL DEFAULT 0,
    last_started      REAL,                      -- bookkeeping of throttled channels
    date_updated      REAL
);

-- Workers and their heartbeats: liveness for the rescue of their jobs.
CREATE TABLE queue_worker (
    id            TEXT PRIMARY KEY,
    hostname      TEXT NOT NULL,
    pid           INTEGER NOT NULL,
    channels      TEXT,
    state         TEXT NOT NULL,                 -- alive, stopped, dead
    date_started  REAL NOT NULL,
    heartbeat     REAL NOT NULL,
    date_stopped  REAL
);
CREATE INDEX queue_worker_alive ON queue_worker (heartbeat) WHERE state = 'alive';
