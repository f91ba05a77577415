column queue_batch.uuid: uuid nullable=NO default=None identity=NO
column queue_batch.name: text nullable=NO default=None identity=NO
column queue_batch.state: text nullable=NO default='open'::text identity=NO
column queue_batch.date_created: timestamp with time zone nullable=NO default=None identity=NO
column queue_batch.date_concluded: timestamp with time zone nullable=YES default=None identity=NO
column queue_batch.on_done: text nullable=YES default=None identity=NO
column queue_batch.on_failure: text nullable=YES default=None identity=NO
column queue_batch.callback_uuid: text nullable=YES default=None identity=NO
column queue_batch.callback_error: text nullable=YES default=None identity=NO
column queue_batch_job.batch_uuid: uuid nullable=NO default=None identity=NO
column queue_batch_job.job_uuid: uuid nullable=NO default=None identity=NO
column queue_channel.name: text nullable=NO default=None identity=NO
column queue_channel.capacity: integer nullable=YES default=None identity=NO
column queue_channel.sequential: boolean nullable=NO default=false identity=NO
column queue_channel.throttle: double precision nullable=NO default=0 identity=NO
column queue_channel.removal_interval: double precision nullable=YES default=None identity=NO
column queue_channel.paused: boolean nullable=NO default=false identity=NO
column queue_channel.last_started: timestamp with time zone nullable=YES default=None identity=NO
column queue_channel.date_updated: timestamp with time zone nullable=YES default=None identity=NO
column queue_channel.rate_limit: integer nullable=YES default=None identity=NO
column queue_channel.rate_period: double precision nullable=YES default=None identity=NO
column queue_channel.key_capacity: integer nullable=YES default=None identity=NO
column queue_channel.fair: boolean nullable=NO default=false identity=NO
column queue_channel.fair_cursor: text nullable=YES default=None identity=NO
column queue_config.id: integer nullable=NO default=None identity=NO
column queue_config.version: integer nullable=NO default=None identity=NO
column queue_job.id: bigint nullable=NO default=nextval('queue_job_id_seq'::regclass) identity=NO
column queue_job.uuid: uuid nullable=NO default=None identity=NO
column queue_job.state: text nullable=NO default=None identity=NO
column queue_job.func_name: text nullable=NO default=None identity=NO
column queue_job.model_name: text nullable=YES default=None identity=NO
column queue_job.args: text nullable=NO default=None identity=NO
column queue_job.kwargs: text nullable=NO default=None identity=NO
column queue_job.description: text nullable=YES default=None identity=NO
column queue_job.channel: text nullable=NO default=None identity=NO
column queue_job.priority: integer nullable=NO default=None identity=NO
column queue_job.max_retries: integer nullable=NO default=None identity=NO
column queue_job.retry: integer nullable=NO default=0 identity=NO
column queue_job.attempt: integer nullable=NO default=0 identity=NO
column queue_job.worker_deaths: integer nullable=NO default=0 identity=NO
column queue_job.identity_key: text nullable=YES default=None identity=NO
column queue_job.user_id: bigint nullable=YES default=None identity=NO
column queue_job.context: text nullable=YES default=None identity=NO
column queue_job.result: text nullable=YES default=None identity=NO
column queue_job.exc_info: text nullable=YES default=None identity=NO
column queue_job.worker_id: text nullable=YES default=None identity=NO
column queue_job.eta: timestamp with time zone nullable=YES default=None identity=NO
column queue_job.date_created: timestamp with time zone nullable=NO default=None identity=NO
column queue_job.date_enqueued: timestamp with time zone nullable=YES default=None identity=NO
column queue_job.date_started: timestamp with time zone nullable=YES default=None identity=NO
column queue_job.date_done: timestamp with time zone nullable=YES default=None identity=NO
column queue_job.timeout: double precision nullable=YES default=None identity=NO
column queue_job.date_failed: timestamp with time zone nullable=YES default=None identity=NO
column queue_job.graph_uuid: uuid nullable=YES default=None identity=NO
column queue_job.has_dependents: boolean nullable=NO default=false identity=NO
column queue_job.exc_name: text nullable=YES default=None identity=NO
column queue_job.exc_message: text nullable=YES default=None identity=NO
column queue_job.exec_time: double precision nullable=YES default=None identity=NO
column queue_job.date_cancelled: timestamp with time zone nullable=YES default=None identity=NO
column queue_job.worker_pid: integer nullable=YES default=None identity=NO
column queue_job.concurrency_key: text nullable=NO default=''::text identity=NO
column queue_job.progress_done: bigint nullable=YES default=None identity=NO
column queue_job.progress_total: bigint nullable=YES default=None identity=NO
column queue_job.progress_message: text nullable=YES default=None identity=NO
column queue_job.progress_attempt: integer nullable=YES default=None identity=NO
column queue_job.date_progress: timestamp with time zone nullable=YES default=None identity=NO
column queue_job.trace_context: text nullable=YES default=None identity=NO
column queue_job_dependency.parent_uuid: uuid nullable=NO default=None identity=NO
column queue_job_dependency.child_uuid: uuid nullable=NO default=None identity=NO
column queue_job_function.name: text nullable=NO default=None identity=NO
column queue_job_function.channel: text nullable=YES default=None identity=NO
column queue_job_function.retry_pattern: text nullable=YES default=None identity=NO
column queue_job_function.date_updated: timestamp with time zone nullable=YES default=None identity=NO
column queue_job_function.related_action: text nullable=YES default=None identity=NO
column queue_job_history.id: bigint nullable=NO default=nextval('queue_job_id_seq'::regclass) identity=NO
column queue_job_history.uuid: uuid nullable=NO default=None identity=NO
column queue_job_history.state: text nullable=NO default=None identity=NO
column queue_job_history.func_name: text nullable=NO default=None identity=NO
column queue_job_history.model_name: text nullable=YES default=None identity=NO
column queue_job_history.args: text nullable=NO default=None identity=NO
column queue_job_history.kwargs: text nullable=NO default=None identity=NO
column queue_job_history.description: text nullable=YES default=None identity=NO
column queue_job_history.channel: text nullable=NO default=None identity=NO
column queue_job_history.priority: integer nullable=NO default=None identity=NO
column queue_job_history.max_retries: integer nullable=NO default=None identity=NO
column queue_job_history.retry: integer nullable=NO default=0 identity=NO
column queue_job_history.attempt: integer nullable=NO default=0 identity=NO
column queue_job_history.worker_deaths: integer nullable=NO default=0 identity=NO
column queue_job_history.identity_key: text nullable=YES default=None identity=NO
column queue_job_history.user_id: bigint nullable=YES default=None identity=NO
column queue_job_history.context: text nullable=YES default=None identity=NO
column queue_job_history.result: text nullable=YES default=None identity=NO
column queue_job_history.exc_info: text nullable=YES default=None identity=NO
column queue_job_history.worker_id: text nullable=YES default=None identity=NO
column queue_job_history.eta: timestamp with time zone nullable=YES default=None identity=NO
column queue_job_history.date_created: timestamp with time zone nullable=NO default=None identity=NO
column queue_job_history.date_enqueued: timestamp with time zone nullable=YES default=None identity=NO
column queue_job_history.date_started: timestamp with time zone nullable=YES default=None identity=NO
column queue_job_history.date_done: timestamp with time zone nullable=YES default=None identity=NO
column queue_job_history.timeout: double precision nullable=YES default=None identity=NO
column queue_job_history.date_failed: timestamp with time zone nullable=YES default=None identity=NO
column queue_job_history.graph_uuid: uuid nullable=YES default=None identity=NO
column queue_job_history.has_dependents: boolean nullable=NO default=false identity=NO
column queue_job_history.exc_name: text nullable=YES default=None identity=NO
column queue_job_history.exc_message: text nullable=YES default=None identity=NO
column queue_job_history.exec_time: double precision nullable=YES default=None identity=NO
column queue_job_history.date_cancelled: timestamp with time zone nullable=YES default=None identity=NO
column queue_job_history.worker_pid: integer nullable=YES default=None identity=NO
column queue_job_history.concurrency_key: text nullable=NO default=''::text identity=NO
column queue_job_history.progress_done: bigint nullable=YES default=None identity=NO
column queue_job_history.progress_total: bigint nullable=YES default=None identity=NO
column queue_job_history.progress_message: text nullable=YES default=None identity=NO
column queue_job_history.progress_attempt: integer nullable=YES default=None identity=NO
column queue_job_history.date_progress: timestamp with time zone nullable=YES default=None identity=NO
column queue_job_history.trace_context: text nullable=YES default=None identity=NO
column queue_job_live.id: bigint nullable=NO default=nextval('queue_job_id_seq'::regclass) identity=NO
column queue_job_live.uuid: uuid nullable=NO default=None identity=NO
column queue_job_live.state: text nullable=NO default=None identity=NO
column queue_job_live.func_name: text nullable=NO default=None identity=NO
column queue_job_live.model_name: text nullable=YES default=None identity=NO
column queue_job_live.args: text nullable=NO default=None identity=NO
column queue_job_live.kwargs: text nullable=NO default=None identity=NO
column queue_job_live.description: text nullable=YES default=None identity=NO
column queue_job_live.channel: text nullable=NO default=None identity=NO
column queue_job_live.priority: integer nullable=NO default=None identity=NO
column queue_job_live.max_retries: integer nullable=NO default=None identity=NO
column queue_job_live.retry: integer nullable=NO default=0 identity=NO
column queue_job_live.attempt: integer nullable=NO default=0 identity=NO
column queue_job_live.worker_deaths: integer nullable=NO default=0 identity=NO
column queue_job_live.identity_key: text nullable=YES default=None identity=NO
column queue_job_live.user_id: bigint nullable=YES default=None identity=NO
column queue_job_live.context: text nullable=YES default=None identity=NO
column queue_job_live.result: text nullable=YES default=None identity=NO
column queue_job_live.exc_info: text nullable=YES default=None identity=NO
column queue_job_live.worker_id: text nullable=YES default=None identity=NO
column queue_job_live.eta: timestamp with time zone nullable=YES default=None identity=NO
column queue_job_live.date_created: timestamp with time zone nullable=NO default=None identity=NO
column queue_job_live.date_enqueued: timestamp with time zone nullable=YES default=None identity=NO
column queue_job_live.date_started: timestamp with time zone nullable=YES default=None identity=NO
column queue_job_live.date_done: timestamp with time zone nullable=YES default=None identity=NO
column queue_job_live.timeout: double precision nullable=YES default=None identity=NO
column queue_job_live.date_failed: timestamp with time zone nullable=YES default=None identity=NO
column queue_job_live.graph_uuid: uuid nullable=YES default=None identity=NO
column queue_job_live.has_dependents: boolean nullable=NO default=false identity=NO
column queue_job_live.exc_name: text nullable=YES default=None identity=NO
column queue_job_live.exc_message: text nullable=YES default=None identity=NO
column queue_job_live.exec_time: double precision nullable=YES default=None identity=NO
column queue_job_live.date_cancelled: timestamp with time zone nullable=YES default=None identity=NO
column queue_job_live.worker_pid: integer nullable=YES default=None identity=NO
column queue_job_live.concurrency_key: text nullable=NO default=''::text identity=NO
column queue_job_live.progress_done: bigint nullable=YES default=None identity=NO
column queue_job_live.progress_total: bigint nullable=YES default=None identity=NO
column queue_job_live.progress_message: text nullable=YES default=None identity=NO
column queue_job_live.progress_attempt: integer nullable=YES default=None identity=NO
column queue_job_live.date_progress: timestamp with time zone nullable=YES default=None identity=NO
column queue_job_live.trace_context: text nullable=YES default=None identity=NO
column queue_job_log.job_uuid: uuid nullable=NO default=None identity=NO
column queue_job_log.attempt: integer nullable=NO default=None identity=NO
column queue_job_log.lines: text nullable=NO default=None identity=NO
column queue_job_log.dropped: integer nullable=NO default=0 identity=NO
column queue_job_minute.minute: bigint nullable=NO default=None identity=NO
column queue_job_minute.func_name: text nullable=NO default=None identity=NO
column queue_job_minute.duration: integer nullable=NO default=None identity=NO
column queue_job_minute.latency: integer nullable=NO default=None identity=NO
column queue_job_minute.jobs: bigint nullable=NO default=None identity=NO
column queue_job_minute.duration_seconds: double precision nullable=NO default=None identity=NO
column queue_job_minute.latency_seconds: double precision nullable=NO default=None identity=NO
column queue_job_minute.fresh: boolean nullable=NO default=true identity=NO
column queue_job_tally.channel: text nullable=NO default=None identity=NO
column queue_job_tally.state: text nullable=NO default=None identity=NO
column queue_job_tally.jobs: bigint nullable=NO default=None identity=NO
column queue_job_tally.attempts: bigint nullable=NO default=None identity=NO
column queue_job_tally.failed: bigint nullable=NO default=None identity=NO
column queue_job_waiter.uuid: uuid nullable=NO default=None identity=NO
column queue_job_waiter.date_created: timestamp with time zone nullable=NO default=None identity=NO
column queue_rate_start.channel: text nullable=NO default=None identity=NO
column queue_rate_start.started_at: timestamp with time zone nullable=NO default=None identity=NO
column queue_rate_start.starts: integer nullable=NO default=1 identity=NO
column queue_run_schedule.name: text nullable=NO default=None identity=NO
column queue_run_schedule.cron: text nullable=NO default=None identity=NO
column queue_run_schedule.func_name: text nullable=NO default=None identity=NO
column queue_run_schedule.args: text nullable=NO default='[]'::text identity=NO
column queue_run_schedule.kwargs: text nullable=NO default='{}'::text identity=NO
column queue_run_schedule.channel: text nullable=YES default=None identity=NO
column queue_run_schedule.timezone: text nullable=NO default='UTC'::text identity=NO
column queue_run_schedule.missed: text nullable=NO default='once'::text identity=NO
column queue_run_schedule.missed_window: double precision nullable=YES default=None identity=NO
column queue_run_schedule.paused: boolean nullable=NO default=false identity=NO
column queue_run_schedule.run_requested: integer nullable=NO default=0 identity=NO
column queue_run_schedule.last_slot: timestamp with time zone nullable=YES default=None identity=NO
column queue_run_schedule.date_created: timestamp with time zone nullable=NO default=None identity=NO
column queue_run_schedule.date_updated: timestamp with time zone nullable=NO default=None identity=NO
column queue_schedule.name: text nullable=NO default=None identity=NO
column queue_schedule.last_slot: timestamp with time zone nullable=YES default=None identity=NO
column queue_schedule.date_updated: timestamp with time zone nullable=YES default=None identity=NO
column queue_subscription.id: bigint nullable=NO default=None identity=YES
column queue_subscription.channel: text nullable=YES default=None identity=NO
column queue_subscription.func_name: text nullable=YES default=None identity=NO
column queue_subscription.target_kind: text nullable=NO default=None identity=NO
column queue_subscription.target: text nullable=NO default=None identity=NO
column queue_subscription.date_created: timestamp with time zone nullable=NO default=None identity=NO
column queue_worker.id: text nullable=NO default=None identity=NO
column queue_worker.hostname: text nullable=NO default=None identity=NO
column queue_worker.pid: integer nullable=NO default=None identity=NO
column queue_worker.channels: text nullable=YES default=None identity=NO
column queue_worker.state: text nullable=NO default=None identity=NO
column queue_worker.date_started: timestamp with time zone nullable=NO default=None identity=NO
column queue_worker.heartbeat: timestamp with time zone nullable=NO default=None identity=NO
column queue_worker.date_stopped: timestamp with time zone nullable=YES default=None identity=NO
column queue_worker.concurrency: integer nullable=YES default=None identity=NO
column queue_worker.supervisor_pid: integer nullable=YES default=None identity=NO
column queue_worker.listener: text nullable=YES default=None identity=NO
column queue_worker.job_connections: integer nullable=YES default=None identity=NO
column queue_worker.process_space: text nullable=YES default=None identity=NO
column queuejob_migration.version: integer nullable=NO default=None identity=NO
column queuejob_migration.name: text nullable=NO default=None identity=NO
column queuejob_migration.applied_at: timestamp with time zone nullable=NO default=None identity=NO
constraint queue_batch.queue_batch_pkey: PRIMARY KEY (uuid)
constraint queue_batch.queue_batch_times_finite: CHECK ((((date_created >= '0001-01-02 00:00:00+00'::timestamp with time zone) AND (date_created <= '9999-12-30 00:00:00+00'::timestamp with time zone)) AND ((date_concluded IS NULL) OR ((date_concluded >= '0001-01-02 00:00:00+00'::timestamp with time zone) AND (date_concluded <= '9999-12-30 00:00:00+00'::timestamp with time zone)))))
constraint queue_batch_job.queue_batch_job_batch_uuid_fkey: FOREIGN KEY (batch_uuid) REFERENCES queue_batch(uuid) ON DELETE CASCADE
constraint queue_batch_job.queue_batch_job_pkey: PRIMARY KEY (batch_uuid, job_uuid)
constraint queue_channel.queue_channel_key_capacity_positive: CHECK ((key_capacity > 0))
constraint queue_channel.queue_channel_pkey: PRIMARY KEY (name)
constraint queue_channel.queue_channel_rate_limit_positive: CHECK ((rate_limit > 0))
constraint queue_channel.queue_channel_rate_period_positive: CHECK (((rate_period > (0)::double precision) AND (rate_period < 'Infinity'::double precision)))
constraint queue_channel.queue_channel_values_finite: CHECK (((throttle >= (0)::double precision) AND (throttle < 'Infinity'::double precision) AND ((removal_interval IS NULL) OR ((removal_interval >= (0)::double precision) AND (removal_interval < 'Infinity'::double precision))) AND ((last_started IS NULL) OR ((last_started >= '0001-01-02 00:00:00+00'::timestamp with time zone) AND (last_started <= '9999-12-30 00:00:00+00'::timestamp with time zone))))) NOT VALID
constraint queue_config.queue_config_id_check: CHECK ((id = 1))
constraint queue_config.queue_config_pkey: PRIMARY KEY (id)
constraint queue_job.queue_job_concurrency_key_length: CHECK ((length(concurrency_key) <= 255))
constraint queue_job.queue_job_timeout_finite: CHECK (((timeout IS NULL) OR ((timeout > (0)::double precision) AND (timeout < 'Infinity'::double precision))))
constraint queue_job.queue_job_times_finite: CHECK ((((date_created >= '0001-01-02 00:00:00+00'::timestamp with time zone) AND (date_created <= '9999-12-30 00:00:00+00'::timestamp with time zone)) AND ((eta IS NULL) OR ((eta >= '0001-01-02 00:00:00+00'::timestamp with time zone) AND (eta <= '9999-12-30 00:00:00+00'::timestamp with time zone))) AND ((date_enqueued IS NULL) OR ((date_enqueued >= '0001-01-02 00:00:00+00'::timestamp with time zone) AND (date_enqueued <= '9999-12-30 00:00:00+00'::timestamp with time zone))) AND ((date_started IS NULL) OR ((date_started >= '0001-01-02 00:00:00+00'::timestamp with time zone) AND (date_started <= '9999-12-30 00:00:00+00'::timestamp with time zone))) AND ((date_done IS NULL) OR ((date_done >= '0001-01-02 00:00:00+00'::timestamp with time zone) AND (date_done <= '9999-12-30 00:00:00+00'::timestamp with time zone))) AND ((date_failed IS NULL) OR ((date_failed >= '0001-01-02 00:00:00+00'::timestamp with time zone) AND (date_failed <= '9999-12-30 00:00:00+00'::timestamp with time zone)))))
constraint queue_job_dependency.queue_job_dependency_pkey: PRIMARY KEY (parent_uuid, child_uuid)
constraint queue_job_function.queue_job_function_pkey: PRIMARY KEY (name)
constraint queue_job_history.queue_job_concurrency_key_length: CHECK ((length(concurrency_key) <= 255))
constraint queue_job_history.queue_job_timeout_finite: CHECK (((timeout IS NULL) OR ((timeout > (0)::double precision) AND (timeout < 'Infinity'::double precision))))
constraint queue_job_history.queue_job_times_finite: CHECK ((((date_created >= '0001-01-02 00:00:00+00'::timestamp with time zone) AND (date_created <= '9999-12-30 00:00:00+00'::timestamp with time zone)) AND ((eta IS NULL) OR ((eta >= '0001-01-02 00:00:00+00'::timestamp with time zone) AND (eta <= '9999-12-30 00:00:00+00'::timestamp with time zone))) AND ((date_enqueued IS NULL) OR ((date_enqueued >= '0001-01-02 00:00:00+00'::timestamp with time zone) AND (date_enqueued <= '9999-12-30 00:00:00+00'::timestamp with time zone))) AND ((date_started IS NULL) OR ((date_started >= '0001-01-02 00:00:00+00'::timestamp with time zone) AND (date_started <= '9999-12-30 00:00:00+00'::timestamp with time zone))) AND ((date_done IS NULL) OR ((date_done >= '0001-01-02 00:00:00+00'::timestamp with time zone) AND (date_done <= '9999-12-30 00:00:00+00'::timestamp with time zone))) AND ((date_failed IS NULL) OR ((date_failed >= '0001-01-02 00:00:00+00'::timestamp with time zone) AND (date_failed <= '9999-12-30 00:00:00+00'::timestamp with time zone)))))
constraint queue_job_live.queue_job_concurrency_key_length: CHECK ((length(concurrency_key) <= 255))
constraint queue_job_live.queue_job_timeout_finite: CHECK (((timeout IS NULL) OR ((timeout > (0)::double precision) AND (timeout < 'Infinity'::double precision))))
constraint queue_job_live.queue_job_times_finite: CHECK ((((date_created >= '0001-01-02 00:00:00+00'::timestamp with time zone) AND (date_created <= '9999-12-30 00:00:00+00'::timestamp with time zone)) AND ((eta IS NULL) OR ((eta >= '0001-01-02 00:00:00+00'::timestamp with time zone) AND (eta <= '9999-12-30 00:00:00+00'::timestamp with time zone))) AND ((date_enqueued IS NULL) OR ((date_enqueued >= '0001-01-02 00:00:00+00'::timestamp with time zone) AND (date_enqueued <= '9999-12-30 00:00:00+00'::timestamp with time zone))) AND ((date_started IS NULL) OR ((date_started >= '0001-01-02 00:00:00+00'::timestamp with time zone) AND (date_started <= '9999-12-30 00:00:00+00'::timestamp with time zone))) AND ((date_done IS NULL) OR ((date_done >= '0001-01-02 00:00:00+00'::timestamp with time zone) AND (date_done <= '9999-12-30 00:00:00+00'::timestamp with time zone))) AND ((date_failed IS NULL) OR ((date_failed >= '0001-01-02 00:00:00+00'::timestamp with time zone) AND (date_failed <= '9999-12-30 00:00:00+00'::timestamp with time zone)))))
constraint queue_job_log.queue_job_log_pkey: PRIMARY KEY (job_uuid, attempt)
constraint queue_rate_start.queue_rate_start_starts_check: CHECK ((starts > 0))
constraint queue_run_schedule.queue_run_schedule_pkey: PRIMARY KEY (name)
constraint queue_run_schedule.queue_run_schedule_times_finite: CHECK ((((last_slot IS NULL) OR ((last_slot >= '0001-01-02 00:00:00+00'::timestamp with time zone) AND (last_slot <= '9999-12-30 00:00:00+00'::timestamp with time zone))) AND ((date_created >= '0001-01-02 00:00:00+00'::timestamp with time zone) AND (date_created <= '9999-12-30 00:00:00+00'::timestamp with time zone)) AND ((date_updated >= '0001-01-02 00:00:00+00'::timestamp with time zone) AND (date_updated <= '9999-12-30 00:00:00+00'::timestamp with time zone))))
constraint queue_schedule.queue_schedule_pkey: PRIMARY KEY (name)
constraint queue_schedule.queue_schedule_times_finite: CHECK (((last_slot IS NULL) OR ((last_slot >= '0001-01-02 00:00:00+00'::timestamp with time zone) AND (last_slot <= '9999-12-30 00:00:00+00'::timestamp with time zone)))) NOT VALID
constraint queue_subscription.queue_subscription_channel_check: CHECK ((length(channel) <= 512))
constraint queue_subscription.queue_subscription_func_name_check: CHECK ((length(func_name) <= 512))
constraint queue_subscription.queue_subscription_pkey: PRIMARY KEY (id)
constraint queue_subscription.queue_subscription_target_check: CHECK ((length(target) <= 2048))
constraint queue_subscription.queue_subscription_target_kind_check: CHECK ((target_kind = ANY (ARRAY['webhook'::text, 'job'::text])))
constraint queue_worker.queue_worker_concurrency_positive: CHECK ((concurrency >= 0))
constraint queue_worker.queue_worker_pkey: PRIMARY KEY (id)
constraint queue_worker.queue_worker_times_finite: CHECK ((((date_started >= '0001-01-02 00:00:00+00'::timestamp with time zone) AND (date_started <= '9999-12-30 00:00:00+00'::timestamp with time zone)) AND ((heartbeat >= '0001-01-02 00:00:00+00'::timestamp with time zone) AND (heartbeat <= '9999-12-30 00:00:00+00'::timestamp with time zone)) AND ((date_stopped IS NULL) OR ((date_stopped >= '0001-01-02 00:00:00+00'::timestamp with time zone) AND (date_stopped <= '9999-12-30 00:00:00+00'::timestamp with time zone))))) NOT VALID
constraint queuejob_migration.queuejob_migration_pkey: PRIMARY KEY (version)
index queue_batch_created: CREATE INDEX queue_batch_created ON public.queue_batch USING btree (date_created)
index queue_batch_job_job: CREATE INDEX queue_batch_job_job ON public.queue_batch_job USING btree (job_uuid)
index queue_batch_job_pkey: CREATE UNIQUE INDEX queue_batch_job_pkey ON public.queue_batch_job USING btree (batch_uuid, job_uuid)
index queue_batch_open: CREATE INDEX queue_batch_open ON public.queue_batch USING btree (date_created) WHERE (state = 'open'::text)
index queue_batch_pkey: CREATE UNIQUE INDEX queue_batch_pkey ON public.queue_batch USING btree (uuid)
index queue_channel_pkey: CREATE UNIQUE INDEX queue_channel_pkey ON public.queue_channel USING btree (name)
index queue_config_pkey: CREATE UNIQUE INDEX queue_config_pkey ON public.queue_config USING btree (id)
index queue_job_cancelled: CREATE INDEX queue_job_cancelled ON public.queue_job_history USING btree (id) WHERE (state = 'cancelled'::text)
index queue_job_dependency_child: CREATE INDEX queue_job_dependency_child ON public.queue_job_dependency USING btree (child_uuid)
index queue_job_dependency_pkey: CREATE UNIQUE INDEX queue_job_dependency_pkey ON public.queue_job_dependency USING btree (parent_uuid, child_uuid)
index queue_job_enqueued: CREATE INDEX queue_job_enqueued ON public.queue_job_live USING btree (id) WHERE (state = 'enqueued'::text)
index queue_job_failed: CREATE INDEX queue_job_failed ON public.queue_job_live USING btree (channel) WHERE (state = 'failed'::text)
index queue_job_failed_at: CREATE INDEX queue_job_failed_at ON ONLY public.queue_job USING btree (date_failed) WHERE (date_failed IS NOT NULL)
index queue_job_failed_by_exception: CREATE INDEX queue_job_failed_by_exception ON public.queue_job_live USING btree (exc_name) WHERE (state = 'failed'::text)
index queue_job_finished: CREATE INDEX queue_job_finished ON public.queue_job_history USING btree (date_done, id) INCLUDE (channel, state)
index queue_job_function_pkey: CREATE UNIQUE INDEX queue_job_function_pkey ON public.queue_job_function USING btree (name)
index queue_job_graph: CREATE INDEX queue_job_graph ON ONLY public.queue_job USING btree (graph_uuid) WHERE (graph_uuid IS NOT NULL)
index queue_job_history_date_failed_idx: CREATE INDEX queue_job_history_date_failed_idx ON public.queue_job_history USING btree (date_failed) WHERE (date_failed IS NOT NULL)
index queue_job_history_graph_uuid_idx: CREATE INDEX queue_job_history_graph_uuid_idx ON public.queue_job_history USING btree (graph_uuid) WHERE (graph_uuid IS NOT NULL)
index queue_job_history_id: CREATE INDEX queue_job_history_id ON public.queue_job_history USING btree (id)
index queue_job_history_uuid: CREATE INDEX queue_job_history_uuid ON public.queue_job_history USING btree (uuid)
index queue_job_identity: CREATE UNIQUE INDEX queue_job_identity ON public.queue_job_live USING btree (identity_key) WHERE ((identity_key IS NOT NULL) AND (state = ANY (ARRAY['pending'::text, 'enqueued'::text, 'wait_dependencies'::text])))
index queue_job_live_date_failed_idx: CREATE INDEX queue_job_live_date_failed_idx ON public.queue_job_live USING btree (date_failed) WHERE (date_failed IS NOT NULL)
index queue_job_live_graph_uuid_idx: CREATE INDEX queue_job_live_graph_uuid_idx ON public.queue_job_live USING btree (graph_uuid) WHERE (graph_uuid IS NOT NULL)
index queue_job_live_id: CREATE UNIQUE INDEX queue_job_live_id ON public.queue_job_live USING btree (id)
index queue_job_live_uuid: CREATE UNIQUE INDEX queue_job_live_uuid ON public.queue_job_live USING btree (uuid)
index queue_job_log_pkey: CREATE UNIQUE INDEX queue_job_log_pkey ON public.queue_job_log USING btree (job_uuid, attempt)
index queue_job_minute_at: CREATE INDEX queue_job_minute_at ON public.queue_job_minute USING btree (minute)
index queue_job_minute_fresh: CREATE INDEX queue_job_minute_fresh ON public.queue_job_minute USING btree (minute, func_name, duration, latency) WHERE fresh
index queue_job_next: CREATE INDEX queue_job_next ON public.queue_job_live USING btree (priority, date_created, id) INCLUDE (channel, eta) WHERE (state = 'pending'::text)
index queue_job_pending: CREATE INDEX queue_job_pending ON public.queue_job_live USING btree (channel, priority, date_created, id) INCLUDE (eta) WHERE (state = 'pending'::text)
index queue_job_pending_by_key: CREATE INDEX queue_job_pending_by_key ON public.queue_job_live USING btree (channel, concurrency_key, priority, date_created, id) INCLUDE (eta) WHERE ((state = 'pending'::text) AND (concurrency_key <> ''::text))
index queue_job_started: CREATE INDEX queue_job_started ON public.queue_job_live USING btree (worker_id, channel) WHERE (state = 'started'::text)
index queue_job_started_by_key: CREATE INDEX queue_job_started_by_key ON public.queue_job_live USING btree (channel, concurrency_key) WHERE ((state = 'started'::text) AND (concurrency_key <> ''::text))
index queue_job_waiter_uuid: CREATE INDEX queue_job_waiter_uuid ON public.queue_job_waiter USING btree (uuid)
index queue_rate_start_window: CREATE INDEX queue_rate_start_window ON public.queue_rate_start USING btree (channel, started_at)
index queue_run_schedule_pkey: CREATE UNIQUE INDEX queue_run_schedule_pkey ON public.queue_run_schedule USING btree (name)
index queue_schedule_pkey: CREATE UNIQUE INDEX queue_schedule_pkey ON public.queue_schedule USING btree (name)
index queue_subscription_pkey: CREATE UNIQUE INDEX queue_subscription_pkey ON public.queue_subscription USING btree (id)
index queue_worker_alive: CREATE INDEX queue_worker_alive ON public.queue_worker USING btree (heartbeat) WHERE (state = 'alive'::text)
index queue_worker_pkey: CREATE UNIQUE INDEX queue_worker_pkey ON public.queue_worker USING btree (id)
index queuejob_migration_pkey: CREATE UNIQUE INDEX queuejob_migration_pkey ON public.queuejob_migration USING btree (version)
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
migration 17: history_partition
migration 18: tallies
migration 19: process_space
