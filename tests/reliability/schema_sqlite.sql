index queue_batch_created: CREATE INDEX queue_batch_created ON queue_batch (date_created)
index queue_batch_job_job: CREATE INDEX queue_batch_job_job ON queue_batch_job (job_uuid)
index queue_batch_open: CREATE INDEX queue_batch_open ON queue_batch (date_created) WHERE state = 'open'
index queue_job_cancelled: CREATE INDEX queue_job_cancelled ON queue_job (id) WHERE state = 'cancelled'
index queue_job_dependency_child: CREATE INDEX queue_job_dependency_child ON queue_job_dependency (child_uuid)
index queue_job_enqueued: CREATE INDEX queue_job_enqueued ON queue_job (id) WHERE state = 'enqueued'
index queue_job_failed: CREATE INDEX queue_job_failed ON queue_job (channel) WHERE state = 'failed'
index queue_job_failed_at: CREATE INDEX queue_job_failed_at ON queue_job (date_failed) WHERE date_failed IS NOT NULL
index queue_job_failed_by_exception: CREATE INDEX queue_job_failed_by_exception ON queue_job (exc_name) WHERE state = 'failed'
index queue_job_finished: CREATE INDEX queue_job_finished ON queue_job (date_done, id, channel, state) WHERE state IN ('done', 'cancelled')
index queue_job_graph: CREATE INDEX queue_job_graph ON queue_job (graph_uuid) WHERE graph_uuid IS NOT NULL
index queue_job_identity: CREATE UNIQUE INDEX queue_job_identity ON queue_job (identity_key) WHERE identity_key IS NOT NULL AND state IN ('pending', 'enqueued', 'wait_dependencies')
index queue_job_next: CREATE INDEX queue_job_next ON queue_job (priority, date_created, id, channel, eta) WHERE state = 'pending'
index queue_job_pending: CREATE INDEX queue_job_pending ON queue_job (channel, priority, date_created, id, eta) WHERE state = 'pending'
index queue_job_pending_by_key: CREATE INDEX queue_job_pending_by_key ON queue_job (channel, concurrency_key, priority, date_created, id, eta) WHERE state = 'pending' AND concurrency_key <> ''
index queue_job_started: CREATE INDEX queue_job_started ON queue_job (worker_id, channel) WHERE state = 'started'
index queue_job_started_by_key: CREATE INDEX queue_job_started_by_key ON queue_job (channel, concurrency_key) WHERE state = 'started' AND concurrency_key <> ''
index queue_job_unfinished: CREATE INDEX queue_job_unfinished ON queue_job (id) WHERE state NOT IN ('done', 'cancelled')
index queue_job_waiter_uuid: CREATE INDEX queue_job_waiter_uuid ON queue_job_waiter (uuid)
index queue_rate_start_window: CREATE INDEX queue_rate_start_window ON queue_rate_start (channel, started_at)
index queue_worker_alive: CREATE INDEX queue_worker_alive ON queue_worker (heartbeat) WHERE state = 'alive'
table queue_batch: CREATE TABLE queue_batch ( uuid TEXT PRIMARY KEY, name TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'open', date_created REAL NOT NULL, date_concluded REAL, on_done TEXT, on_failure TEXT, callback_uuid TEXT, callback_error TEXT )
table queue_batch_job: CREATE TABLE queue_batch_job ( batch_uuid TEXT NOT NULL REFERENCES queue_batch (uuid) ON DELETE CASCADE, job_uuid TEXT NOT NULL REFERENCES queue_job (uuid) ON DELETE CASCADE, PRIMARY KEY (batch_uuid, job_uuid) )
table queue_channel: CREATE TABLE queue_channel ( name TEXT PRIMARY KEY, capacity INTEGER, sequential INTEGER NOT NULL DEFAULT 0, throttle REAL NOT NULL DEFAULT 0, removal_interval REAL, paused INTEGER NOT NULL DEFAULT 0, last_started REAL, date_updated REAL , rate_limit INTEGER, rate_period REAL, key_capacity INTEGER, fair INTEGER NOT NULL DEFAULT 0, fair_cursor TEXT)
table queue_config: CREATE TABLE queue_config ( id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL )
table queue_job: CREATE TABLE queue_job ( id INTEGER PRIMARY KEY, uuid TEXT NOT NULL UNIQUE, state TEXT NOT NULL, func_name TEXT NOT NULL, model_name TEXT, args TEXT NOT NULL, kwargs TEXT NOT NULL, description TEXT, channel TEXT NOT NULL, priority INTEGER NOT NULL, max_retries INTEGER NOT NULL, retry INTEGER NOT NULL DEFAULT 0, attempt INTEGER NOT NULL DEFAULT 0, worker_deaths INTEGER NOT NULL DEFAULT 0, identity_key TEXT, user_id INTEGER, context TEXT, result TEXT, exc_info TEXT, worker_id TEXT, eta REAL, date_created REAL NOT NULL, date_enqueued REAL, date_started REAL, date_done REAL , timeout REAL, date_failed REAL, graph_uuid TEXT, has_dependents INTEGER NOT NULL DEFAULT 0, exc_name TEXT, exc_message TEXT, exec_time REAL, date_cancelled REAL, worker_pid INTEGER, concurrency_key TEXT NOT NULL DEFAULT '', progress_done INTEGER, progress_total INTEGER, progress_message TEXT, progress_attempt INTEGER, date_progress REAL, trace_context TEXT)
table queue_job_bound: CREATE TABLE queue_job_bound (bound REAL PRIMARY KEY)
table queue_job_dependency: CREATE TABLE queue_job_dependency ( parent_uuid TEXT NOT NULL, child_uuid TEXT NOT NULL, PRIMARY KEY (parent_uuid, child_uuid) )
table queue_job_function: CREATE TABLE queue_job_function ( name TEXT PRIMARY KEY, channel TEXT, retry_pattern TEXT, date_updated REAL , related_action TEXT)
table queue_job_log: CREATE TABLE queue_job_log ( job_uuid TEXT NOT NULL REFERENCES queue_job (uuid) ON DELETE CASCADE, attempt INTEGER NOT NULL, lines TEXT NOT NULL, dropped INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (job_uuid, attempt) )
table queue_job_minute: CREATE TABLE queue_job_minute ( minute INTEGER NOT NULL, func_name TEXT NOT NULL, duration INTEGER NOT NULL, latency INTEGER NOT NULL, jobs INTEGER NOT NULL, duration_seconds REAL NOT NULL, latency_seconds REAL NOT NULL, PRIMARY KEY (minute, func_name, duration, latency) )
table queue_job_tally: CREATE TABLE queue_job_tally ( channel TEXT NOT NULL, state TEXT NOT NULL, jobs INTEGER NOT NULL, attempts INTEGER NOT NULL, failed INTEGER NOT NULL, PRIMARY KEY (channel, state) )
table queue_job_waiter: CREATE TABLE queue_job_waiter ( uuid TEXT NOT NULL, date_created REAL NOT NULL )
table queue_rate_start: CREATE TABLE queue_rate_start ( channel TEXT NOT NULL, started_at REAL NOT NULL , starts INTEGER NOT NULL DEFAULT 1 CHECK (starts > 0))
table queue_run_schedule: CREATE TABLE queue_run_schedule ( name TEXT PRIMARY KEY, cron TEXT NOT NULL, func_name TEXT NOT NULL, args TEXT NOT NULL DEFAULT '[]', kwargs TEXT NOT NULL DEFAULT '{}', channel TEXT, timezone TEXT NOT NULL DEFAULT 'UTC', missed TEXT NOT NULL DEFAULT 'once', missed_window REAL, paused INTEGER NOT NULL DEFAULT 0, run_requested INTEGER NOT NULL DEFAULT 0, last_slot REAL, date_created REAL NOT NULL, date_updated REAL NOT NULL )
table queue_schedule: CREATE TABLE queue_schedule ( name TEXT PRIMARY KEY, last_slot REAL, date_updated REAL )
table queue_subscription: CREATE TABLE queue_subscription ( id INTEGER PRIMARY KEY, channel TEXT, func_name TEXT, target_kind TEXT NOT NULL, target TEXT NOT NULL, date_created REAL NOT NULL )
table queue_worker: CREATE TABLE queue_worker ( id TEXT PRIMARY KEY, hostname TEXT NOT NULL, pid INTEGER NOT NULL, channels TEXT, state TEXT NOT NULL, date_started REAL NOT NULL, heartbeat REAL NOT NULL, date_stopped REAL , concurrency INTEGER, supervisor_pid integer, listener text, job_connections integer, process_space TEXT)
table queuejob_migration: CREATE TABLE queuejob_migration ( version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL )
trigger queue_job_tally_came_insert: CREATE TRIGGER queue_job_tally_came_insert AFTER INSERT ON queue_job WHEN NEW.state IN ('done', 'cancelled') BEGIN INSERT INTO queue_job_tally VALUES (NEW.channel, NEW.state, 1, NEW.attempt, (NEW.date_failed IS NOT NULL)) ON CONFLICT (channel, state) DO UPDATE SET jobs = jobs + excluded.jobs, attempts = attempts + excluded.attempts, failed = failed + excluded.failed; INSERT INTO queue_job_minute SELECT minute, func_name, duration, latency, 1, duration_seconds, latency_seconds FROM queue_job_done WHERE id = NEW.id ON CONFLICT (minute, func_name, duration, latency) DO UPDATE SET jobs = jobs + excluded.jobs, duration_seconds = duration_seconds + excluded.duration_seconds, latency_seconds = latency_seconds + excluded.latency_seconds; END
trigger queue_job_tally_came_update: CREATE TRIGGER queue_job_tally_came_update AFTER UPDATE ON queue_job WHEN NEW.state IN ('done', 'cancelled') BEGIN INSERT INTO queue_job_tally VALUES (NEW.channel, NEW.state, 1, NEW.attempt, (NEW.date_failed IS NOT NULL)) ON CONFLICT (channel, state) DO UPDATE SET jobs = jobs + excluded.jobs, attempts = attempts + excluded.attempts, failed = failed + excluded.failed; INSERT INTO queue_job_minute SELECT minute, func_name, duration, latency, 1, duration_seconds, latency_seconds FROM queue_job_done WHERE id = NEW.id ON CONFLICT (minute, func_name, duration, latency) DO UPDATE SET jobs = jobs + excluded.jobs, duration_seconds = duration_seconds + excluded.duration_seconds, latency_seconds = latency_seconds + excluded.latency_seconds; END
trigger queue_job_tally_went_delete: CREATE TRIGGER queue_job_tally_went_delete BEFORE DELETE ON queue_job WHEN OLD.state IN ('done', 'cancelled') BEGIN INSERT INTO queue_job_tally VALUES (OLD.channel, OLD.state, -1, -OLD.attempt, -(OLD.date_failed IS NOT NULL)) ON CONFLICT (channel, state) DO UPDATE SET jobs = jobs + excluded.jobs, attempts = attempts + excluded.attempts, failed = failed + excluded.failed; INSERT INTO queue_job_minute SELECT minute, func_name, duration, latency, -1, -duration_seconds, -latency_seconds FROM queue_job_done WHERE id = OLD.id ON CONFLICT (minute, func_name, duration, latency) DO UPDATE SET jobs = jobs + excluded.jobs, duration_seconds = duration_seconds + excluded.duration_seconds, latency_seconds = latency_seconds + excluded.latency_seconds; END
trigger queue_job_tally_went_update: CREATE TRIGGER queue_job_tally_went_update BEFORE UPDATE ON queue_job WHEN OLD.state IN ('done', 'cancelled') BEGIN INSERT INTO queue_job_tally VALUES (OLD.channel, OLD.state, -1, -OLD.attempt, -(OLD.date_failed IS NOT NULL)) ON CONFLICT (channel, state) DO UPDATE SET jobs = jobs + excluded.jobs, attempts = attempts + excluded.attempts, failed = failed + excluded.failed; INSERT INTO queue_job_minute SELECT minute, func_name, duration, latency, -1, -duration_seconds, -latency_seconds FROM queue_job_done WHERE id = OLD.id ON CONFLICT (minute, func_name, duration, latency) DO UPDATE SET jobs = jobs + excluded.jobs, duration_seconds = duration_seconds + excluded.duration_seconds, latency_seconds = latency_seconds + excluded.latency_seconds; END
view queue_job_done: CREATE VIEW queue_job_done AS SELECT id, CAST(date_done / 60 AS INTEGER) AS minute, func_name, CASE WHEN d IS NULL THEN -1 ELSE (SELECT count(*) FROM queue_job_bound WHERE bound <= d) END AS duration, CASE WHEN l IS NULL THEN -1 ELSE (SELECT count(*) FROM queue_job_bound WHERE bound <= l) END AS latency, coalesce(d, 0) AS duration_seconds, coalesce(l, 0) AS latency_seconds FROM (SELECT id, date_done, func_name, date_done - date_started AS d, max(date_started - CASE WHEN eta IS NULL OR eta < date_created THEN date_created ELSE eta END, 0) AS l FROM queue_job WHERE state = 'done' AND date_done IS NOT NULL)
migration 1: initial
migration 2: timeouts_and_functions
migration 3: dashboard
migration 4: graphs_and_schedules
migration 5: checks
migration 6: arguments_with_the_model_name
migration 7: successor_fields
migration 8: subscriptions
migration 9: worker_concurrency
migration 10: flow_control
migration 11: rate_starts_per_claim
migration 12: progress_and_job_log
migration 13: run_time_schedules
migration 14: trace_context
migration 15: batches
migration 16: targeted_wakeups
migration 17: tallies
migration 18: process_space
