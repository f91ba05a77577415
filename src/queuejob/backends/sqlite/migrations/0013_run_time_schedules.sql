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
-- that schedule only (it runs nothing and shows why).
CREATE TABLE queue_run_schedule (
    name           TEXT PRIMARY KEY,
    cron           TEXT NOT NULL,
    -- a job function's module.name: only workers that register it with @job run it
    func_name      TEXT NOT NULL,
    -- JSON: a list, an object
    args           TEXT NOT NULL DEFAULT '[]',
    kwargs         TEXT NOT NULL DEFAULT '{}',
    channel        TEXT,               -- NULL: the function's channel
    timezone       TEXT NOT NULL DEFAULT 'UTC',
    -- slots missed while no worker ran: 'skip', 'once' or 'all' (within missed_window
    -- seconds, NULL: 'skip' 60s, 'all' every one)
    missed         TEXT NOT NULL DEFAULT 'once',
    missed_window  REAL,
    paused         INTEGER NOT NULL DEFAULT 0,
    -- 'run now' asked (a count): the next worker that registers the function delays a job
    run_requested  INTEGER NOT NULL DEFAULT 0,
    -- the last slot handled (compare-and-set by the workers)
    last_slot      REAL,
    date_created   REAL NOT NULL,
    date_updated   REAL NOT NULL
);
