-- Tallies of the finished jobs, kept exact by triggers as jobs change: statistics, the
-- metrics, the overview's chart and the functions page read them instead of counting
-- the history (millions of rows on a busy queue).
--
-- queue_job_tally: per channel and finished state (done, cancelled), the jobs, the sum
-- of their attempts and how many failed at least once.
-- queue_job_minute: the done jobs per minute of date_done (minutes since the epoch),
-- function, and bucket of the metrics' histograms of run time ("duration") and of queue
-- latency ("latency"; both -1 for a job done without being started), with the sums of
-- both. Kept for the last days only (the longest window read,
-- queuejob.core.tallies.KEEP_MINUTES).
--
-- One writer at a time: each tally row is updated in place (an upsert per finished job).

CREATE TABLE queue_job_tally (
    channel   TEXT    NOT NULL,
    state     TEXT    NOT NULL,
    jobs      INTEGER NOT NULL,
    attempts  INTEGER NOT NULL,
    failed    INTEGER NOT NULL,
    PRIMARY KEY (channel, state)
);

CREATE TABLE queue_job_minute (
    minute            INTEGER NOT NULL,
    func_name         TEXT    NOT NULL,
    duration          INTEGER NOT NULL,
    latency           INTEGER NOT NULL,
    jobs              INTEGER NOT NULL,
    duration_seconds  REAL    NOT NULL,
    latency_seconds   REAL    NOT NULL,
    PRIMARY KEY (minute, func_name, duration, latency)
);

-- the histogram's upper bounds, in seconds (queuejob.metrics.BUCKETS): a value's bucket
-- is how many bounds are <= it
CREATE TABLE queue_job_bound (bound REAL PRIMARY KEY);
INSERT INTO queue_job_bound VALUES
    (0.005), (0.025), (0.1), (0.5), (1), (5), (30), (60), (300), (1800), (3600);

-- what a done job adds to queue_job_minute: its minute, run time and queue latency (from
-- when it became due), with their buckets (-1: never started); no row for another job
CREATE VIEW queue_job_done AS
SELECT id, CAST(date_done / 60 AS INTEGER) AS minute, func_name,
       CASE WHEN d IS NULL THEN -1
            ELSE (SELECT count(*) FROM queue_job_bound WHERE bound <= d) END AS duration,
       CASE WHEN l IS NULL THEN -1
            ELSE (SELECT count(*) FROM queue_job_bound WHERE bound <= l) END AS latency,
       coalesce(d, 0) AS duration_seconds, coalesce(l, 0) AS latency_seconds
FROM (SELECT id, date_done, func_name, date_done - date_started AS d,
             max(date_started - CASE WHEN eta IS NULL OR eta < date_created
                                     THEN date_created ELSE eta END, 0) AS l
      FROM queue_job WHERE state = 'done' AND date_done IS NOT NULL);

-- a job counted when it becomes finished (or is stored finished), uncounted when it
-- stops being finished or is removed: the old row's share before an update or a delete
-- (read from the row still there), the new row's after an insert or an update
CREATE TRIGGER queue_job_tally_came_insert AFTER INSERT ON queue_job
WHEN NEW.state IN ('done', 'cancelled')
BEGIN
    INSERT INTO queue_job_tally VALUES (NEW.channel, NEW.state, 1, NEW.attempt,
                                        (NEW.date_failed IS NOT NULL))
    ON CONFLICT (channel, state) DO UPDATE SET jobs = jobs + excluded.jobs,
        attempts = attempts + excluded.attempts, failed = failed + excluded.failed;
    INSERT INTO queue_job_minute
    SELECT minute, func_name, duration, latency, 1, duration_seconds, latency_seconds
    FROM queue_job_done WHERE id = NEW.id
    ON CONFLICT (minute, func_name, duration, latency) DO UPDATE SET jobs = jobs + excluded.jobs,
        duration_seconds = duration_seconds + excluded.duration_seconds,
        latency_seconds = latency_seconds + excluded.latency_seconds;
END;

CREATE TRIGGER queue_job_tally_came_update AFTER UPDATE ON queue_job
WHEN NEW.state IN ('done', 'cancelled')
BEGIN
    INSERT INTO queue_job_tally VALUES (NEW.channel, NEW.state, 1, NEW.attempt,
                                        (NEW.date_failed IS NOT NULL))
    ON CONFLICT (channel, state) DO UPDATE SET jobs = jobs + excluded.jobs,
        attempts = attempts + excluded.attempts, failed = failed + excluded.failed;
    INSERT INTO queue_job_minute
    SELECT minute, func_name, duration, latency, 1, duration_seconds, latency_seconds
    FROM queue_job_done WHERE id = NEW.id
    ON CONFLICT (minute, func_name, duration, latency) DO UPDATE SET jobs = jobs + excluded.jobs,
        duration_seconds = duration_seconds + excluded.duration_seconds,
        latency_seconds = latency_seconds + excluded.latency_seconds;
END;

CREATE TRIGGER queue_job_tally_went_update BEFORE UPDATE ON queue_job
WHEN OLD.state IN ('done', 'cancelled')
BEGIN
    INSERT INTO queue_job_tally VALUES (OLD.channel, OLD.state, -1, -OLD.attempt,
                                        -(OLD.date_failed IS NOT NULL))
    ON CONFLICT (channel, state) DO UPDATE SET jobs = jobs + excluded.jobs,
        attempts = attempts + excluded.attempts, failed = failed + excluded.failed;
    INSERT INTO queue_job_minute
    SELECT minute, func_name, duration, latency, -1, -duration_seconds, -latency_seconds
    FROM queue_job_done WHERE id = OLD.id
    ON CONFLICT (minute, func_name, duration, latency) DO UPDATE SET jobs = jobs + excluded.jobs,
        duration_seconds = duration_seconds + excluded.duration_seconds,
        latency_seconds = latency_seconds + excluded.latency_seconds;
END;

CREATE TRIGGER queue_job_tally_went_delete BEFORE DELETE ON queue_job
WHEN OLD.state IN ('done', 'cancelled')
BEGIN
    INSERT INTO queue_job_tally VALUES (OLD.channel, OLD.state, -1, -OLD.attempt,
                                        -(OLD.date_failed IS NOT NULL))
    ON CONFLICT (channel, state) DO UPDATE SET jobs = jobs + excluded.jobs,
        attempts = attempts + excluded.attempts, failed = failed + excluded.failed;
    INSERT INTO queue_job_minute
    SELECT minute, func_name, duration, latency, -1, -duration_seconds, -latency_seconds
    FROM queue_job_done WHERE id = OLD.id
    ON CONFLICT (minute, func_name, duration, latency) DO UPDATE SET jobs = jobs + excluded.jobs,
        duration_seconds = duration_seconds + excluded.duration_seconds,
        latency_seconds = latency_seconds + excluded.latency_seconds;
END;

-- the history there is; minutes of the last two days only (KEEP_MINUTES)
INSERT INTO queue_job_tally
SELECT channel, state, count(*), coalesce(sum(attempt), 0), count(date_failed)
FROM queue_job INDEXED BY queue_job_finished
WHERE state IN ('done', 'cancelled') GROUP BY channel, state;
INSERT INTO queue_job_minute
SELECT minute, func_name, duration, latency, count(*), sum(duration_seconds),
       sum(latency_seconds)
FROM queue_job_done
WHERE minute >= CAST(strftime('%s', 'now') / 60 AS INTEGER) - 2880
GROUP BY 1, 2, 3, 4;
