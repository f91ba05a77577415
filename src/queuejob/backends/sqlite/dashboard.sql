-- Named queries of the dashboard (queuejob web) and the metrics, SQLite dialect. Same names
-- and parameters as postgres/dashboard.sql.
--
-- The jobs page's queries are templates: /* TEMPLATE: where */ is filled by
-- queuejob.operations with the dashboard_filter_* fragments of the filters in use (joined
-- by AND), /* TEMPLATE: key */ and /* TEMPLATE: order */ with a dashboard_sort_* fragment.
-- A filter that is not in use is not in the statement at all, so that the planner picks
-- the index of the filters that are (a "(:state IS NULL OR state = :state)" term would
-- keep SQLite from using any index for it). Values are always bound, never spliced.

-- name: dashboard_jobs
-- One page of the jobs table. Its texts are read up to 4 * :text_read bytes (:text_read
-- characters or more; a row written by hand may hold megabytes), the exception of a
-- failed job: its last ones. A longer text is cut as bytes (substr on text would stop at
-- a NUL character), then read back as text; a shorter one is read as it is (substr
-- makes an empty BLOB NULL); BLOBs stay BLOBs. A started job's progress report (the
-- list's bar) is read from the row itself: numbers only (a value stored by hand that is
-- not one reads as NULL), its message cut as the other texts.
SELECT id,
       CASE WHEN length(CAST(uuid AS BLOB)) <= 4 * :text_read THEN uuid
            WHEN typeof(uuid) = 'text'
            THEN CAST(substr(CAST(uuid AS BLOB), 1, 4 * :text_read) AS TEXT)
            ELSE substr(uuid, 1, 4 * :text_read) END AS uuid,
       CASE WHEN length(CAST(state AS BLOB)) <= 4 * :text_read THEN state
            WHEN typeof(state) = 'text'
            THEN CAST(substr(CAST(state AS BLOB), 1, 4 * :text_read) AS TEXT)
            ELSE substr(state, 1, 4 * :text_read) END AS state,
       CASE WHEN length(CAST(func_name AS BLOB)) <= 4 * :text_read THEN func_name
            WHEN typeof(func_name) = 'text'
            THEN CAST(substr(CAST(func_name AS BLOB), 1, 4 * :text_read) AS TEXT)
            ELSE substr(func_name, 1, 4 * :text_read) END AS func_name,
       CASE WHEN length(CAST(model_name AS BLOB)) <= 4 * :text_read THEN model_name
            WHEN typeof(model_name) = 'text'
            THEN CAST(substr(CAST(model_name AS BLOB), 1, 4 * :text_read) AS TEXT)
            ELSE substr(model_name, 1, 4 * :text_read) END AS model_name,
       CASE WHEN length(CAST(description AS BLOB)) <= 4 * :text_read THEN description
            WHEN typeof(description) = 'text'
            THEN CAST(substr(CAST(description AS BLOB), 1, 4 * :text_read) AS TEXT)
            ELSE substr(description, 1, 4 * :text_read) END AS description,
       CASE WHEN length(CAST(channel AS BLOB)) <= 4 * :text_read THEN channel
            WHEN typeof(channel) = 'text'
            THEN CAST(substr(CAST(channel AS BLOB), 1, 4 * :text_read) AS TEXT)
            ELSE substr(channel, 1, 4 * :text_read) END AS channel,
       priority, retry, max_retries, user_id, eta, date_created, date_started, date_done,
       date_failed,
       CASE WHEN state <> 'failed' THEN NULL
            WHEN length(CAST(exc_info AS BLOB)) <= 16 * :text_read THEN exc_info
            WHEN typeof(exc_info) = 'text'
            THEN CAST(substr(CAST(exc_info AS BLOB), -16 * :text_read) AS TEXT)
            ELSE substr(exc_info, -16 * :text_read) END AS exc_info,
       CASE WHEN length(CAST(worker_id AS BLOB)) <= 4 * :text_read THEN worker_id
            WHEN typeof(worker_id) = 'text'
            THEN CAST(substr(CAST(worker_id AS BLOB), 1, 4 * :text_read) AS TEXT)
            ELSE substr(worker_id, 1, 4 * :text_read) END AS worker_id,
       CASE WHEN length(CAST(exc_name AS BLOB)) <= 4 * :text_read THEN exc_name
            WHEN typeof(exc_name) = 'text'
            THEN CAST(substr(CAST(exc_name AS BLOB), 1, 4 * :text_read) AS TEXT)
            ELSE substr(exc_name, 1, 4 * :text_read) END AS exc_name,
       CASE WHEN length(CAST(exc_message AS BLOB)) <= 4 * :text_read THEN exc_message
            WHEN typeof(exc_message) = 'text'
            THEN CAST(substr(CAST(exc_message AS BLOB), 1, 4 * :text_read) AS TEXT)
            ELSE substr(exc_message, 1, 4 * :text_read) END AS exc_message,
       exec_time, date_cancelled, worker_pid,
       CASE WHEN typeof(attempt) = 'integer' THEN attempt END AS attempt,
       CASE WHEN state = 'started' AND typeof(progress_done) IN ('integer', 'real')
            THEN progress_done END AS progress_done,
       CASE WHEN state = 'started' AND typeof(progress_total) IN ('integer', 'real')
            THEN progress_total END AS progress_total,
       CASE WHEN state = 'started' AND typeof(progress_attempt) IN ('integer', 'real')
            THEN progress_attempt END AS progress_attempt,
       CASE WHEN state <> 'started' THEN NULL
            WHEN length(CAST(progress_message AS BLOB)) <= 4 * :text_read
            THEN progress_message
            WHEN typeof(progress_message) = 'text'
            THEN CAST(substr(CAST(progress_message AS BLOB), 1, 4 * :text_read) AS TEXT)
            ELSE substr(progress_message, 1, 4 * :text_read) END AS progress_message,
       /* TEMPLATE: key */ AS sort_key
FROM queue_job
WHERE /* TEMPLATE: where */
ORDER BY /* TEMPLATE: order */
LIMIT :limit;

-- name: dashboard_count_jobs
-- How many jobs match a filter (the confirmation of an action on every matching job).
SELECT count(*) AS jobs FROM queue_job WHERE /* TEMPLATE: where */;

-- name: dashboard_job_uuids
-- The next chunk of jobs matching a filter, in creation order (actions on every match).
SELECT id, uuid FROM queue_job WHERE /* TEMPLATE: where */ ORDER BY id LIMIT :limit;

-- name: dashboard_last_id
SELECT coalesce(max(id), 0) AS id FROM queue_job;

-- name: dashboard_filter_unfinished
state NOT IN ('done', 'cancelled');

-- name: dashboard_filter_state
state = :state;

-- name: dashboard_filter_action_states
-- The states an action applies to (a set of at most seven, every state, padded by
-- repeating one).
state IN (:state_1, :state_2, :state_3, :state_4, :state_5, :state_6, :state_7);

-- name: dashboard_filter_channel_tree
-- A channel and its subchannels: "root.a" and the names between "root.a." and "root.a/"
-- ("/" follows "." in byte order), so not "root.ab".
(channel = :channel OR (channel > :channel_prefix AND channel < :channel_prefix_end));

-- name: dashboard_filter_func
func_name = :func_name;

-- name: dashboard_filter_model
model_name = :model_name;

-- name: dashboard_filter_exception
exc_name = :exc_name;

-- name: dashboard_filter_user
user_id = :user_id;

-- name: dashboard_filter_uuid
uuid = :uuid;

-- name: dashboard_filter_text
-- Words in the description, the call (function, model, arguments) or the exception.
-- LIKE is case-insensitive for ASCII letters in SQLite.
(description LIKE :pattern ESCAPE '\' OR func_name LIKE :pattern ESCAPE '\'
 OR model_name LIKE :pattern ESCAPE '\' OR args LIKE :pattern ESCAPE '\'
 OR kwargs LIKE :pattern ESCAPE '\' OR exc_info LIKE :pattern ESCAPE '\');

-- name: dashboard_filter_after_id
id > :after_id;

-- name: dashboard_filter_before_id
id < :before_id;

-- name: dashboard_keyset_after
-- The jobs after a page's last one in a sort order other than creation: (key, id) pairs.
(/* TEMPLATE: key */, id) > (:cursor_key, :cursor_id);

-- name: dashboard_keyset_before
(/* TEMPLATE: key */, id) < (:cursor_key, :cursor_id);

-- name: dashboard_filter_upto
id <= :upto;

-- name: dashboard_sort_created
id;

-- name: dashboard_sort_priority
priority;

-- name: dashboard_sort_eta
-- Jobs without an eta sort as the earliest (year 1, as the cursor writes it).
coalesce(eta, -62135596800.0);

-- name: dashboard_sort_started
coalesce(date_started, -62135596800.0);

-- name: dashboard_sort_done
coalesce(date_done, -62135596800.0);

-- name: dashboard_distinct_channels
-- Channels of unfinished jobs and configured channels (the filter's suggestions): no
-- full index on channel is kept, it would slow every state change down.
SELECT DISTINCT channel AS name FROM queue_job WHERE state NOT IN ('done', 'cancelled')
UNION
SELECT name FROM queue_channel
ORDER BY 1;

-- name: dashboard_distinct_functions
-- Job functions of unfinished jobs and functions with stored settings.
SELECT DISTINCT func_name AS name FROM queue_job WHERE state NOT IN ('done', 'cancelled')
UNION
SELECT name FROM queue_job_function
ORDER BY 1;

-- name: dashboard_throughput
-- Jobs done (their tally) and jobs failed per minute (minutes since the epoch) over the
-- last :minutes whole minutes (the current one included), and the current minute by the
-- same clock.
SELECT 'done' AS kind, minute, sum(jobs) AS jobs
FROM queue_job_minute WHERE minute > CAST(:now / 60 AS INTEGER) - :minutes
GROUP BY minute HAVING sum(jobs) <> 0
UNION ALL
SELECT 'failed', CAST(date_failed / 60 AS INTEGER), count(*)
FROM queue_job
WHERE date_failed IS NOT NULL AND date_failed >= :now - :seconds
GROUP BY 2
UNION ALL
SELECT 'now', CAST(:now / 60 AS INTEGER), 0;

-- name: dashboard_queue
-- Pending jobs due now and scheduled later, and how long the oldest due one has waited
-- since it became due (seconds): read from the claim's index of pending jobs.
SELECT
    (SELECT count(*) FROM queue_job
     WHERE state = 'pending' AND (eta IS NULL OR eta <= :now)) AS due,
    (SELECT count(*) FROM queue_job WHERE state = 'pending' AND eta > :now) AS scheduled,
    (SELECT :now - min(CASE WHEN eta IS NULL OR eta < date_created THEN date_created
                            ELSE eta END)
     FROM queue_job WHERE state = 'pending' AND (eta IS NULL OR eta <= :now)) AS oldest_due_age;

-- name: dashboard_running_jobs
-- Started jobs, the longest running first (the workers page), with their progress
-- reports; texts read up to 4 * :text_read bytes, as dashboard_jobs does.
SELECT CASE WHEN length(CAST(uuid AS BLOB)) <= 4 * :text_read THEN uuid
            WHEN typeof(uuid) = 'text'
            THEN CAST(substr(CAST(uuid AS BLOB), 1, 4 * :text_read) AS TEXT)
            ELSE substr(uuid, 1, 4 * :text_read) END AS uuid,
       CASE WHEN length(CAST(func_name AS BLOB)) <= 4 * :text_read THEN func_name
            WHEN typeof(func_name) = 'text'
            THEN CAST(substr(CAST(func_name AS BLOB), 1, 4 * :text_read) AS TEXT)
            ELSE substr(func_name, 1, 4 * :text_read) END AS func_name,
       CASE WHEN length(CAST(description AS BLOB)) <= 4 * :text_read THEN description
            WHEN typeof(description) = 'text'
            THEN CAST(substr(CAST(description AS BLOB), 1, 4 * :text_read) AS TEXT)
            ELSE substr(description, 1, 4 * :text_read) END AS description,
       CASE WHEN length(CAST(channel AS BLOB)) <= 4 * :text_read THEN channel
            WHEN typeof(channel) = 'text'
            THEN CAST(substr(CAST(channel AS BLOB), 1, 4 * :text_read) AS TEXT)
            ELSE substr(channel, 1, 4 * :text_read) END AS channel,
       worker_id, date_started, :now - date_started AS running_for,
       CASE WHEN typeof(attempt) = 'integer' THEN attempt END AS attempt,
       CASE WHEN state = 'started' AND typeof(progress_done) IN ('integer', 'real')
            THEN progress_done END AS progress_done,
       CASE WHEN state = 'started' AND typeof(progress_total) IN ('integer', 'real')
            THEN progress_total END AS progress_total,
       CASE WHEN state = 'started' AND typeof(progress_attempt) IN ('integer', 'real')
            THEN progress_attempt END AS progress_attempt,
       CASE WHEN state <> 'started' THEN NULL
            WHEN length(CAST(progress_message AS BLOB)) <= 4 * :text_read
            THEN progress_message
            WHEN typeof(progress_message) = 'text'
            THEN CAST(substr(CAST(progress_message AS BLOB), 1, 4 * :text_read) AS TEXT)
            ELSE substr(progress_message, 1, 4 * :text_read) END AS progress_message
FROM queue_job
WHERE state = 'started'
ORDER BY date_started
LIMIT :limit;

-- name: dashboard_function_counts
-- Unfinished jobs per function and state (the unfinished jobs are few).
SELECT func_name, state, count(*) AS jobs FROM queue_job
WHERE state NOT IN ('done', 'cancelled')
GROUP BY func_name, state;

-- name: dashboard_function_durations
-- Jobs done in the last :minutes minutes per function, and their average run time
-- (seconds; of the jobs that were started), from their tally.
SELECT func_name, sum(jobs) AS jobs,
       sum(duration_seconds) / nullif(sum(CASE WHEN duration >= 0 THEN jobs ELSE 0 END), 0)
           AS avg_duration
FROM queue_job_minute WHERE minute > CAST(:now / 60 AS INTEGER) - :minutes
GROUP BY func_name HAVING sum(jobs) <> 0;

-- name: dashboard_metric_totals
-- Per channel: jobs stored, attempts started, jobs done, jobs that failed at least once:
-- the unfinished jobs counted (their partial index), the finished ones from their tally.
SELECT channel, sum(jobs) AS jobs, sum(attempts) AS attempts, sum(done) AS done,
       sum(failed) AS failed
FROM (
    SELECT channel, count(*) AS jobs, coalesce(sum(attempt), 0) AS attempts, 0 AS done,
           count(date_failed) AS failed
    FROM queue_job INDEXED BY queue_job_unfinished
    WHERE state NOT IN ('done', 'cancelled') GROUP BY channel
    UNION ALL
    SELECT channel, sum(jobs), sum(attempts),
           sum(CASE WHEN state = 'done' THEN jobs ELSE 0 END), sum(failed)
    FROM queue_job_tally GROUP BY channel
)
GROUP BY channel HAVING sum(jobs) <> 0;

-- name: dashboard_metric_timings
-- Jobs done in the last :minutes minutes (the current one included): their run time
-- (date_done - date_started) and their queue latency (date_started - when the job became
-- due), per function, in the histogram buckets of queuejob.metrics (bucket = how many
-- bounds are <= the value), from their tally; jobs never started are in neither.
WITH done AS (
    SELECT func_name, duration, latency, sum(jobs) AS jobs,
           sum(duration_seconds) AS duration_seconds, sum(latency_seconds) AS latency_seconds
    FROM queue_job_minute WHERE duration >= 0 AND minute > CAST(:now / 60 AS INTEGER) - :minutes
    GROUP BY func_name, duration, latency
)
SELECT func_name, 'duration' AS measure, duration AS bucket, sum(jobs) AS jobs,
       sum(duration_seconds) AS seconds
FROM done GROUP BY func_name, duration HAVING sum(jobs) <> 0
UNION ALL
SELECT func_name, 'latency', latency, sum(jobs), sum(latency_seconds)
FROM done GROUP BY func_name, latency HAVING sum(jobs) <> 0;

-- name: dashboard_graph_jobs
-- The jobs of a graph (a job's page draws it): what its drawing and its table show, texts
-- read up to 4 * :text_read bytes, as dashboard_jobs does.
SELECT id,
       CASE WHEN length(CAST(uuid AS BLOB)) <= 4 * :text_read THEN uuid
            WHEN typeof(uuid) = 'text'
            THEN CAST(substr(CAST(uuid AS BLOB), 1, 4 * :text_read) AS TEXT)
            ELSE substr(uuid, 1, 4 * :text_read) END AS uuid,
       CASE WHEN length(CAST(state AS BLOB)) <= 4 * :text_read THEN state
            WHEN typeof(state) = 'text'
            THEN CAST(substr(CAST(state AS BLOB), 1, 4 * :text_read) AS TEXT)
            ELSE substr(state, 1, 4 * :text_read) END AS state,
       CASE WHEN length(CAST(func_name AS BLOB)) <= 4 * :text_read THEN func_name
            WHEN typeof(func_name) = 'text'
            THEN CAST(substr(CAST(func_name AS BLOB), 1, 4 * :text_read) AS TEXT)
            ELSE substr(func_name, 1, 4 * :text_read) END AS func_name,
       CASE WHEN length(CAST(description AS BLOB)) <= 4 * :text_read THEN description
            WHEN typeof(description) = 'text'
            THEN CAST(substr(CAST(description AS BLOB), 1, 4 * :text_read) AS TEXT)
            ELSE substr(description, 1, 4 * :text_read) END AS description,
       date_created, date_started, date_done, date_failed
FROM queue_job WHERE graph_uuid = :graph_uuid ORDER BY id;

-- name: dashboard_graph_edges
-- The graph's (parent, child) edges.
SELECT dep.parent_uuid, dep.child_uuid FROM queue_job_dependency AS dep
JOIN queue_job AS job ON job.uuid = dep.child_uuid
WHERE job.graph_uuid = :graph_uuid;

-- name: dashboard_workers_alive
SELECT count(*) AS workers FROM queue_worker WHERE state = 'alive';

-- name: dashboard_failures_by_exception
-- Failed jobs grouped by the exception they failed with (the successor's exc_name), the
-- most frequent first, with how many failed within the last hour and day: read from the
-- partial index of failed jobs.
SELECT exc_name, count(*) AS jobs, max(date_failed) AS last_failed,
       sum(date_failed > :now - 3600) AS last_hour,
       sum(date_failed > :now - 86400) AS last_day
FROM queue_job
WHERE state = 'failed'
GROUP BY exc_name
ORDER BY jobs DESC, exc_name
LIMIT :limit;

-- name: dashboard_running_keys
-- The busiest concurrency keys of a channel's subtree (the channel and the names
-- between "root.a." and "root.a/"): its running jobs per key, the most first, at most
-- :limit keys, from at most :scan entries of queue_job_started_by_key (running jobs are
-- few: bounded by the workers' threads). scanned: the entries read. Keys read up to
-- 4 * :text_read bytes (one written by hand may hold megabytes).
SELECT :channel AS channel,
       CASE WHEN length(CAST(concurrency_key AS BLOB)) <= 4 * :text_read THEN concurrency_key
            WHEN typeof(concurrency_key) = 'text'
            THEN CAST(substr(CAST(concurrency_key AS BLOB), 1, 4 * :text_read) AS TEXT)
            ELSE substr(concurrency_key, 1, 4 * :text_read) END AS key,
       count(*) AS jobs, sum(count(*)) OVER () AS scanned
FROM (SELECT concurrency_key FROM queue_job INDEXED BY queue_job_started_by_key
      WHERE state = 'started' AND concurrency_key <> ''
        AND channel >= :channel AND channel < :channel_prefix_end
        AND (channel = :channel OR channel > :channel_prefix)
      ORDER BY channel, concurrency_key
      LIMIT :scan)
GROUP BY concurrency_key
ORDER BY jobs DESC, concurrency_key
LIMIT :limit;

-- name: dashboard_waiting_keys
-- The same for a channel's pending jobs: the keys with the most jobs waiting, from
-- at most :scan entries of queue_job_pending_by_key (read in key order: when scanned
-- reaches :scan, the keys after those read are not counted).
SELECT :channel AS channel,
       CASE WHEN length(CAST(concurrency_key AS BLOB)) <= 4 * :text_read THEN concurrency_key
            WHEN typeof(concurrency_key) = 'text'
            THEN CAST(substr(CAST(concurrency_key AS BLOB), 1, 4 * :text_read) AS TEXT)
            ELSE substr(concurrency_key, 1, 4 * :text_read) END AS key,
       count(*) AS jobs, sum(count(*)) OVER () AS scanned
FROM (SELECT concurrency_key FROM queue_job INDEXED BY queue_job_pending_by_key
      WHERE state = 'pending' AND concurrency_key <> ''
        AND channel >= :channel AND channel < :channel_prefix_end
        AND (channel = :channel OR channel > :channel_prefix)
      ORDER BY channel, concurrency_key
      LIMIT :scan)
GROUP BY concurrency_key
ORDER BY jobs DESC, concurrency_key
LIMIT :limit;
