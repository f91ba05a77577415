-- Named queries of the SQLite dialect. Same names and parameters as postgres/queries.sql.
-- Parameters are :name; :now is supplied by the connector (seconds since the epoch).
-- Every writing transaction is opened with BEGIN IMMEDIATE by the connector: with one
-- writer at a time, a claim's reads and its updates see one consistent state.
-- Queries that PostgreSQL runs as one statement for a batch (marked "(batch)" there)
-- are run here once per row, in process: a statement costs microseconds, not a round trip.

-- name: insert_job
-- Store one job. Returns its uuid, or no row when a pending or enqueued job holds
-- the same identity key (the partial unique index decides, not a prior read).
INSERT INTO queue_job (uuid, state, func_name, model_name, args, kwargs, description, channel,
                       priority, max_retries, identity_key, user_id, context, eta, timeout,
                       graph_uuid, has_dependents, date_created, concurrency_key, trace_context)
VALUES (:uuid, :state, :func_name, :model_name, :args, :kwargs, :description,
        -- the channel given to delay(), else the one people set for the function, else
        -- the decorator's
        COALESCE(:channel,
                 (SELECT channel FROM queue_job_function WHERE name = :func_name),
                 :default_channel),
        :priority, :max_retries, :identity_key, :user_id, :context,
        COALESCE(:eta, :now + :eta_delay), :timeout, :graph_uuid, :has_dependents, :now,
        :concurrency_key, :trace_context)
ON CONFLICT (identity_key) WHERE identity_key IS NOT NULL AND state IN ('pending', 'enqueued', 'wait_dependencies')
DO NOTHING
RETURNING uuid;

-- name: insert_jobs
-- (batch) Store jobs: the same statement as insert_job, run for each job.
INSERT INTO queue_job (uuid, state, func_name, model_name, args, kwargs, description, channel,
                       priority, max_retries, identity_key, user_id, context, eta, timeout,
                       graph_uuid, has_dependents, date_created, concurrency_key, trace_context)
VALUES (:uuid, :state, :func_name, :model_name, :args, :kwargs, :description,
        -- the channel given to delay(), else the one people set for the function, else
        -- the decorator's
        COALESCE(:channel,
                 (SELECT channel FROM queue_job_function WHERE name = :func_name),
                 :default_channel),
        :priority, :max_retries, :identity_key, :user_id, :context,
        COALESCE(:eta, :now + :eta_delay), :timeout, :graph_uuid, :has_dependents, :now,
        :concurrency_key, :trace_context)
ON CONFLICT (identity_key) WHERE identity_key IS NOT NULL AND state IN ('pending', 'enqueued', 'wait_dependencies')
DO NOTHING
RETURNING uuid;

-- name: job_by_identity_key
SELECT * FROM queue_job
WHERE identity_key = :identity_key AND state IN ('pending', 'enqueued', 'wait_dependencies')
  AND (:exclude_uuid IS NULL OR uuid <> :exclude_uuid)
LIMIT 1;

-- name: load_job
SELECT * FROM queue_job WHERE uuid = :uuid;

-- name: load_job_for_update
-- A row a manual action is about to change (the write lock is already held).
SELECT * FROM queue_job WHERE uuid = :uuid;

-- name: job_exists
SELECT 1 FROM queue_job WHERE uuid = :uuid;

-- name: update_job
-- Write every mutable field of a job (JobStorage.store of an existing job).
UPDATE queue_job SET state = :state, retry = :retry, max_retries = :max_retries,
    priority = :priority, description = :description, channel = :channel,
    identity_key = :identity_key, result = :result, exc_info = :exc_info, eta = :eta,
    date_enqueued = :date_enqueued, date_started = :date_started, date_done = :date_done,
    worker_id = :worker_id, exc_name = :exc_name, exc_message = :exc_message,
    exec_time = :exec_time, date_cancelled = :date_cancelled, worker_pid = :worker_pid
WHERE uuid = :uuid;

-- name: set_job_state
-- A manual action (requeue, set done, cancel) on a job whose state was checked, as the
-- successor's: back to pending forgets the attempt (dates, process, cancellation); done
-- forgets the failure and counts the run time of a started job; cancelled says when.
UPDATE queue_job SET state = :state, result = :result, retry = :retry,
    exc_info = CASE WHEN :state = 'done' THEN NULL ELSE exc_info END,
    exc_name = CASE WHEN :state = 'done' THEN NULL ELSE exc_name END,
    date_enqueued = NULL,
    date_started = CASE WHEN :state = 'pending' THEN NULL ELSE date_started END,
    date_done = CASE WHEN :state IN ('done', 'cancelled') THEN :now ELSE NULL END,
    date_cancelled = CASE WHEN :state = 'cancelled' THEN :now ELSE NULL END,
    exec_time = CASE WHEN :state = 'done' THEN :now - date_started
                     WHEN :state = 'pending' THEN NULL ELSE exec_time END,
    worker_pid = CASE WHEN :state = 'pending' THEN NULL ELSE worker_pid END
WHERE uuid = :uuid;

-- name: queue_at_eta
-- A job just stored with an eta takes its eta as its place in line (the claims order
-- equal priorities by date_created): Django's tasks, whose earlier run_after runs
-- first. The caller keeps the creation time in the context it writes.
UPDATE queue_job SET date_created = eta, context = :context
WHERE id = :id AND eta IS NOT NULL;

-- name: edit_job
-- People change a job that has not started: its priority, eta (a time, or seconds from
-- now by the database's clock; neither: due now) and channel; NULL keeps the stored
-- value. The state is checked by the caller under the write lock.
UPDATE queue_job SET priority = coalesce(:priority, priority),
    eta = CASE WHEN :set_eta THEN coalesce(:eta, :now + :eta_delay) ELSE eta END,
    channel = coalesce(:channel, channel)
WHERE uuid = :uuid AND state IN ('pending', 'enqueued', 'wait_dependencies')
RETURNING uuid;

-- name: lock_claims
-- Claims are serialized so that capacities hold across workers; BEGIN IMMEDIATE
-- already gives this transaction the only write lock.
SELECT 1;

-- name: claim_settings
-- Before a claim that takes no lock (PostgreSQL sets its planner there): nothing here.
SELECT 1;

-- name: claim_state
-- What a claim reads before choosing jobs, in one statement: the global channel
-- configuration, the running jobs per channel, and the channels holding pending jobs
-- (found by a skip scan of the pending index: one probe per channel, whatever the
-- number of pending jobs).
-- SQLite stores any value in any column, and its JSON functions refuse BLOBs and write
-- infinities as Inf, which is not JSON: every value goes into the JSON as a finite
-- number, NULL or text (CAST), so that one bad row cannot fail the claim; the worker
-- checks each value and skips the rows that do not make sense.
SELECT
    (SELECT json_group_array(json_object(
        'name', CAST(name AS TEXT),
        'capacity', iif(typeof(capacity) = 'integer', capacity, CAST(capacity AS TEXT)),
        'sequential', iif(typeof(sequential) = 'integer', sequential,
                          CAST(sequential AS TEXT)),
        'throttle', iif(typeof(throttle) = 'integer' OR (typeof(throttle) = 'real'
                        AND abs(throttle) <= 1e308), throttle, CAST(throttle AS TEXT)),
        'removal_interval', iif(typeof(removal_interval) = 'integer'
                                OR (typeof(removal_interval) = 'real'
                                    AND abs(removal_interval) <= 1e308),
                                removal_interval, CAST(removal_interval AS TEXT)),
        'paused', iif(typeof(paused) = 'integer', paused, CAST(paused AS TEXT)),
        'rate_limit', iif(typeof(rate_limit) = 'integer', rate_limit,
                          CAST(rate_limit AS TEXT)),
        'rate_period', iif(typeof(rate_period) = 'integer' OR (typeof(rate_period) = 'real'
                           AND abs(rate_period) <= 1e308), rate_period,
                           CAST(rate_period AS TEXT)),
        'key_capacity', iif(typeof(key_capacity) = 'integer', key_capacity,
                            CAST(key_capacity AS TEXT)),
        'fair', iif(typeof(fair) = 'integer', fair, CAST(fair AS TEXT)),
        'fair_cursor', CAST(fair_cursor AS TEXT),
        'since_last_start', iif(typeof(last_started) IN ('integer', 'real')
                                AND abs(:now - last_started) <= 1e308,
                                :now - last_started, NULL)))
     FROM queue_channel) AS configs_json,
    (SELECT json_group_object(channel, running) FROM (
        SELECT CAST(channel AS TEXT) AS channel, count(*) AS running FROM queue_job
        WHERE state = 'started' GROUP BY channel)) AS running_json,
    CASE WHEN :want_channels THEN
    (WITH RECURSIVE pending(name) AS (
        SELECT min(channel) FROM queue_job WHERE state = 'pending'
        UNION ALL
        SELECT (SELECT min(channel) FROM queue_job
                WHERE state = 'pending' AND channel > pending.name)
        FROM pending WHERE pending.name IS NOT NULL)
     SELECT json_group_array(CAST(name AS TEXT)) FROM pending WHERE name IS NOT NULL)
    END AS channels_json,
    (SELECT state FROM queue_worker WHERE id = :worker_id) AS worker_state,
    coalesce((SELECT version FROM queue_config), 0) AS config_version,
    (SELECT json_group_array(json_object('id', CAST(id AS TEXT),
                                         'channels', CAST(channels AS TEXT)))
     FROM queue_worker WHERE state = 'alive' AND channels <> '') AS declared_json,
    -- (a NULL key would make json_group_object write invalid JSON)
    (SELECT json_group_object(CAST(name AS TEXT), CAST(retry_pattern AS TEXT))
     FROM queue_job_function WHERE retry_pattern IS NOT NULL AND name IS NOT NULL
    ) AS retry_patterns_json;

-- name: channel_configs
-- since_last_start: seconds since a throttled channel last started a job, by the database's clock.
SELECT *, :now - last_started AS since_last_start FROM queue_channel;

-- name: failed_channels
WITH RECURSIVE failed(name) AS (
    SELECT min(channel) FROM queue_job WHERE state = 'failed'
    UNION ALL
    SELECT (SELECT min(channel) FROM queue_job WHERE state = 'failed' AND channel > failed.name)
    FROM failed WHERE failed.name IS NOT NULL
)
SELECT CAST(name AS TEXT) AS name FROM failed WHERE name IS NOT NULL;

-- name: channel_candidates
-- The first due jobs of one channel in start order.
SELECT id, channel, priority, date_created, concurrency_key, 1 AS due
FROM queue_job INDEXED BY queue_job_pending
WHERE state = 'pending' AND channel = :channel AND (eta IS NULL OR eta <= :now)
ORDER BY priority, date_created, id
LIMIT :limit;

-- name: claim_next
-- Take the first due jobs in start order, whatever their channel: the claim of a queue
-- whose channels have no rules of their own, in one statement, from one index. With
-- :capacity, root's capacity: as many jobs as root has room for, counting the started
-- jobs of all workers (the write lock held: BEGIN IMMEDIATE).
UPDATE queue_job SET state = 'started', worker_id = :worker_id, worker_pid = :worker_pid,
    attempt = attempt + 1, date_enqueued = :now, date_started = :now, date_done = NULL
WHERE id IN (SELECT id FROM queue_job INDEXED BY queue_job_next
             WHERE state = 'pending' AND (eta IS NULL OR eta <= :now)
               AND coalesce((SELECT version FROM queue_config), 0) = :config_version
             ORDER BY priority, date_created, id
             LIMIT CASE WHEN :capacity IS NULL THEN :limit
                        ELSE max(0, min(:limit, :capacity - (
                            SELECT count(*) FROM queue_job WHERE state = 'started'))) END)
RETURNING *;

-- name: channel_head
-- The first job of a channel in start order, due or not (sequential channels).
SELECT id, channel, priority, date_created, concurrency_key,
       (eta IS NULL OR eta <= :now) AS due
FROM queue_job INDEXED BY queue_job_pending
WHERE state = 'pending' AND channel = :channel
ORDER BY priority, date_created, id
LIMIT 1;

-- name: start_jobs
-- Take the chosen jobs (:ids, a JSON array), in one statement. The state check keeps a
-- job that a manual action moved since the read (impossible under the write lock, kept
-- as the rule of every claim).
UPDATE queue_job SET state = 'started', worker_id = :worker_id, worker_pid = :worker_pid,
    attempt = attempt + 1, date_enqueued = :now, date_started = :now, date_done = NULL
WHERE id IN (SELECT value FROM json_each(:ids)) AND state = 'pending'
RETURNING *;

-- name: touch_throttle
INSERT INTO queue_channel (name, last_started) VALUES (:name, :now)
ON CONFLICT (name) DO UPDATE SET last_started = excluded.last_started;

-- name: finish_job
-- Record the outcome of an attempt: done, failed or cancelled. Fenced: only the
-- attempt that is still started writes; a late write of a rescued attempt changes nothing.
UPDATE queue_job SET state = :state, retry = :retry, result = :result, exc_info = :exc_info,
    exc_name = :exc_name, exc_message = :exc_message,
    date_done = CASE WHEN :state IN ('done', 'cancelled') THEN :now ELSE NULL END,
    date_failed = CASE WHEN :state = 'failed' THEN :now ELSE date_failed END,
    date_cancelled = CASE WHEN :state = 'cancelled' THEN :now ELSE NULL END,
    exec_time = CASE WHEN :state = 'done' THEN :now - date_started END
WHERE uuid = :uuid AND attempt = :attempt AND state = 'started'
RETURNING uuid;

-- name: fail_bad_job
-- A job whose stored row cannot be run, or whose outcome cannot be written at all, ends
-- failed with the reason; by its row id, the one value of a row that is always usable
-- (fenced on its state, and on the attempt when one is given).
UPDATE queue_job SET state = 'failed', exc_info = :reason, date_failed = :now,
    date_done = NULL, exc_name = 'queuejob.JobCannotRun', exc_message = :reason
WHERE id = :id AND state = :state AND (:attempt IS NULL OR attempt = :attempt)
RETURNING id;

-- name: fail_channel_jobs
-- Pending jobs stored in a channel whose name is not a channel name (written by hand, or
-- not UTF-8) end failed: the name is matched as bytes, since it cannot always be bound as
-- text.
UPDATE queue_job SET state = 'failed', exc_info = :reason, date_failed = :now,
    exc_name = 'queuejob.JobCannotRun', exc_message = :reason
WHERE state = 'pending' AND CAST(channel AS BLOB) = :raw
RETURNING id;

-- name: retry_job
-- A retried attempt goes back to pending with its eta (fenced like finish_job).
UPDATE queue_job SET state = 'pending', retry = :retry, result = :result, exc_info = NULL,
    exc_name = NULL, exc_message = NULL, eta = :now + :eta_delay, date_enqueued = NULL,
    date_started = NULL, worker_pid = NULL
WHERE uuid = :uuid AND attempt = :attempt AND state = 'started'
RETURNING uuid;

-- name: release_job
-- Shutdown: an attempt that did not finish in the grace period goes back to
-- pending, its retry unchanged (fenced).
UPDATE queue_job SET state = 'pending', date_enqueued = NULL, date_started = NULL,
    worker_pid = NULL
WHERE uuid = :uuid AND attempt = :attempt AND state = 'started'
RETURNING uuid;

-- name: identity_holder
-- The pending or enqueued job that holds the identity key of a started attempt,
-- if another one does: that attempt cannot go back to pending.
SELECT other.uuid FROM queue_job AS job
JOIN queue_job AS other ON other.identity_key = job.identity_key
    AND other.state IN ('pending', 'enqueued', 'wait_dependencies') AND other.uuid <> job.uuid
WHERE job.uuid = :uuid AND job.identity_key IS NOT NULL
LIMIT 1;

-- name: started_by_worker
SELECT id, uuid, attempt, retry, identity_key FROM queue_job
WHERE state = 'started' AND worker_id = :worker_id;

-- name: orphaned_jobs
-- Started jobs whose worker is not alive (dead, stopped or unknown).
SELECT job.id, job.uuid, job.attempt, job.retry, job.max_retries, job.worker_deaths,
       job.worker_id
FROM queue_job AS job INDEXED BY queue_job_started
WHERE job.state = 'started' AND job.worker_id IS NOT :rescuer
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
WHERE uuid = :uuid AND attempt = :attempt AND state = 'started'
RETURNING uuid;

-- name: fail_dead_job
UPDATE queue_job SET state = 'failed', retry = retry + 1, worker_deaths = worker_deaths + 1,
    exc_info = :exc_info, exc_name = 'queuejob.WorkerDied', exc_message = :exc_info,
    date_failed = :now
WHERE uuid = :uuid AND attempt = :attempt AND state = 'started'
RETURNING uuid;

-- name: register_worker
INSERT INTO queue_worker (id, hostname, pid, channels, concurrency, state, date_started,
                          heartbeat, supervisor_pid, listener, job_connections, process_space)
VALUES (:id, :hostname, :pid, :channels, :concurrency, 'alive', :now, :now,
        :supervisor_pid, :listener, :job_connections, :process_space)
ON CONFLICT (id) DO NOTHING;

-- name: set_worker_listener
-- How the worker is woken changed (LISTEN did not hold, its supervisor gave up): 'none'.
UPDATE queue_worker SET listener = :listener WHERE id = :id;

-- name: worker_look
-- With each heartbeat: the worker's rank among the live workers that take jobs, and
-- whether the services have anything to look at.
SELECT count(*) FILTER (WHERE id < :id) AS rank, count(*) AS workers,
    EXISTS (SELECT 1 FROM queue_run_schedule) AS schedules,
    EXISTS (SELECT 1 FROM queue_batch WHERE state = 'open') AS open_batches
FROM queue_worker
WHERE state = 'alive' AND coalesce(concurrency, 1) > 0 AND heartbeat > :now - :dead_after;

-- name: wake_worker
-- Other processes see commits through PRAGMA data_version: nothing to send.
SELECT :payload;

-- name: declared_channels
-- The channel rules live workers declare (their --channels), for all workers.
SELECT CAST(id AS TEXT) AS id, CAST(channels AS TEXT) AS channels FROM queue_worker
WHERE state = 'alive' AND channels <> '';

-- name: heartbeat
UPDATE queue_worker SET heartbeat = :now, state = 'alive' WHERE id = :id AND state <> 'stopped'
RETURNING id;

-- name: stop_worker
UPDATE queue_worker SET state = 'stopped', date_stopped = :now WHERE id = :id;

-- name: mark_dead_workers
-- Workers whose heartbeat is older than :dead_after seconds.
UPDATE queue_worker SET state = 'dead'
WHERE state = 'alive' AND id <> :rescuer AND heartbeat < :now - :dead_after
RETURNING id, hostname, pid;

-- name: workers_in_space
-- Live workers whose pid means something in the process space of the rescuer (its host,
-- its pid namespace): it can tell whether their processes still exist.
SELECT id, pid FROM queue_worker
WHERE state = 'alive' AND process_space = :space AND id <> :rescuer;

-- name: mark_gone_worker
-- A worker of the rescuer's process space whose process no longer exists: dead at once
-- (fenced on the space and the pid that were found gone).
UPDATE queue_worker SET state = 'dead'
WHERE id = :id AND state = 'alive' AND process_space = :space AND pid = :pid
RETURNING id, hostname, pid;

-- name: list_workers
SELECT worker.*, :now - worker.heartbeat AS heartbeat_age,
    (SELECT count(*) FROM queue_job AS job
     WHERE job.state = 'started' AND job.worker_id = worker.id) AS running
FROM queue_worker AS worker
ORDER BY worker.state = 'alive' DESC, worker.heartbeat DESC
LIMIT :limit;

-- name: remove_old_workers
-- Rows of workers stopped or dead long ago (the cleanup prunes them).
DELETE FROM queue_worker WHERE state <> 'alive' AND heartbeat < :now - :older_than
RETURNING id;

-- name: set_channel
INSERT INTO queue_channel (name, capacity, sequential, throttle, removal_interval, paused,
                           rate_limit, rate_period, key_capacity, fair, date_updated)
VALUES (:name, :capacity, :sequential, :throttle, :removal_interval, :paused,
        :rate_limit, :rate_period, :key_capacity, :fair, :now)
ON CONFLICT (name) DO UPDATE SET capacity = excluded.capacity,
    sequential = excluded.sequential, throttle = excluded.throttle,
    removal_interval = excluded.removal_interval, paused = excluded.paused,
    rate_limit = excluded.rate_limit, rate_period = excluded.rate_period,
    key_capacity = excluded.key_capacity, fair = excluded.fair,
    date_updated = excluded.date_updated;

-- name: delete_channel
DELETE FROM queue_channel WHERE name = :name;

-- name: count_jobs
-- Jobs per channel and state (statistics): the unfinished ones from their partial index,
-- the done and cancelled ones from their tally.
SELECT channel, state, count(*) AS jobs FROM queue_job INDEXED BY queue_job_unfinished
WHERE state NOT IN ('done', 'cancelled') GROUP BY channel, state
UNION ALL
SELECT channel, state, jobs FROM queue_job_tally WHERE jobs <> 0
ORDER BY 1, 2;

-- name: compact_tally
-- (each key is one row, updated in place: only the emptied ones go)
DELETE FROM queue_job_tally WHERE jobs = 0 AND attempts = 0 AND failed = 0;

-- name: compact_minutes
-- The minutes older than :keep minutes (no window reads them).
DELETE FROM queue_job_minute WHERE minute < CAST(:now / 60 AS INTEGER) - :keep;

-- name: removable_jobs
-- Done and cancelled jobs finished more than :older_than seconds ago, oldest first, with
-- their age (their channel's removal interval is checked by the caller).
-- Read in (date_done, id) order from where the previous batch stopped.
SELECT id, channel, date_done, :now - date_done AS age FROM queue_job INDEXED BY queue_job_finished
WHERE state IN ('done', 'cancelled') AND date_done < :now - :older_than
  AND (:after_done IS NULL OR date_done > :after_done
       OR (date_done = :after_done AND id > :after_id))
ORDER BY date_done, id
LIMIT :limit;

-- name: delete_job
DELETE FROM queue_job WHERE id = :id AND state IN ('done', 'cancelled');

-- name: create_migration_table
CREATE TABLE IF NOT EXISTS queuejob_migration (
    version     INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    applied_at  REAL NOT NULL
);

-- name: lock_migrations
-- BEGIN IMMEDIATE already serializes the processes that migrate at once.
SELECT 1;

-- name: applied_migrations
SELECT version FROM queuejob_migration ORDER BY version;

-- name: record_migration
INSERT INTO queuejob_migration (version, name, applied_at) VALUES (:version, :name, :now);

-- name: notify_jobs
-- Other processes see commits through PRAGMA data_version: nothing to send.
SELECT 1;

-- name: savepoint
SAVEPOINT queuejob;

-- name: rollback_to_savepoint
ROLLBACK TO SAVEPOINT queuejob;

-- name: release_savepoint
RELEASE SAVEPOINT queuejob;

-- name: function_settings
-- The stored settings of one job function (to merge a change into).
SELECT * FROM queue_job_function WHERE name = :name;

-- name: function_overrides
SELECT * FROM queue_job_function ORDER BY name;

-- name: set_function
-- A job function's settings people set (each NULL: the decorator's); the caller merges
-- them with the stored ones, so that setting one keeps the others.
INSERT INTO queue_job_function (name, channel, retry_pattern, related_action, date_updated)
VALUES (:name, :channel, :retry_pattern, :related_action, :now)
ON CONFLICT (name) DO UPDATE SET channel = excluded.channel,
    retry_pattern = excluded.retry_pattern, related_action = excluded.related_action,
    date_updated = excluded.date_updated;

-- name: delete_function
DELETE FROM queue_job_function WHERE name = :name;

-- name: insert_dependency
-- (batch) One edge of a job graph: the child waits for the parent.
INSERT INTO queue_job_dependency (parent_uuid, child_uuid) VALUES (:parent, :child)
ON CONFLICT DO NOTHING;

-- name: mark_has_dependents
-- (batch) Jobs whose completion releases children.
UPDATE queue_job SET has_dependents = 1 WHERE uuid = :uuid;

-- name: waiting_children
-- (batch) Children of a job that wait for their parents (the write lock is held).
SELECT job.uuid FROM queue_job_dependency AS dep
JOIN queue_job AS job ON job.uuid = dep.child_uuid
WHERE dep.parent_uuid = :uuid AND job.state = 'wait_dependencies';

-- name: release_children
-- (batch) A waiting child whose parents are all done becomes pending.
UPDATE queue_job SET state = 'pending'
WHERE uuid = :uuid AND state = 'wait_dependencies'
  AND NOT EXISTS (SELECT 1 FROM queue_job_dependency AS dep
                  JOIN queue_job AS parent ON parent.uuid = dep.parent_uuid
                  WHERE dep.child_uuid = queue_job.uuid AND parent.state <> 'done')
RETURNING uuid;

-- name: cancel_waiting_children
-- (batch) The waiting children of a cancelled job whose parents are all cancelled are
-- cancelled too (a child with a parent still alive waits for it); the caller repeats
-- with those children, down the graph.
UPDATE queue_job SET state = 'cancelled', date_done = :now, date_cancelled = :now,
    result = 'Cancelled: every job it waited for was cancelled'
WHERE uuid IN (SELECT child_uuid FROM queue_job_dependency WHERE parent_uuid = :uuid)
  AND state = 'wait_dependencies'
  AND NOT EXISTS (SELECT 1 FROM queue_job_dependency AS dep
                  JOIN queue_job AS parent ON parent.uuid = dep.parent_uuid
                  WHERE dep.child_uuid = queue_job.uuid AND parent.state <> 'cancelled')
RETURNING uuid;

-- name: notify_outcomes
-- Waiters see commits through PRAGMA data_version: nothing to send.
SELECT 1;

-- name: database_now
SELECT :now AS now;

-- name: schedule_state
SELECT last_slot FROM queue_schedule WHERE name = :name;

-- name: start_schedule
-- The first worker that sees a schedule records its current slot: it starts from the next.
INSERT INTO queue_schedule (name, last_slot, date_updated) VALUES (:name, :slot, :now)
ON CONFLICT (name) DO NOTHING;

-- name: advance_schedule
-- Compare-and-set: of the workers that saw the same last slot, one moves it, and only
-- that one delays the slot's job (in the same transaction).
UPDATE queue_schedule SET last_slot = :slot, date_updated = :now
WHERE name = :name AND last_slot = :last
RETURNING name;

-- name: schedule_states
SELECT * FROM queue_schedule ORDER BY name;

-- name: add_waiter
INSERT INTO queue_job_waiter (uuid, date_created) VALUES (:uuid, :now);

-- name: remove_waiter
DELETE FROM queue_job_waiter WHERE rowid IN (
    SELECT rowid FROM queue_job_waiter WHERE uuid = :uuid LIMIT 1);

-- name: bump_config
-- The channel or job function configuration changed: claims without a look at it stop.
-- An upsert: a table emptied by hand (a TRUNCATE of every queue table) counts as version 0.
INSERT INTO queue_config (id, version) VALUES (1, 1)
ON CONFLICT (id) DO UPDATE SET version = queue_config.version + 1;

-- name: copy_jobs
-- Many new jobs without identity keys (delay_many), one row per set of values.
INSERT INTO queue_job (uuid, state, func_name, model_name, args, kwargs, description, channel,
                       priority, max_retries, user_id, context, eta, timeout, graph_uuid,
                       has_dependents, date_created, concurrency_key, trace_context)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?);

-- name: copy_defaults
-- What a streamed insert of new jobs (copy_jobs) resolves itself, in one round trip: the
-- database's time (their creation date, and their eta when given as a delay) and the
-- channel people set for each job function (rows of name and channel; one row of NULLs
-- when none is set).
SELECT :now AS now, f.name, f.channel
FROM (SELECT 1) AS one LEFT JOIN queue_job_function AS f ON f.channel IS NOT NULL;

-- name: list_subscriptions
SELECT * FROM queue_subscription ORDER BY id;

-- name: add_subscription
INSERT INTO queue_subscription (channel, func_name, target_kind, target, date_created)
VALUES (:channel, :func_name, :target_kind, :target, :now)
RETURNING id;

-- name: delete_subscription
DELETE FROM queue_subscription WHERE id = :id RETURNING id;

-- name: lock_legacy_history
-- (PostgreSQL's history partition: SQLite keeps one table, nothing to move)
SELECT 1;

-- name: legacy_history
SELECT NULL AS remaining;

-- name: move_legacy_history
SELECT 0 AS moved;

-- name: drop_legacy_history
SELECT 0 AS empty;

-- name: drop_legacy_table
SELECT 1;

-- name: count_purgeable
-- Finished jobs a purge would remove (queuejob purge): done or cancelled (or the one
-- state given), finished more than older_than seconds ago, of a channel and its
-- subchannels, of a function.
SELECT count(*) AS jobs FROM queue_job
WHERE state IN ('done', 'cancelled') AND (:state IS NULL OR state = :state)
  AND date_done < :now - :older_than
  AND (:channel IS NULL OR channel = :channel
       OR substr(channel, 1, length(:channel) + 1) = :channel || '.')
  AND (:func_name IS NULL OR func_name = :func_name);

-- name: purgeable_jobs
-- The next of them in id order, from after_id on.
SELECT id FROM queue_job
WHERE state IN ('done', 'cancelled') AND (:state IS NULL OR state = :state)
  AND date_done < :now - :older_than
  AND (:channel IS NULL OR channel = :channel
       OR substr(channel, 1, length(:channel) + 1) = :channel || '.')
  AND (:func_name IS NULL OR func_name = :func_name)
  AND id > :after_id
ORDER BY id
LIMIT :limit;
