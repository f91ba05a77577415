-- Flow control (core.channels: rate, key_capacity, fair): what claims read and write
-- for the rules all workers follow. Run under the claim lock.

-- name: rate_window
-- (batch) For each rate-limited channel: the starts within its window and, when there
-- are any, the seconds until the oldest leaves it (rows older than the window are
-- skipped, and removed from time to time by prune_rate_starts).
SELECT wanted.channel, coalesce(sum(start.starts), 0) AS used,
       extract(epoch FROM min(start.started_at) + make_interval(secs => wanted.period)
               - now())::float8 AS frees_in
FROM unnest(%(channel)s::text[], %(period)s::float8[]) AS wanted(channel, period)
LEFT JOIN queue_rate_start AS start
    ON start.channel = wanted.channel
   AND start.started_at > now() - make_interval(secs => wanted.period)
GROUP BY wanted.channel, wanted.period;

-- name: prune_rate_starts
-- (batch) Starts that left their channel's window.
DELETE FROM queue_rate_start AS start
USING unnest(%(channel)s::text[], %(period)s::float8[]) AS wanted(channel, period)
WHERE start.channel = wanted.channel
  AND start.started_at <= now() - make_interval(secs => wanted.period);

-- name: record_rate_starts
-- Jobs of rate-limited channels started now (%(channels)s, an array: one entry per job
-- and channel), one row per channel counting them.
INSERT INTO queue_rate_start (channel, started_at, starts)
SELECT channel, now(), count(*) FROM unnest(%(channels)s::text[]) AS started(channel)
GROUP BY channel;

-- name: key_running
-- Running jobs per channel and concurrency key (few: bounded by the job threads).
SELECT channel, concurrency_key, count(*) AS running FROM queue_job
WHERE state = 'started' AND concurrency_key <> ''
GROUP BY channel, concurrency_key;

-- name: fair_keys
-- The keys of a channel's pending jobs after :after, in key order, at most :limit: a
-- skip scan of queue_job_pending_by_key (one probe per key, whatever the jobs per key).
WITH RECURSIVE keys(key, n) AS (
    SELECT (SELECT min(concurrency_key) FROM queue_job
            WHERE state = 'pending' AND concurrency_key <> '' AND channel = %(channel)s
              AND concurrency_key > %(after)s), 1
    UNION ALL
    SELECT (SELECT min(concurrency_key) FROM queue_job
            WHERE state = 'pending' AND concurrency_key <> '' AND channel = %(channel)s
              AND concurrency_key > keys.key), keys.n + 1
    FROM keys WHERE keys.key IS NOT NULL AND keys.n < %(limit)s
)
SELECT key FROM keys WHERE key IS NOT NULL;

-- name: key_candidates
-- (batch) The first due jobs of one key of a channel, in start order, up to its room,
-- read from queue_job_pending_by_key ("<> ''" lets the partial index serve): the key is
-- a range of one value, not an equality, and the order is the index's, so that no
-- statistics (one key holding most jobs makes an equality look unselective) can turn
-- the plan into a walk of queue_job_pending through other keys' jobs.
SELECT job.id, job.channel, job.priority, job.date_created, job.concurrency_key,
       true AS due
FROM unnest(%(channel)s::text[], %(key)s::text[], %(limit)s::int[])
    AS wanted(channel, key, room)
CROSS JOIN LATERAL (
    SELECT id, channel, priority, date_created, concurrency_key FROM queue_job
    WHERE state = 'pending' AND channel = wanted.channel AND concurrency_key <> ''
      AND concurrency_key >= wanted.key AND concurrency_key <= wanted.key
      AND (eta IS NULL OR eta <= now())
    ORDER BY concurrency_key, priority, date_created, id
    LIMIT wanted.room
    FOR UPDATE SKIP LOCKED
) AS job;

-- name: keyless_candidates
-- (batch) The first due jobs of a channel that have no key, up to a room, among the
-- first `scan` due jobs of the channel in start order (all of them when NULL): under a
-- flood of keyed jobs an unbounded look walks them all. The head is read first, from
-- queue_job_pending (never a scan of the table), then filtered; no row lock: a fair
-- channel is claimed under the claim lock, and start_jobs takes only pending jobs.
SELECT found.id, found.channel, found.priority, found.date_created, found.concurrency_key,
       true AS due
FROM unnest(%(channel)s::text[], %(limit)s::int[], %(scan)s::int[])
    AS wanted(channel, room, scan)
CROSS JOIN LATERAL (
    SELECT head.* FROM (
        SELECT id, channel, priority, date_created, concurrency_key FROM queue_job
        WHERE state = 'pending' AND channel = wanted.channel
          AND (eta IS NULL OR eta <= now())
        ORDER BY priority, date_created, id
        LIMIT wanted.scan
    ) AS head
    WHERE head.concurrency_key = ''
    ORDER BY head.priority, head.date_created, head.id
    LIMIT wanted.room
) AS found;

-- name: candidates_without_keys
-- The first due jobs of a channel in start order, but those of keys at their capacity.
SELECT id, channel, priority, date_created, concurrency_key, true AS due FROM queue_job
WHERE state = 'pending' AND channel = %(channel)s AND (eta IS NULL OR eta <= now())
  AND concurrency_key <> ALL(%(blocked)s::text[])
ORDER BY priority, date_created, id
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED;

-- name: set_fair_cursor
-- (batch) Where the turns of a fair channel stopped (a bookkeeping row when the channel
-- has no stored rules).
INSERT INTO queue_channel (name, fair_cursor)
SELECT name, key FROM unnest(%(name)s::text[], %(key)s::text[]) AS turn(name, key)
ON CONFLICT (name) DO UPDATE SET fair_cursor = excluded.fair_cursor;
