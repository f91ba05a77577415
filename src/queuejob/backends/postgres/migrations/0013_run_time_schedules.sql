-- Schedules defined at run time ('queuejob schedules add', the dashboard), beside the
-- schedules of code (@job(cron=...)), whose queue_schedule rows hold only the last slot
-- handled. A table of their own rather than columns on queue_schedule: a code schedule's
-- definition is its code, and a row of queue_schedule is created by the first worker that
-- sees one (start_schedule); a row of this table is a definition people write, edit and
-- remove, read back as data. Apart, removing a run-time schedule never touches a code
-- schedule of the same name, and a worker never takes a code schedule's bare state row
-- for a definition (nor the reverse). The compare-and-set that gives one job per slot
-- across all workers is the same, on this table's last_slot.
-- What a row holds is data: a value that does not make sense (written by hand) costs
-- that schedule only (it runs nothing and shows why). Texts are text, not jsonb, so that
-- the JSON read back is the JSON written and a bad one is shown as it is; the times are
-- checked by the database (psycopg cannot read an infinite time back: one such row
-- would cost every schedule's read).
CREATE TABLE queue_run_schedule (
    name           text PRIMARY KEY,
    cron           text NOT NULL,
    -- a job function's module.name: only workers that register it with @job run it
    func_name      text NOT NULL,
    -- JSON: a list, an object
    args           text NOT NULL DEFAULT '[]',
    kwargs         text NOT NULL DEFAULT '{}',
    channel        text,               -- NULL: the function's channel
    timezone       text NOT NULL DEFAULT 'UTC',
    -- slots missed while no worker ran: 'skip', 'once' or 'all' (within missed_window
    -- seconds, NULL: 'skip' 60s, 'all' every one)
    missed         text NOT NULL DEFAULT 'once',
    missed_window  double precision,
    paused         boolean NOT NULL DEFAULT false,
    -- 'run now' asked (a count): the next worker that registers the function delays a job
    run_requested  integer NOT NULL DEFAULT 0,
    -- the last slot handled (compare-and-set by the workers)
    last_slot      timestamptz,
    date_created   timestamptz NOT NULL,
    date_updated   timestamptz NOT NULL,
    CONSTRAINT queue_run_schedule_times_finite CHECK (
        (last_slot IS NULL OR last_slot BETWEEN '0001-01-02' AND '9999-12-30')
        AND date_created BETWEEN '0001-01-02' AND '9999-12-30'
        AND date_updated BETWEEN '0001-01-02' AND '9999-12-30')
);
