-- Flow control held in the database, for all workers: a channel's rate limit (at most
-- rate_limit starts in any rate_period seconds), its capacity per concurrency key
-- (key_capacity) and fair turns between keys (fair).
ALTER TABLE queue_channel ADD COLUMN rate_limit INTEGER;
ALTER TABLE queue_channel ADD COLUMN rate_period REAL;
ALTER TABLE queue_channel ADD COLUMN key_capacity INTEGER;
ALTER TABLE queue_channel ADD COLUMN fair INTEGER NOT NULL DEFAULT 0;
-- A string the jobs of one customer, tenant... share ('' for none): key_capacity and
-- fair turns count jobs per key.
ALTER TABLE queue_job ADD COLUMN concurrency_key TEXT NOT NULL DEFAULT '';
-- The pending jobs of a channel key by key, in start order within a key: fair turns
-- find the next key by a skip scan, and its first job by one probe. Jobs without a
-- key stay out of it (they cost nothing more to store and claim).
CREATE INDEX queue_job_pending_by_key
    ON queue_job (channel, concurrency_key, priority, date_created, id, eta)
    WHERE state = 'pending' AND concurrency_key <> '';
-- The running jobs per key (few: bounded by the workers' job threads).
CREATE INDEX queue_job_started_by_key ON queue_job (channel, concurrency_key)
    WHERE state = 'started' AND concurrency_key <> '';
-- The starts of rate-limited channels within their window (older ones are removed by
-- the claims): one row per start, counted under the write lock.
CREATE TABLE queue_rate_start (
    channel     TEXT NOT NULL,      -- the rate-limited channel (configured name)
    started_at  REAL NOT NULL
);
CREATE INDEX queue_rate_start_window ON queue_rate_start (channel, started_at);
-- Where fair turns stopped in each fair channel: the next claim starts after this key.
ALTER TABLE queue_channel ADD COLUMN fair_cursor TEXT;
