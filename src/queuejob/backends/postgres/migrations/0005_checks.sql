-- Values every reader can use, checked by the database itself, whoever writes the row.
-- queuejob writes only such values; a row written by hand or by another tool with an
-- infinite or out-of-range time (which psycopg cannot read back: a claim returning it
-- would fail), or an infinite or NaN number of seconds, is refused at write.
-- NOT VALID: existing rows are not scanned (no long lock on a large table), new and
-- updated rows are checked.

ALTER TABLE queue_job
    ADD CONSTRAINT queue_job_times_finite CHECK (
        date_created BETWEEN '0001-01-02' AND '9999-12-30'
        AND (eta IS NULL OR eta BETWEEN '0001-01-02' AND '9999-12-30')
        AND (date_enqueued IS NULL OR date_enqueued BETWEEN '0001-01-02' AND '9999-12-30')
        AND (date_started IS NULL OR date_started BETWEEN '0001-01-02' AND '9999-12-30')
        AND (date_done IS NULL OR date_done BETWEEN '0001-01-02' AND '9999-12-30')
        AND (date_failed IS NULL OR date_failed BETWEEN '0001-01-02' AND '9999-12-30')
    ) NOT VALID,
    ADD CONSTRAINT queue_job_timeout_finite CHECK (
        timeout IS NULL OR (timeout > 0 AND timeout < 'Infinity'::float8)) NOT VALID;

ALTER TABLE queue_channel
    ADD CONSTRAINT queue_channel_values_finite CHECK (
        throttle >= 0 AND throttle < 'Infinity'::float8
        AND (removal_interval IS NULL
             OR (removal_interval >= 0 AND removal_interval < 'Infinity'::float8))
        AND (last_started IS NULL OR last_started BETWEEN '0001-01-02' AND '9999-12-30')
    ) NOT VALID;

ALTER TABLE queue_worker
    ADD CONSTRAINT queue_worker_times_finite CHECK (
        date_started BETWEEN '0001-01-02' AND '9999-12-30'
        AND heartbeat BETWEEN '0001-01-02' AND '9999-12-30'
        AND (date_stopped IS NULL OR date_stopped BETWEEN '0001-01-02' AND '9999-12-30')
    ) NOT VALID;

ALTER TABLE queue_schedule
    ADD CONSTRAINT queue_schedule_times_finite CHECK (
        last_slot IS NULL OR last_slot BETWEEN '0001-01-02' AND '9999-12-30') NOT VALID;
