-- Named queries of the dashboard (queuejob web) and the metrics, PostgreSQL dialect. Same
-- names and parameters as sqlite/dashboard.sql.
--
-- The jobs page's queries are templates: /* TEMPLATE: where */ is filled by
-- queuejob.operations with the dashboard_filter_* fragments of the filters in use (joined
-- by AND), /* TEMPLATE: key */ and /* TEMPLATE: order */ with a dashboard_sort_* fragment.
-- A filter that is not in use is not in the statement at all, so that the planner picks
-- the index of the filters that are (a "(:state IS NULL OR state = :state)" term would
-- keep a generic plan from using any index for it). Values are always bound, never spliced.

-- name: dashboard_jobs
-- One page of the jobs table. Its texts are read up to %(text_read)s characters (a row
-- written by hand may hold megabytes), the exception of a failed job: its last ones. A
-- started job's progress report (the list's bar) is read from the row itself.
SELECT id, uuid, substr(state, 1, %(text_read)s::int) AS state,
       substr(func_name, 1, %(text_read)s::int) AS func_name,
       substr(model_name, 1, %(text_read)s::int) AS model_name,
       substr(description, 1, %(text_read)s::int) AS description,
       substr(channel, 1, %(text_read)s::int) AS channel, priority, retry, max_retries,
       user_id, eta, date_created, date_started, date_done, date_failed,
       CASE WHEN state = 'failed' THEN right(exc_info, 4 * %(text_read)s::int) END
           AS exc_info,
       substr(worker_id, 1, %(text_read)s::int) AS worker_id,
       substr(exc_name, 1, %(text_read)s::int) AS exc_name,
       substr(exc_message, 1, %(text_read)s::int) AS exc_message,
       exec_time, date_cancelled, worker_pid,
       attempt, CASE WHEN state = 'started' THEN progress_done END AS progress_done,
       CASE WHEN state = 'started' THEN progress_total END AS progress_total,
       CASE WHEN state = 'started' THEN progress_attempt END AS progress_attempt,
       CASE WHEN state = 'started' THEN substr(progress_message, 1, %(text_read)s::int)
           END AS progress_message,
       /* TEMPLATE: key */ AS sort_key
FROM queue_job
WHERE /* TEMPLATE: where */
ORDER BY /* TEMPLATE: order */
LIMIT %(limit)s;

-- name: dashboard_count_jobs
-- How many jobs match a filter (the confirmation of an action on every matching job).
SELECT count(*) AS jobs FROM queue_job WHERE /* TEMPLATE: where */;

-- name: dashboard_job_uuids
-- The next chunk of jobs matching a filter, in creation order (actions on every match).
SELECT id, uuid FROM queue_job WHERE /* TEMPLATE: where */ ORDER BY id LIMIT %(limit)s;

-- name: dashboard_last_id
SELECT coalesce(max(id), 0) AS id FROM queue_job;

-- name: dashboard_filter_unfinished
state NOT IN ('done', 'cancelled');

-- name: dashboard_filter_state
state = %(state)s;

-- name: dashboard_filter_action_states
-- The states an action applies to (a set of at most seven, every state, padded by
-- repeating one).
state IN (%(state_1)s, %(state_2)s, %(state_3)s, %(state_4)s, %(state_5)s, %(state_6)s, %(state_7)s);

-- name: dashboard_filter_channel_tree
-- A channel and its subchannels: "root.a" and the names between "root.a." and "root.a/"
-- ("/" follows "." in byte order), so not "root.ab".
(channel = %(channel)s OR (channel > %(channel_prefix)s AND channel < %(channel_prefix_end)s));

-- name: dashboard_filter_func
func_name = %(func_name)s;

-- name: dashboard_filter_model
model_name = %(model_name)s;

-- name: dashboard_filter_exception
exc_name = %(exc_name)s;

-- name: dashboard_filter_user
user_id = %(user_id)s::bigint;

-- name: dashboard_filter_uuid
uuid = %(uuid)s;

-- name: dashboard_filter_text
-- Words in the description, the call (function, model, arguments) or the exception.
-- ILIKE: case-insensitive, as SQLite's LIKE is for ASCII letters.
(description ILIKE %(pattern)s ESCAPE '\' OR func_name ILIKE %(pattern)s ESCAPE '\'
 OR model_name ILIKE %(pattern)s ESCAPE '\' OR args ILIKE %(pattern)s ESCAPE '\'
 OR kwargs ILIKE %(pattern)s ESCAPE '\' OR exc_info ILIKE %(pattern)s ESCAPE '\');

-- name: dashboard_filter_after_id
id > %(after_id)s::bigint;

-- name: dashboard_filter_before_id
id < %(before_id)s::bigint;

-- name: dashboard_keyset_after
-- The jobs after a page's last one in a sort order other than creation: (key, id) pairs.
(/* TEMPLATE: key */, id) > (%(cursor_key)s, %(cursor_id)s);

-- name: dashboard_keyset_before
(/* TEMPLATE: key */, id) < (%(cursor_key)s, %(cursor_id)s);

-- name: dashboard_filter_upto
id <= %(upto)s::bigint;

-- name: dashboard_sort_created
id;

-- name: dashboard_sort_priority
priority;

-- name: dashboard_sort_eta
-- Jobs without an eta sort as the earliest (year 1, as the cursor writes it).
coalesce(eta, '0001-01-01 00:00:00+00'::timestamptz);

-- name: dashboard_sort_started
coalesce(date_started, '0001-01-01 00:00:00+00'::timestamptz);

-- name: dashboard_sort_done
coalesce(date_done, '0001-01-01 00:00:00+00'::timestamptz);

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
-- last %(minutes)s whole minutes (the current one included), and the current minute by
-- the same clock (the server's).
SELECT 'done' AS kind, minute, sum(jobs)::bigint AS jobs
FROM queue_job_minute WHERE minute > floor(extract(epoch FROM now()) / 60)::bigint - %(minutes)s::bigint
GROUP BY minute HAVING sum(jobs) <> 0
UNION ALL
SELECT 'failed', floor(extract(epoch FROM date_failed) / 60)::bigint, count(*)
FROM queue_job
WHERE date_failed IS NOT NULL
  AND date_failed >= now() - make_interval(secs => %(seconds)s::float8)
GROUP BY 2
UNION ALL
SELECT 'now', floor(extract(epoch FROM now()) / 60)::bigint, 0;

-- name: dashboard_queue
-- Pending jobs due now and scheduled later, and how long the oldest due one has waited
-- since it became due (seconds): read from the claim's index of pending jobs.
SELECT
    (SELECT count(*) FROM queue_job
     WHERE state = 'pending' AND (eta IS NULL OR eta <= now())) AS due,
    (SELECT count(*) FROM queue_job WHERE state = 'pending' AND eta > now()) AS scheduled,
    (SELECT extract(epoch FROM now() - min(greatest(eta, date_created)))::float8
     FROM queue_job
     WHERE state = 'pending' AND (eta IS NULL OR eta <= now())) AS oldest_due_age;

-- name: dashboard_running_jobs
-- Started jobs, the longest running first (the workers page), with their progress
-- reports; texts read up to %(text_read)s characters.
SELECT uuid, substr(func_name, 1, %(text_read)s::int) AS func_name,
       substr(description, 1, %(text_read)s::int) AS description,
       substr(channel, 1, %(text_read)s::int) AS channel, worker_id, date_started,
       extract(epoch FROM now() - date_started)::float8 AS running_for,
       attempt, CASE WHEN state = 'started' THEN progress_done END AS progress_done,
       CASE WHEN state = 'started' THEN progress_total END AS progress_total,
       CASE WHEN state = 'started' THEN progress_attempt END AS progress_attempt,
       CASE WHEN state = 'started' THEN substr(progress_message, 1, %(text_read)s::int)
           END AS progress_message
FROM queue_job
WHERE state = 'started'
ORDER BY date_started
LIMIT %(limit)s;

-- name: dashboard_function_counts
-- Unfinished jobs per function and state (the unfinished jobs are few).
SELECT func_name, state, count(*) AS jobs FROM queue_job
WHERE state NOT IN ('done', 'cancelled')
GROUP BY func_name, state;

-- name: dashboard_function_durations
-- Jobs done in the last %(minutes)s minutes per function, and their average run time
-- (seconds; of the jobs that were started), from their tally.
SELECT func_name, sum(jobs)::bigint AS jobs,
       sum(duration_seconds) / nullif(sum(jobs) FILTER (WHERE duration >= 0), 0)
           AS avg_duration
FROM queue_job_minute WHERE minute > floor(extract(epoch FROM now()) / 60)::bigint - %(minutes)s::bigint
GROUP BY func_name HAVING sum(jobs) <> 0;

-- name: dashboard_metric_totals
-- Per channel: jobs stored, attempts started, jobs done, jobs that failed at least once:
-- the unfinished jobs counted, the finished ones from their tally.
SELECT channel, sum(jobs)::bigint AS jobs, sum(attempts)::bigint AS attempts,
       sum(done)::bigint AS done, sum(failed)::bigint AS failed
FROM (
    SELECT channel, count(*) AS jobs, coalesce(sum(attempt), 0) AS attempts, 0 AS done,
           count(date_failed) AS failed
    FROM queue_job WHERE state NOT IN ('done', 'cancelled') GROUP BY channel
    UNION ALL
    SELECT channel, sum(jobs), sum(attempts), sum(jobs) FILTER (WHERE state = 'done'),
           sum(failed)
    FROM queue_job_tally GROUP BY channel
) AS counts
GROUP BY channel HAVING sum(jobs) <> 0;

-- name: dashboard_metric_timings
-- Jobs done in the last %(minutes)s minutes (the current one included): their run time
-- (date_done - date_started) and their queue latency (date_started - when the job became
-- due), per function, in the histogram buckets of queuejob.metrics (bucket = how many
-- bounds are <= the value), from their tally; jobs never started are in neither.
WITH done AS (
    SELECT func_name, duration, latency, sum(jobs) AS jobs,
           sum(duration_seconds) AS duration_seconds, sum(latency_seconds) AS latency_seconds
    FROM queue_job_minute WHERE duration >= 0 AND minute > floor(extract(epoch FROM now()) / 60)::bigint - %(minutes)s::bigint
    GROUP BY func_name, duration, latency
)
SELECT func_name, 'duration' AS measure, duration AS bucket, sum(jobs)::bigint AS jobs,
       sum(duration_seconds) AS seconds
FROM done GROUP BY func_name, duration HAVING sum(jobs) <> 0
UNION ALL
SELECT func_name, 'latency', latency, sum(jobs)::bigint, sum(latency_seconds)
FROM done GROUP BY func_name, latency HAVING sum(jobs) <> 0;

-- name: dashboard_graph_jobs
-- The jobs of a graph (a job's page draws it): what its drawing and its table show, texts
-- read up to %(text_read)s characters.
SELECT id, uuid, substr(state, 1, %(text_read)s::int) AS state,
       substr(func_name, 1, %(text_read)s::int) AS func_name,
       substr(description, 1, %(text_read)s::int) AS description, date_created,
       date_started, date_done, date_failed
FROM queue_job WHERE graph_uuid = %(graph_uuid)s::uuid ORDER BY id;

-- name: dashboard_graph_edges
-- The graph's (parent, child) edges.
SELECT dep.parent_uuid, dep.child_uuid FROM queue_job_dependency AS dep
JOIN queue_job AS job ON job.uuid = dep.child_uuid
WHERE job.graph_uuid = %(graph_uuid)s::uuid;

-- name: dashboard_workers_alive
SELECT count(*) AS workers FROM queue_worker WHERE state = 'alive';

-- name: dashboard_failures_by_exception
-- Failed jobs grouped by the exception they failed with (the successor's exc_name), the
-- most frequent first, with how many failed within the last hour and day: read from the
-- partial index of failed jobs.
SELECT exc_name, count(*) AS jobs, max(date_failed) AS last_failed,
       count(*) FILTER (WHERE date_failed > now() - interval '1 hour') AS last_hour,
       count(*) FILTER (WHERE date_failed > now() - interval '1 day') AS last_day
FROM queue_job
WHERE state = 'failed'
GROUP BY exc_name
ORDER BY jobs DESC, exc_name
LIMIT %(limit)s;

-- name: dashboard_running_keys
-- (batch) The busiest concurrency keys of each channel's subtree (the channel and the
-- names between "root.a." and "root.a/"): its running jobs per key, the most first, at
-- most limit keys, from at most scan entries of queue_job_started_by_key (running jobs
-- are few: bounded by the workers' threads). scanned: the entries read. Keys read up to
-- text_read characters.
SELECT wanted.channel, substr(top.key, 1, wanted.text_read) AS key, top.jobs, top.scanned
FROM unnest(%(channel)s::text[], %(channel_prefix)s::text[],
            %(channel_prefix_end)s::text[], %(scan)s::int[], %(limit)s::int[],
            %(text_read)s::int[])
    AS wanted(channel, prefix, prefix_end, scan, lim, text_read)
CROSS JOIN LATERAL (
    SELECT concurrency_key AS key, count(*) AS jobs,
           (sum(count(*)) OVER ())::bigint AS scanned
    FROM (SELECT concurrency_key FROM queue_job
          WHERE state = 'started' AND concurrency_key <> ''
            AND channel >= wanted.channel AND channel < wanted.prefix_end
            AND (channel = wanted.channel OR channel > wanted.prefix)
          ORDER BY channel, concurrency_key
          LIMIT wanted.scan) AS found
    GROUP BY concurrency_key
    ORDER BY jobs DESC, concurrency_key
    LIMIT wanted.lim
) AS top
ORDER BY wanted.channel, top.jobs DESC, top.key;

-- name: dashboard_waiting_keys
-- (batch) The same for each channel's pending jobs: the keys with the most jobs waiting,
-- from at most scan entries of queue_job_pending_by_key (read in key order: when scanned
-- reaches scan, the keys after those read are not counted).
SELECT wanted.channel, substr(top.key, 1, wanted.text_read) AS key, top.jobs, top.scanned
FROM unnest(%(channel)s::text[], %(channel_prefix)s::text[],
            %(channel_prefix_end)s::text[], %(scan)s::int[], %(limit)s::int[],
            %(text_read)s::int[])
    AS wanted(channel, prefix, prefix_end, scan, lim, text_read)
CROSS JOIN LATERAL (
    SELECT concurrency_key AS key, count(*) AS jobs,
           (sum(count(*)) OVER ())::bigint AS scanned
    FROM (SELECT concurrency_key FROM queue_job
          WHERE state = 'pending' AND concurrency_key <> ''
            AND channel >= wanted.channel AND channel < wanted.prefix_end
            AND (channel = wanted.channel OR channel > wanted.prefix)
          ORDER BY channel, concurrency_key
          LIMIT wanted.scan) AS found
    GROUP BY concurrency_key
    ORDER BY jobs DESC, concurrency_key
    LIMIT wanted.lim
) AS top
ORDER BY wanted.channel, top.jobs DESC, top.key;
