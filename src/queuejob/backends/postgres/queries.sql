-- Named queries of the PostgreSQL dialect. Same names and parameters as sqlite/queries.sql.
-- Parameters are %(name)s (psycopg); times come from the server's clock (now()), never
-- from a worker's, so that machines with drifting clocks agree on etas and heartbeats.
--
-- Queries marked "(batch)" are run through the connector's execute_many: each parameter
-- is an array holding that parameter of every row, and the query handles all the rows
-- in one statement (unnest), one round trip for a whole batch.

-- name: insert_job
-- Store one job. Returns its uuid, or no row when a pending or enqueued job holds the
-- same identity key: the partial unique index decides, and ON CONFLICT waits for a
-- concurrent transaction inserting the same key to end, so two delays never both insert.
-- (New jobs go straight into the partition of unfinished jobs, whose index that is.)
INSERT INTO queue_job_live (uuid, state, func_name, model_name, args, kwargs, description, channel,
                       priority, max_retries, identity_key, user_id, context, eta, timeout,
                       graph_uuid, has_dependents, date_created, concurrency_key, trace_context)
VALUES (%(uuid)s, %(state)s, %(func_name)s, %(model_name)s, %(args)s, %(kwargs)s,
        %(description)s,
        -- the channel given to delay(), else the one people set for the function, else
        -- the decorator's
        COALESCE(%(channel)s::text,
                 (SELECT channel FROM queue_job_function WHERE name = %(func_name)s),
                 %(default_channel)s),
        %(priority)s, %(max_retries)s, %(identity_key)s, %(user_id)s, %(context)s,
        COALESCE(%(eta)s::timestamptz, now() + make_interval(secs => %(eta_delay)s::float8)),
        %(timeout)s::float8, %(graph_uuid)s::uuid, %(has_dependents)s, now(),
        %(concurrency_key)s, %(trace_context)s::text)
ON CONFLICT (identity_key) WHERE identity_key IS NOT NULL AND state IN ('pending', 'enqueued', 'wait_dependencies')
DO NOTHING
RETURNING uuid;

-- name: insert_jobs
-- (batch) Store jobs in one statement; the uuids of those stored. A job whose identity
-- key a pending job holds (or an earlier job of the same batch) is not stored.
INSERT INTO queue_job_live (uuid, state, func_name, model_name, args, kwargs, description, channel,
                       priority, max_retries, identity_key, user_id, context, eta, timeout,
                       graph_uuid, has_dependents, date_created, concurrency_key, trace_context)
SELECT new.uuid, new.state, new.func_name, new.model_name, new.args, new.kwargs,
       new.description,
       COALESCE(new.channel, function.channel, new.default_channel),
       new.priority, new.max_retries, new.identity_key, new.user_id, new.context,
       COALESCE(new.eta, now() + make_interval(secs => new.eta_delay)), new.timeout,
       new.graph_uuid, new.has_dependents, now(), new.concurrency_key, new.trace_context
FROM unnest(%(uuid)s::uuid[], %(func_name)s::text[], %(model_name)s::text[], %(args)s::text[],
            %(kwargs)s::text[], %(description)s::text[], %(channel)s::text[],
            %(default_channel)s::text[], %(priority)s::int[], %(max_retries)s::int[],
            %(identity_key)s::text[], %(user_id)s::bigint[], %(context)s::text[],
            %(eta)s::timestamptz[], %(eta_delay)s::float8[], %(timeout)s::float8[],
            %(state)s::text[], %(graph_uuid)s::uuid[], %(has_dependents)s::boolean[],
            %(concurrency_key)s::text[], %(trace_context)s::text[])
    WITH ORDINALITY
    AS new(uuid, func_name, model_name, args, kwargs, description, channel, default_channel,
           priority, max_retries, identity_key, user_id, context, eta, eta_delay, timeout,
           state, graph_uuid, has_dependents, concurrency_key, trace_context, position)
LEFT JOIN queue_job_function AS function ON function.name = new.func_name
ORDER BY new.position
ON CONFLICT (identity_key) WHERE identity_key IS NOT NULL AND state IN ('pending', 'enqueued', 'wait_dependencies')
DO NOTHING
RETURNING uuid;

-- name: job_by_identity_key
SELECT * FROM queue_job
WHERE identity_key = %(identity_key)s AND state IN ('pending', 'enqueued', 'wait_dependencies')
  AND (%(exclude_uuid)s::uuid IS NULL OR uuid <> %(exclude_uuid)s::uuid)
LIMIT 1;

-- name: load_job
SELECT * FROM queue_job WHERE uuid = %(uuid)s;

-- name: load_job_for_update
-- (batch) Rows a manual action is about to change, locked until the action commits
-- (in id order, so that two actions on the same jobs cannot deadlock).
SELECT * FROM queue_job WHERE uuid = ANY(%(uuid)s::uuid[]) ORDER BY id FOR UPDATE;

-- name: job_exists
SELECT 1 FROM queue_job WHERE uuid = %(uuid)s;

-- name: update_job
-- Write every mutable field of a job (JobStorage.store of an existing job).
UPDATE queue_job SET state = %(state)s, retry = %(retry)s, max_retries = %(max_retries)s,
    priority = %(priority)s, description = %(description)s, channel = %(channel)s,
    identity_key = %(identity_key)s, result = %(result)s, exc_info = %(exc_info)s,
    eta = %(eta)s, date_enqueued = %(date_enqueued)s, date_started = %(date_started)s,
    date_done = %(date_done)s, worker_id = %(worker_id)s, exc_name = %(exc_name)s,
    exc_message = %(exc_message)s, exec_time = %(exec_time)s::float8,
    date_cancelled = %(date_cancelled)s, worker_pid = %(worker_pid)s::int
WHERE uuid = %(uuid)s;

-- name: set_job_state
-- (batch) A manual action (requeue, set done, cancel) on jobs whose state was checked, as
-- the successor's: back to pending forgets the attempt (dates, process, cancellation);
-- done forgets the failure and counts the run time of a started job; cancelled says when.
UPDATE queue_job AS job SET state = change.state, result = change.result, retry = change.retry,
    exc_info = CASE WHEN change.state = 'done' THEN NULL ELSE job.exc_info END,
    exc_name = CASE WHEN change.state = 'done' THEN NULL ELSE job.exc_name END,
    date_enqueued = NULL,
    date_started = CASE WHEN change.state = 'pending' THEN NULL ELSE job.date_started END,
    date_done = CASE WHEN change.state IN ('done', 'cancelled') THEN now() ELSE NULL END,
    date_cancelled = CASE WHEN change.state = 'cancelled' THEN now() ELSE NULL END,
    exec_time = CASE WHEN change.state = 'done'
                     THEN extract(epoch FROM now() - job.date_started)::float8
                     WHEN change.state = 'pending' THEN NULL ELSE job.exec_time END,
    worker_pid = CASE WHEN change.state = 'pending' THEN NULL ELSE job.worker_pid END
FROM unnest(%(uuid)s::uuid[], %(state)s::text[], %(result)s::text[], %(retry)s::int[])
    AS change(uuid, state, result, retry)
WHERE job.uuid = change.uuid;

-- name: notify_jobs
-- Wake a worker: jobs became pending (requeued, rescued, released). Delivered at commit;
-- the payload names the worker that claims (core/wakeups.py).
SELECT pg_notify('queuejob', mod(txid_current(), 1000000000)::text);

-- name: queue_at_eta
-- A job just stored with an eta takes its eta as its place in line (the claims order
-- equal priorities by date_created): Django's tasks, whose earlier run_after runs
-- first. The caller keeps the creation time in the context it writes.
UPDATE queue_job SET date_created = eta, context = %(context)s
WHERE id = %(id)s AND eta IS NOT NULL;

-- name: edit_job
-- (batch) People change jobs that have not started: their priority, eta (a time, or
-- seconds from now by the server's clock; neither: due now) and channel; NULL keeps the
-- stored value. The rows are locked by load_job_for_update; the state is checked again.
UPDATE queue_job AS job SET priority = coalesce(change.priority, job.priority),
    eta = CASE WHEN change.set_eta
               THEN coalesce(change.eta, now() + make_interval(secs => change.eta_delay))
               ELSE job.eta END,
    channel = coalesce(change.channel, job.channel)
FROM unnest(%(uuid)s::uuid[], %(priority)s::int[], %(set_eta)s::boolean[],
            %(eta)s::timestamptz[], %(eta_delay)s::float8[], %(channel)s::text[])
    AS change(uuid, priority, set_eta, eta, eta_delay, channel)
WHERE job.uuid = change.uuid AND job.state IN ('pending', 'enqueued', 'wait_dependencies')
RETURNING job.uuid;

-- name: lock_claims
-- Claims are serialized, so that the running counts a claim reads stay true until it
-- commits and capacities hold across all workers. Claims are short and batched. The
-- claim's statements then read through indexes, as after claim_settings.
SELECT pg_advisory_xact_lock(1902466193), set_config('enable_bitmapscan', 'off', true);

-- name: claim_settings
-- Before a claim that takes no lock: its statements read through indexes, never through
-- a bitmap, until the transaction ends. Statistics taken while the queue was nearly empty
-- (until autovacuum analyzes it, up to a minute after a burst of delays) make the pending
-- and started jobs look like a handful; a bitmap then reads them all at each claim, with
-- every entry that finished jobs left in the indexes, where an index scan reads them in
-- order, stops at the claim's limit and marks the entries of finished jobs dead as it
-- passes them. (Only claims: under the same statistics a progress report's update by
-- uuid, across both partitions, was planned far worse without bitmaps.)
SELECT set_config('enable_bitmapscan', 'off', true);

-- name: claim_state
-- What a claim reads before choosing jobs, in one statement (one snapshot): the global
-- channel configuration, the running jobs per channel, and the channels holding pending
-- jobs (found by a skip scan of the pending index: one probe per channel, whatever the
-- number of pending jobs). When the claim lock is needed it is taken by the statement
-- before this one: a statement's snapshot is taken when it starts, so counts read in the
-- statement that takes the lock could be stale.
SELECT
    (SELECT coalesce(json_agg(json_build_object(
        'name', name, 'capacity', capacity, 'sequential', sequential, 'throttle', throttle,
        'removal_interval', removal_interval, 'paused', paused,
        'rate_limit', rate_limit, 'rate_period', rate_period, 'key_capacity', key_capacity,
        'fair', fair, 'fair_cursor', fair_cursor,
        'since_last_start', extract(epoch FROM now() - last_started)::float8)), '[]')
     FROM queue_channel) AS configs_json,
    (SELECT coalesce(json_object_agg(channel, running), '{}') FROM (
        SELECT channel, count(*) AS running FROM queue_job
        WHERE state = 'started' GROUP BY channel) AS counts) AS running_json,
    CASE WHEN %(want_channels)s THEN
    (WITH RECURSIVE pending(name) AS (
        SELECT min(channel) FROM queue_job WHERE state = 'pending'
        UNION ALL
        SELECT (SELECT min(channel) FROM queue_job
                WHERE state = 'pending' AND channel > pending.name)
        FROM pending WHERE pending.name IS NOT NULL)
     SELECT coalesce(json_agg(name), '[]') FROM pending WHERE name IS NOT NULL)
    END AS channels_json,
    (SELECT state FROM queue_worker WHERE id = %(worker_id)s) AS worker_state,
    coalesce((SELECT version FROM queue_config), 0) AS config_version,
    (SELECT coalesce(json_agg(json_build_object('id', id, 'channels', channels)), '[]')
     FROM queue_worker WHERE state = 'alive' AND channels <> '') AS declared_json,
    (SELECT coalesce(json_object_agg(name, retry_pattern), '{}') FROM queue_job_function
     WHERE retry_pattern IS NOT NULL) AS retry_patterns_json;

-- name: channel_configs
-- since_last_start: seconds since a throttled channel last started a job, by the server's clock.
SELECT *, extract(epoch FROM now() - last_started)::float8 AS since_last_start
FROM queue_channel;

-- name: failed_channels
WITH RECURSIVE failed(name) AS (
    SELECT min(channel) FROM queue_job WHERE state = 'failed'
    UNION ALL
    SELECT (SELECT min(channel) FROM queue_job WHERE state = 'failed' AND channel > failed.name)
    FROM failed WHERE failed.name IS NOT NULL
)
SELECT name FROM failed WHERE name IS NOT NULL;

-- name: channel_candidates
-- (batch) The first due jobs of each channel in start order, up to each channel's limit:
-- one index scan per channel (queue_job_pending), stopped at the limit.
SELECT job.id, job.channel, job.priority, job.date_created, job.concurrency_key,
       true AS due
FROM unnest(%(channel)s::text[], %(limit)s::int[]) AS wanted(channel, room)
CROSS JOIN LATERAL (
    SELECT id, channel, priority, date_created, concurrency_key FROM queue_job
    WHERE state = 'pending' AND channel = wanted.channel AND (eta IS NULL OR eta <= now())
    ORDER BY priority, date_created, id
    LIMIT wanted.room
    -- claims without the claim lock run side by side: each takes other rows
    FOR UPDATE SKIP LOCKED
) AS job;

-- name: claim_next
-- Take the first due jobs in start order, whatever their channel: the claim of a queue
-- whose channels have no rules of their own, in one statement, from one index. Workers
-- claim side by side: each takes rows the others have not locked. MATERIALIZED: the
-- planner may otherwise run the LIMIT subquery as a nested loop and take more rows.
-- Pending jobs live in queue_job_live, whose partial indexes are the claim's: the read
-- and the update name it. The update finds the picked rows by id alone, through
-- queue_job_live_id: they are locked, and pending in their newest version, which the
-- update reaches from the version the statement sees (a row another transaction updated
-- after the statement began). No check of the state: with one, a partial index on
-- pending jobs could serve the update, and statistics taken while the queue was nearly
-- empty make that index, read whole for the ids, look cheapest. With %(capacity)s,
-- root's capacity: as many jobs as root has room for, counting the started jobs of all
-- workers, in a claim that holds the claim lock (taken by the statement before this one,
-- so that the count is read after it). The count stops at the capacity and reads
-- queue_job_started in its order (lock_claims: no bitmap), an index scan that marks the
-- entries finished jobs left dead as it passes them. No tally to keep: no job finishes
-- here.
WITH picked AS MATERIALIZED (
    SELECT id FROM queue_job_live
    WHERE state = 'pending' AND (eta IS NULL OR eta <= now())
      AND coalesce((SELECT version FROM queue_config), 0) = %(config_version)s
    ORDER BY priority, date_created, id
    LIMIT CASE WHEN %(capacity)s::int IS NULL THEN %(limit)s
               ELSE greatest(0, least(%(limit)s, %(capacity)s::int - (
                   SELECT count(*) FROM (SELECT FROM queue_job_live WHERE state = 'started'
                                         ORDER BY worker_id, channel
                                         LIMIT %(capacity)s::int) AS running))) END
    FOR UPDATE SKIP LOCKED
)
UPDATE queue_job_live AS job SET state = 'started', worker_id = %(worker_id)s,
    worker_pid = %(worker_pid)s, attempt = job.attempt + 1, date_enqueued = now(),
    date_started = now(), date_done = NULL
WHERE job.id = ANY(ARRAY(SELECT id FROM picked))
RETURNING job.*;

-- name: channel_head
-- (batch) The first job of each channel in start order, due or not (sequential channels,
-- always claimed under the claim lock: no row may be skipped).
SELECT job.id, job.channel, job.priority, job.date_created, job.concurrency_key,
    (job.eta IS NULL OR job.eta <= now()) AS due
FROM unnest(%(channel)s::text[]) AS wanted(channel)
CROSS JOIN LATERAL (
    SELECT id, channel, priority, date_created, eta, concurrency_key FROM queue_job
    WHERE state = 'pending' AND channel = wanted.channel
    ORDER BY priority, date_created, id
    LIMIT 1
) AS job;

-- name: start_jobs
-- Take the chosen jobs (%(ids)s, an array), in one statement, by queue_job_live_id. The
-- state check skips a job that a manual action moved since the read (manual actions do
-- not take the claim lock, and some candidate reads lock no row); it compares with a
-- value the planner does not see, so that no partial index on pending jobs serves the
-- update (see claim_next). No tally to keep: no job finishes here.
UPDATE queue_job_live SET state = 'started', worker_id = %(worker_id)s,
    worker_pid = %(worker_pid)s, attempt = attempt + 1, date_enqueued = now(),
    date_started = now(), date_done = NULL
WHERE id = ANY(%(ids)s::bigint[]) AND state = (SELECT 'pending')
RETURNING *;

-- name: touch_throttle
-- (batch)
INSERT INTO queue_channel (name, last_started)
SELECT name, now() FROM unnest(%(name)s::text[]) AS throttled(name)
ON CONFLICT (name) DO UPDATE SET last_started = excluded.last_started;

-- name: finish_job
-- (batch) Record the outcomes of attempts: done, failed or cancelled. Fenced: only the
-- attempt that is still started writes; a late write of a rescued attempt changes nothing.
-- Callers of db.wait() waiting for one of these jobs are told (at commit, once).
WITH finished AS (
UPDATE queue_job AS job SET state = outcome.state, retry = outcome.retry,
    result = outcome.result, exc_info = outcome.exc_info, exc_name = outcome.exc_name,
    exc_message = outcome.exc_message,
    date_done = CASE WHEN outcome.state IN ('done', 'cancelled') THEN now() ELSE NULL END,
    date_failed = CASE WHEN outcome.state = 'failed' THEN now() ELSE job.date_failed END,
    date_cancelled = CASE WHEN outcome.state = 'cancelled' THEN now() ELSE NULL END,
    exec_time = CASE WHEN outcome.state = 'done'
                     THEN extract(epoch FROM now() - job.date_started)::float8 END
FROM unnest(%(uuid)s::uuid[], %(attempt)s::int[], %(state)s::text[], %(retry)s::int[],
            %(result)s::text[], %(exc_info)s::text[], %(exc_name)s::text[],
            %(exc_message)s::text[])
    AS outcome(uuid, attempt, state, retry, result, exc_info, exc_name, exc_message)
WHERE job.uuid = outcome.uuid AND job.attempt = outcome.attempt AND job.state = 'started'
RETURNING job.uuid
)
SELECT finished.uuid FROM finished
UNION ALL
SELECT NULL FROM (SELECT pg_notify('queuejob_done', '') FROM queue_job_waiter
                  WHERE uuid IN (SELECT uuid FROM finished) LIMIT 1) AS told;

-- name: notify_outcomes
-- Jobs ended outside a worker's batch (a manual action, a dead worker's job failed).
SELECT pg_notify('queuejob_done', '');

-- name: fail_bad_job
-- A job whose stored row cannot be run, or whose outcome cannot be written at all, ends
-- failed with the reason; by its row id, the one value of a row that is always usable
-- (fenced on its state, and on the attempt when one is given).
UPDATE queue_job SET state = 'failed', exc_info = %(reason)s, date_failed = now(),
    date_done = NULL, exc_name = 'queuejob.JobCannotRun', exc_message = %(reason)s
WHERE id = %(id)s AND state = %(state)s
  AND (%(attempt)s::int IS NULL OR attempt = %(attempt)s::int)
RETURNING id;

-- name: fail_channel_jobs
-- Pending jobs stored in a channel whose name is not a channel name (written by hand)
-- end failed; the name comes as bytes, as from SQLite.
UPDATE queue_job SET state = 'failed', exc_info = %(reason)s, date_failed = now(),
    exc_name = 'queuejob.JobCannotRun', exc_message = %(reason)s
WHERE state = 'pending' AND channel = convert_from(%(raw)s::bytea, 'UTF8')
RETURNING id;

-- name: retry_job
-- (batch) Retried attempts go back to pending with their eta (fenced like finish_job).
UPDATE queue_job AS job SET state = 'pending', retry = outcome.retry,
    result = outcome.result, exc_info = NULL, exc_name = NULL, exc_message = NULL,
    eta = now() + make_interval(secs => outcome.eta_delay),
    date_enqueued = NULL, date_started = NULL, worker_pid = NULL
FROM unnest(%(uuid)s::uuid[], %(attempt)s::int[], %(retry)s::int[], %(result)s::text[],
            %(eta_delay)s::float8[]) AS outcome(uuid, attempt, retry, result, eta_delay)
WHERE job.uuid = outcome.uuid AND job.attempt = outcome.attempt AND job.state = 'started'
RETURNING job.uuid;

-- name: release_job
-- (batch) Shutdown: attempts that did not finish in the grace period go back to pending,
-- their retry unchanged (fenced).
UPDATE queue_job AS job SET state = 'pending', date_enqueued = NULL, date_started = NULL,
    worker_pid = NULL
FROM unnest(%(uuid)s::uuid[], %(attempt)s::int[]) AS outcome(uuid, attempt)
WHERE job.uuid = outcome.uuid AND job.attempt = outcome.attempt AND job.state = 'started'
RETURNING job.uuid;

-- name: identity_holder
-- The pending or enqueued job that holds the identity key of a started attempt, if
-- another one does: that attempt cannot go back to pending.
SELECT other.uuid FROM queue_job AS job
JOIN queue_job AS other ON other.identity_key = job.identity_key
    AND other.state IN ('pending', 'enqueued', 'wait_dependencies') AND other.uuid <> job.uuid
WHERE job.uuid = %(uuid)s AND job.identity_key IS NOT NULL
LIMIT 1;

-- name: started_by_worker
SELECT id, uuid, attempt, retry, identity_key FROM queue_job
WHERE state = 'started' AND worker_id = %(worker_id)s;

-- name: orphaned_jobs
-- Started jobs whose worker is not alive (dead, stopped or unknown).
SELECT job.id, job.uuid, job.attempt, job.retry, job.max_retries, job.worker_deaths,
       job.worker_id
FROM queue_job AS job
WHERE job.state = 'started' AND job.worker_id IS DISTINCT FROM %(rescuer)s
  AND NOT EXISTS (SELECT 1 FROM queue_worker AS worker
                  WHERE worker.id = job.worker_id AND worker.state = 'alive');

-- name: requeue_enqueued
-- Jobs found enqueued (a state queuejob never gives: stored by hand, or through
-- JobStorage.store after set_enqueued) would never run: back to pending.
UPDATE queue_job SET state = 'pending', date_enqueued = NULL
WHERE state = 'enqueued'
RETURNING uuid;

-- name: rescue_job
-- Put a dead worker's attempt back to pending, counting it as a retry. Fenced on the
-- attempt, so that rescuers racing each other count it once.
UPDATE queue_job SET state = 'pending', retry = retry + 1, worker_deaths = worker_deaths + 1,
    date_enqueued = NULL, date_started = NULL, worker_pid = NULL
WHERE uuid = %(uuid)s AND attempt = %(attempt)s AND state = 'started'
RETURNING uuid;

-- name: fail_dead_job
UPDATE queue_job SET state = 'failed', retry = retry + 1, worker_deaths = worker_deaths + 1,
    exc_info = %(exc_info)s, exc_name = 'queuejob.WorkerDied', exc_message = %(exc_info)s,
    date_failed = now()
WHERE uuid = %(uuid)s AND attempt = %(attempt)s AND state = 'started'
RETURNING uuid;

-- name: register_worker
INSERT INTO queue_worker (id, hostname, pid, channels, concurrency, state, date_started,
                          heartbeat, supervisor_pid, listener, job_connections, process_space)
VALUES (%(id)s, %(hostname)s, %(pid)s, %(channels)s, %(concurrency)s, 'alive', now(), now(),
        %(supervisor_pid)s, %(listener)s, %(job_connections)s, %(process_space)s)
ON CONFLICT (id) DO NOTHING;

-- name: set_worker_listener
-- How the worker is woken changed (LISTEN did not hold, its supervisor gave up): 'none'.
UPDATE queue_worker SET listener = %(listener)s WHERE id = %(id)s;

-- name: worker_look
-- With each heartbeat: the worker's rank among the live workers that take jobs (which
-- notifications wake it), and whether the services have anything to look at.
SELECT count(*) FILTER (WHERE id < %(id)s) AS rank, count(*) AS workers,
    EXISTS (SELECT 1 FROM queue_run_schedule) AS schedules,
    EXISTS (SELECT 1 FROM queue_batch WHERE state = 'open') AS open_batches
FROM queue_worker
WHERE state = 'alive' AND coalesce(concurrency, 1) > 0
  AND heartbeat > now() - make_interval(secs => %(dead_after)s::float8);

-- name: wake_worker
-- A notification for one worker (passed on, or after a full claim): at commit.
SELECT pg_notify('queuejob', %(payload)s);

-- name: declared_channels
-- The channel rules live workers declare (their --channels), for all workers.
SELECT id, channels FROM queue_worker WHERE state = 'alive' AND channels <> '';

-- name: heartbeat
UPDATE queue_worker SET heartbeat = now(), state = 'alive'
WHERE id = %(id)s AND state <> 'stopped'
RETURNING id;

-- name: stop_worker
UPDATE queue_worker SET state = 'stopped', date_stopped = now() WHERE id = %(id)s;

-- name: mark_dead_workers
-- Workers whose heartbeat is older than %(dead_after)s seconds by the server's clock.
UPDATE queue_worker SET state = 'dead'
WHERE state = 'alive' AND id <> %(rescuer)s AND heartbeat < now() - make_interval(secs => %(dead_after)s::float8)
RETURNING id, hostname, pid;

-- name: workers_in_space
-- Live workers whose pid means something in the process space of the rescuer (its host,
-- its pid namespace): it can tell whether their processes still exist.
SELECT id, pid FROM queue_worker
WHERE state = 'alive' AND process_space = %(space)s AND id <> %(rescuer)s;

-- name: mark_gone_worker
-- A worker of the rescuer's process space whose process no longer exists: dead at once
-- (fenced on the space and the pid that were found gone).
UPDATE queue_worker SET state = 'dead'
WHERE id = %(id)s AND state = 'alive' AND process_space = %(space)s AND pid = %(pid)s
RETURNING id, hostname, pid;

-- name: list_workers
SELECT worker.*, extract(epoch FROM now() - worker.heartbeat)::float8 AS heartbeat_age,
    (SELECT count(*) FROM queue_job AS job
     WHERE job.state = 'started' AND job.worker_id = worker.id) AS running
FROM queue_worker AS worker
ORDER BY worker.state = 'alive' DESC, worker.heartbeat DESC
LIMIT %(limit)s;

-- name: remove_old_workers
-- Rows of workers stopped or dead long ago (the cleanup prunes them).
DELETE FROM queue_worker
WHERE state <> 'alive' AND heartbeat < now() - make_interval(secs => %(older_than)s::float8)
RETURNING id;

-- name: set_channel
INSERT INTO queue_channel (name, capacity, sequential, throttle, removal_interval, paused,
                           rate_limit, rate_period, key_capacity, fair, date_updated)
VALUES (%(name)s, %(capacity)s, %(sequential)s, %(throttle)s, %(removal_interval)s, %(paused)s,
        %(rate_limit)s, %(rate_period)s, %(key_capacity)s, %(fair)s, now())
ON CONFLICT (name) DO UPDATE SET capacity = excluded.capacity,
    sequential = excluded.sequential, throttle = excluded.throttle,
    removal_interval = excluded.removal_interval, paused = excluded.paused,
    rate_limit = excluded.rate_limit, rate_period = excluded.rate_period,
    key_capacity = excluded.key_capacity, fair = excluded.fair,
    date_updated = excluded.date_updated;

-- name: delete_channel
DELETE FROM queue_channel WHERE name = %(name)s;

-- name: count_jobs
-- Jobs per channel and state (statistics): the unfinished ones from the live partition,
-- the done and cancelled ones from their tally.
SELECT channel, state, count(*) AS jobs FROM queue_job
WHERE state NOT IN ('done', 'cancelled') GROUP BY channel, state
UNION ALL
SELECT channel, state, sum(jobs)::bigint FROM queue_job_tally
GROUP BY channel, state HAVING sum(jobs) <> 0
ORDER BY 1, 2;

-- name: compact_tally
-- Each channel and state's deltas summed into one row (rows added meanwhile by
-- transactions this one does not see stay, for the next time).
WITH gone AS (DELETE FROM queue_job_tally RETURNING *)
INSERT INTO queue_job_tally (channel, state, jobs, attempts, failed)
SELECT channel, state, sum(jobs), sum(attempts), sum(failed) FROM gone
GROUP BY channel, state HAVING sum(jobs) <> 0 OR sum(attempts) <> 0 OR sum(failed) <> 0;

-- name: compact_minutes
-- The fresh deltas of each key merged with the key's rows; the minutes older than
-- %(keep)s minutes (no window reads them) removed.
WITH keys AS (
    SELECT DISTINCT minute, func_name, duration, latency FROM queue_job_minute WHERE fresh
), gone AS (
    DELETE FROM queue_job_minute AS row USING keys
    WHERE (row.minute, row.func_name, row.duration, row.latency)
        = (keys.minute, keys.func_name, keys.duration, keys.latency)
    RETURNING row.*
), merged AS (
    INSERT INTO queue_job_minute (minute, func_name, duration, latency, jobs,
                                  duration_seconds, latency_seconds, fresh)
    SELECT minute, func_name, duration, latency, sum(jobs), sum(duration_seconds),
           sum(latency_seconds), false
    FROM gone
    WHERE minute >= floor(extract(epoch FROM now()) / 60)::bigint - %(keep)s
    GROUP BY minute, func_name, duration, latency HAVING sum(jobs) <> 0
    RETURNING 1
), old AS (
    DELETE FROM queue_job_minute
    WHERE minute < floor(extract(epoch FROM now()) / 60)::bigint - %(keep)s RETURNING 1
)
SELECT (SELECT count(*) FROM gone) AS merged, (SELECT count(*) FROM old) AS removed;

-- name: removable_jobs
-- Done and cancelled jobs finished more than %(older_than)s seconds ago, oldest first, with
-- their age (their channel's removal interval is checked by the caller).
-- Read in (date_done, id) order from where the previous batch stopped.
SELECT id, channel, date_done, extract(epoch FROM now() - date_done)::float8 AS age
FROM queue_job
WHERE state IN ('done', 'cancelled')
  AND date_done < now() - make_interval(secs => %(older_than)s::float8)
  AND (%(after_done)s::timestamptz IS NULL
       OR (date_done, id) > (%(after_done)s::timestamptz, %(after_id)s::bigint))
ORDER BY date_done, id
LIMIT %(limit)s;

-- name: delete_job
-- (batch) (a trigger removes their log lines and batch memberships)
DELETE FROM queue_job WHERE id = ANY(%(id)s::bigint[]) AND state IN ('done', 'cancelled');

-- name: lock_legacy_history
-- Movers hold this lock shared for their transaction; the one that drops the emptied
-- table takes it alone, so that no mover finds the table gone between two statements.
SELECT pg_advisory_xact_lock_shared(1902466194);

-- name: legacy_history
-- Finished jobs of a table from before the history partition (migration 0017) still to
-- move: NULL when there is no such table any more, else the planner's estimate.
SELECT CASE WHEN to_regclass('queue_job_legacy') IS NULL THEN NULL
            ELSE (SELECT greatest(reltuples, 0)::bigint FROM pg_class
                  WHERE oid = to_regclass('queue_job_legacy')) END AS remaining;

-- name: move_legacy_history
-- Up to %(limit)s of them into the history partition, newest first; side by side with
-- other movers (each takes rows the others have not locked).
WITH picked AS (
    SELECT id FROM queue_job_legacy ORDER BY id DESC LIMIT %(limit)s FOR UPDATE SKIP LOCKED
), moved AS (
    DELETE FROM queue_job_legacy WHERE id IN (SELECT id FROM picked) RETURNING *
), stored AS (
    INSERT INTO queue_job SELECT * FROM moved RETURNING 1
)
SELECT count(*) AS moved FROM stored;

-- name: drop_legacy_history
-- The emptied table goes when no other mover is at work (the lock, without waiting).
SELECT pg_try_advisory_xact_lock(1902466194) AND NOT EXISTS (SELECT 1 FROM queue_job_legacy)
    AS empty;

-- name: drop_legacy_table
DROP TABLE IF EXISTS queue_job_legacy;

-- name: create_migration_table
CREATE TABLE IF NOT EXISTS queuejob_migration (
    version     integer     PRIMARY KEY,
    name        text        NOT NULL,
    applied_at  timestamptz NOT NULL
);

-- name: lock_migrations
-- Processes opening an empty database at once apply each migration once: the first
-- takes this lock, the others wait and then find the migrations applied.
SELECT pg_advisory_xact_lock(1902466194);

-- name: applied_migrations
SELECT version FROM queuejob_migration ORDER BY version;

-- name: record_migration
INSERT INTO queuejob_migration (version, name, applied_at) VALUES (%(version)s, %(name)s, now());

-- name: savepoint
SAVEPOINT queuejob;

-- name: rollback_to_savepoint
ROLLBACK TO SAVEPOINT queuejob;

-- name: release_savepoint
RELEASE SAVEPOINT queuejob;

-- name: function_settings
-- The stored settings of one job function (to merge a change into).
SELECT * FROM queue_job_function WHERE name = %(name)s;

-- name: function_overrides
SELECT * FROM queue_job_function ORDER BY name;

-- name: set_function
-- A job function's settings people set (each NULL: the decorator's); the caller merges
-- them with the stored ones, so that setting one keeps the others.
INSERT INTO queue_job_function (name, channel, retry_pattern, related_action, date_updated)
VALUES (%(name)s, %(channel)s, %(retry_pattern)s, %(related_action)s, now())
ON CONFLICT (name) DO UPDATE SET channel = excluded.channel,
    retry_pattern = excluded.retry_pattern, related_action = excluded.related_action,
    date_updated = excluded.date_updated;

-- name: delete_function
DELETE FROM queue_job_function WHERE name = %(name)s;

-- name: insert_dependency
-- (batch) Edges of a job graph: the child waits for the parent.
INSERT INTO queue_job_dependency (parent_uuid, child_uuid)
SELECT * FROM unnest(%(parent)s::uuid[], %(child)s::uuid[])
ON CONFLICT DO NOTHING;

-- name: mark_has_dependents
-- (batch) Jobs whose completion releases children.
UPDATE queue_job SET has_dependents = true WHERE uuid = ANY(%(uuid)s::uuid[]);

-- name: waiting_children
-- (batch) Children of jobs that wait for their parents, locked: two parents ending at
-- once in two transactions are serialized on their child, and the second one to lock
-- it sees the first one's parent done (in the next statement's snapshot).
SELECT job.uuid FROM queue_job AS job
WHERE job.uuid IN (SELECT child_uuid FROM queue_job_dependency
                   WHERE parent_uuid = ANY(%(uuid)s::uuid[]))
  AND job.state = 'wait_dependencies'
ORDER BY job.id
FOR UPDATE;

-- name: release_children
-- (batch) Waiting children whose parents are all done become pending.
UPDATE queue_job AS job SET state = 'pending'
WHERE job.uuid = ANY(%(uuid)s::uuid[]) AND job.state = 'wait_dependencies'
  AND NOT EXISTS (SELECT 1 FROM queue_job_dependency AS dep
                  JOIN queue_job AS parent ON parent.uuid = dep.parent_uuid
                  WHERE dep.child_uuid = job.uuid AND parent.state <> 'done')
RETURNING job.uuid;

-- name: cancel_waiting_children
-- (batch) The waiting children of cancelled jobs whose parents are all cancelled are
-- cancelled too (a child with a parent still alive waits for it); the caller repeats
-- with those children, down the graph.
UPDATE queue_job AS job SET state = 'cancelled', date_done = now(), date_cancelled = now(),
    result = 'Cancelled: every job it waited for was cancelled'
WHERE job.uuid IN (SELECT child_uuid FROM queue_job_dependency
                   WHERE parent_uuid = ANY(%(uuid)s::uuid[]))
  AND job.state = 'wait_dependencies'
  AND NOT EXISTS (SELECT 1 FROM queue_job_dependency AS dep
                  JOIN queue_job AS parent ON parent.uuid = dep.parent_uuid
                  WHERE dep.child_uuid = job.uuid AND parent.state <> 'cancelled')
RETURNING job.uuid;

-- name: database_now
SELECT now() AS now;

-- name: schedule_state
SELECT last_slot FROM queue_schedule WHERE name = %(name)s;

-- name: start_schedule
-- The first worker that sees a schedule records its current slot: it starts from the next.
INSERT INTO queue_schedule (name, last_slot, date_updated) VALUES (%(name)s, %(slot)s, now())
ON CONFLICT (name) DO NOTHING;

-- name: advance_schedule
-- Compare-and-set: of the workers that saw the same last slot, one moves it, and only
-- that one delays the slot's job (in the same transaction; the others wait on the row,
-- then find it moved).
UPDATE queue_schedule SET last_slot = %(slot)s, date_updated = now()
WHERE name = %(name)s AND last_slot = %(last)s
RETURNING name;

-- name: schedule_states
SELECT * FROM queue_schedule ORDER BY name;

-- name: add_waiter
INSERT INTO queue_job_waiter (uuid, date_created) VALUES (%(uuid)s, now());

-- name: remove_waiter
DELETE FROM queue_job_waiter WHERE ctid IN (
    SELECT ctid FROM queue_job_waiter WHERE uuid = %(uuid)s LIMIT 1);

-- name: bump_config
-- The channel or job function configuration changed: claims without a look at it stop.
-- An upsert: a table emptied by hand (a TRUNCATE of every queue table) counts as version 0.
INSERT INTO queue_config (id, version) VALUES (1, 1)
ON CONFLICT (id) DO UPDATE SET version = queue_config.version + 1;

-- name: copy_jobs
-- Many new jobs without identity keys, streamed (delay_many): the fastest way in. Into the
-- partition of unfinished jobs, as insert_job: no routing of each row, and no transition
-- table of new jobs for the tallies' trigger, which counts finished jobs only. In binary:
-- nothing for the server to parse (the columns' types are read from the table).
COPY queue_job_live (uuid, state, func_name, model_name, args, kwargs, description, channel,
                priority, max_retries, user_id, context, eta, timeout, graph_uuid,
                has_dependents, date_created, concurrency_key, trace_context)
FROM STDIN (FORMAT BINARY);

-- name: copy_defaults
-- What a streamed insert of new jobs (copy_jobs) resolves itself, in one round trip: the
-- database's time (their creation date, and their eta when given as a delay) and the
-- channel people set for each job function (rows of name and channel; one row of NULLs
-- when none is set).
SELECT now() AS now, f.name, f.channel
FROM (SELECT 1) AS one LEFT JOIN queue_job_function AS f ON f.channel IS NOT NULL;

-- name: list_subscriptions
SELECT * FROM queue_subscription ORDER BY id;

-- name: add_subscription
INSERT INTO queue_subscription (channel, func_name, target_kind, target, date_created)
VALUES (%(channel)s, %(func_name)s, %(target_kind)s, %(target)s, now())
RETURNING id;

-- name: delete_subscription
DELETE FROM queue_subscription WHERE id = %(id)s RETURNING id;

-- name: count_purgeable
-- Finished jobs a purge would remove (queuejob purge): done or cancelled (or the one
-- state given), finished more than older_than seconds ago, of a channel and its
-- subchannels, of a function.
SELECT count(*) AS jobs FROM queue_job
WHERE state IN ('done', 'cancelled') AND (%(state)s::text IS NULL OR state = %(state)s)
  AND date_done < now() - make_interval(secs => %(older_than)s::float8)
  AND (%(channel)s::text IS NULL OR channel = %(channel)s
       OR left(channel, length(%(channel)s) + 1) = %(channel)s || '.')
  AND (%(func_name)s::text IS NULL OR func_name = %(func_name)s);

-- name: purgeable_jobs
-- The next of them in id order, from after_id on.
SELECT id FROM queue_job
WHERE state IN ('done', 'cancelled') AND (%(state)s::text IS NULL OR state = %(state)s)
  AND date_done < now() - make_interval(secs => %(older_than)s::float8)
  AND (%(channel)s::text IS NULL OR channel = %(channel)s
       OR left(channel, length(%(channel)s) + 1) = %(channel)s || '.')
  AND (%(func_name)s::text IS NULL OR func_name = %(func_name)s)
  AND id > %(after_id)s
ORDER BY id
LIMIT %(limit)s;
