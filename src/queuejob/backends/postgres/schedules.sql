-- Schedules defined at run time (queue_run_schedule): their definitions, written by
-- people (the operations) and read by the workers, who move each one's last slot by a
-- compare-and-set (one job per slot across all workers).

-- name: run_schedules
SELECT * FROM queue_run_schedule ORDER BY name;

-- name: run_schedule
SELECT * FROM queue_run_schedule WHERE name = %(name)s;

-- name: add_run_schedule
-- A name already taken adds nothing (no row returned).
INSERT INTO queue_run_schedule (name, cron, func_name, args, kwargs, channel, timezone,
                                missed, missed_window, paused, run_requested, last_slot,
                                date_created, date_updated)
VALUES (%(name)s, %(cron)s, %(func_name)s, %(args)s, %(kwargs)s, %(channel)s,
        %(timezone)s, %(missed)s, %(missed_window)s, %(paused)s, 0, %(last_slot)s, now(),
        now())
ON CONFLICT (name) DO NOTHING
RETURNING name;

-- name: edit_run_schedule
-- The whole definition; the last slot moves to last_slot when given (a new cron or time
-- zone starts from its next slot).
UPDATE queue_run_schedule
SET cron = %(cron)s, func_name = %(func_name)s, args = %(args)s, kwargs = %(kwargs)s,
    channel = %(channel)s, timezone = %(timezone)s, missed = %(missed)s,
    missed_window = %(missed_window)s,
    last_slot = COALESCE(%(last_slot)s::timestamptz, last_slot), date_updated = now()
WHERE name = %(name)s
RETURNING name;

-- name: pause_run_schedule
-- Pause, or resume from the next slot (last_slot): the slots of a pause never run.
UPDATE queue_run_schedule
SET paused = %(paused)s, last_slot = COALESCE(%(last_slot)s::timestamptz, last_slot),
    date_updated = now()
WHERE name = %(name)s
RETURNING name;

-- name: remove_run_schedule
DELETE FROM queue_run_schedule WHERE name = %(name)s RETURNING name;

-- name: request_run_schedule
-- 'run now': the next worker that registers the function delays one job.
UPDATE queue_run_schedule SET run_requested = run_requested + 1
WHERE name = %(name)s
RETURNING name;

-- name: take_run_request
-- Compare-and-set: of the workers that saw the request, one takes it and delays the job
-- (the others wait on the row, then find it taken).
UPDATE queue_run_schedule SET run_requested = 0
WHERE name = %(name)s AND run_requested = %(seen)s
RETURNING name;

-- name: advance_run_schedule
-- Compare-and-set: of the workers that saw the same last slot, one moves it, and only
-- that one delays the slots' jobs (in the same transaction; the others wait on the row,
-- then find it moved).
UPDATE queue_run_schedule SET last_slot = %(slot)s
WHERE name = %(name)s AND last_slot IS NOT DISTINCT FROM %(last)s::timestamptz
RETURNING name;
