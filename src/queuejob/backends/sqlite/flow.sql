-- Flow control (core.channels: rate, key_capacity, fair): what claims read and write
-- for the rules all workers follow. Run under the write lock.

-- name: rate_window
-- A rate-limited channel: the starts within its window and, when there are any, the
-- seconds until the oldest leaves it (rows older than the window are skipped, and
-- removed from time to time by prune_rate_starts).
SELECT :channel AS channel, total(starts) AS used,
       min(started_at) + :period - :now AS frees_in
FROM queue_rate_start
WHERE channel = :channel AND started_at > :now - :period;

-- name: prune_rate_starts
-- Starts that left their channel's window.
DELETE FROM queue_rate_start WHERE channel = :channel AND started_at <= :now - :period;

-- name: record_rate_starts
-- Jobs of rate-limited channels started now (:channels, a JSON array: one entry per job
-- and channel), one row per channel counting them.
INSERT INTO queue_rate_start (channel, started_at, starts)
SELECT value, :now, count(*) FROM json_each(:channels) GROUP BY value;

-- name: key_running
-- Running jobs per channel and concurrency key (few: bounded by the job threads).
SELECT CAST(channel AS TEXT) AS channel, CAST(concurrency_key AS TEXT) AS concurrency_key,
       count(*) AS running
FROM queue_job INDEXED BY queue_job_started_by_key
WHERE state = 'started' AND concurrency_key <> ''
GROUP BY channel, concurrency_key;

-- name: fair_keys
-- The keys of a channel's pending jobs after :after, in key order, at most :limit: a
-- skip scan of queue_job_pending_by_key (one probe per key, whatever the jobs per key).
WITH RECURSIVE keys(key, n) AS (
    SELECT (SELECT min(concurrency_key) FROM queue_job INDEXED BY queue_job_pending_by_key
            WHERE state = 'pending' AND concurrency_key <> '' AND channel = :channel
              AND concurrency_key > :after), 1
    UNION ALL
    SELECT (SELECT min(concurrency_key) FROM queue_job INDEXED BY queue_job_pending_by_key
            WHERE state = 'pending' AND concurrency_key <> '' AND channel = :channel
              AND concurrency_key > keys.key), keys.n + 1
    FROM keys WHERE keys.key IS NOT NULL AND keys.n < :limit
)
SELECT key FROM keys WHERE key IS NOT NULL;

-- name: key_candidates
-- The first due jobs of one key of a channel, in start order, up to its room.
SELECT id, channel, priority, date_created, concurrency_key, 1 AS due
FROM queue_job INDEXED BY queue_job_pending_by_key
WHERE state = 'pending' AND channel = :channel AND concurrency_key <> ''
  AND concurrency_key = :key AND (eta IS NULL OR eta <= :now)
ORDER BY concurrency_key, priority, date_created, id
LIMIT :limit;

-- name: keyless_candidates
-- The first due jobs of a channel that have no key, up to a room, among the first :scan
-- due jobs of the channel in start order (all of them when -1): under a flood of keyed
-- jobs an unbounded look walks them all.
SELECT id, channel, priority, date_created, concurrency_key, due FROM (
    SELECT id, channel, priority, date_created, concurrency_key, 1 AS due
    FROM queue_job INDEXED BY queue_job_pending
    WHERE state = 'pending' AND channel = :channel AND (eta IS NULL OR eta <= :now)
    ORDER BY priority, date_created, id
    LIMIT :scan)
WHERE concurrency_key = ''
ORDER BY priority, date_created, id
LIMIT :limit;

-- name: candidates_without_keys
-- The first due jobs of a channel in start order, but those of keys at their capacity
-- (:blocked, a JSON array).
SELECT id, channel, priority, date_created, concurrency_key, 1 AS due
FROM queue_job INDEXED BY queue_job_pending
WHERE state = 'pending' AND channel = :channel AND (eta IS NULL OR eta <= :now)
  AND concurrency_key NOT IN (SELECT value FROM json_each(:blocked))
ORDER BY priority, date_created, id
LIMIT :limit;

-- name: set_fair_cursor
-- Where the turns of a fair channel stopped (a bookkeeping row when the channel has no
-- stored rules).
INSERT INTO queue_channel (name, fair_cursor) VALUES (:name, :key)
ON CONFLICT (name) DO UPDATE SET fair_cursor = excluded.fair_cursor;
