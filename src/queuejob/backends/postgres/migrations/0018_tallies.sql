-- Tallies of the finished jobs, kept exact by triggers as jobs change: statistics, the
-- metrics, the overview's chart and the functions page read them instead of counting
-- the history (millions of rows on a busy queue).
--
-- queue_job_tally: per channel and finished state (done, cancelled), the jobs, the sum
-- of their attempts and how many failed at least once.
-- queue_job_minute: the done jobs per minute of date_done (minutes since the epoch),
-- function, and bucket of the metrics' histograms of run time ("duration") and of queue
-- latency ("latency"; both -1 for a job done without being started), with the sums of
-- both. Kept for the last days only (the longest window read, queuejob.core.tallies).
--
-- Both are written as deltas (rows added, never updated: concurrent outcome writes never
-- wait on one another for a tally row) and summed by the reads; a worker merges a key's
-- deltas every few seconds (rows marked fresh until then).
--
-- The triggers are statement triggers on queue_job: one insert per tally and statement,
-- from the rows the statement moved into, out of or within queue_job_history. Every
-- write of a finished job names queue_job (new jobs, pending, name queue_job_live).

CREATE TABLE queue_job_tally (
    channel text NOT NULL,
    state text NOT NULL,
    jobs bigint NOT NULL,
    attempts bigint NOT NULL,
    failed bigint NOT NULL
);

CREATE TABLE queue_job_minute (
    minute bigint NOT NULL,
    func_name text NOT NULL,
    duration integer NOT NULL,
    latency integer NOT NULL,
    jobs bigint NOT NULL,
    duration_seconds double precision NOT NULL,
    latency_seconds double precision NOT NULL,
    fresh boolean NOT NULL DEFAULT true
);
CREATE INDEX queue_job_minute_at ON queue_job_minute (minute);
CREATE INDEX queue_job_minute_fresh ON queue_job_minute (minute, func_name, duration, latency)
    WHERE fresh;

-- a value's bucket: how many of the histogram's upper bounds (seconds,
-- queuejob.metrics.BUCKETS) are <= it; -1 for none
CREATE FUNCTION queue_job_bucket(value double precision) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(width_bucket(value, '{0.005, 0.025, 0.1, 0.5, 1, 5, 30, 60, 300, 1800, 3600}'
                                        ::double precision[]), -1)
$$;

-- what a done job adds to queue_job_minute: its minute, run time and queue latency (from
-- when it became due), with their buckets; nothing for any other job
CREATE FUNCTION queue_job_done(job queue_job)
RETURNS TABLE (minute bigint, func_name text, duration integer, latency integer,
               duration_seconds double precision, latency_seconds double precision)
LANGUAGE sql IMMUTABLE AS $$
    SELECT floor(extract(epoch FROM job.date_done) / 60)::bigint, job.func_name,
           queue_job_bucket(m.d), queue_job_bucket(m.l), coalesce(m.d, 0), coalesce(m.l, 0)
    FROM (SELECT extract(epoch FROM job.date_done - job.date_started)::float8 AS d,
                 CASE WHEN job.date_started IS NOT NULL THEN greatest(
                     extract(epoch FROM job.date_started
                                        - greatest(job.eta, job.date_created))::float8, 0)
                 END AS l) AS m
    WHERE job.state = 'done' AND job.date_done IS NOT NULL
$$;

-- one function for the three triggers: "came" the rows a statement wrote, "went" those it
-- replaced or removed (an UPDATE moving a job between partitions shows it in both); a
-- statement without a finished job in either (a claim, a progress report) adds nothing
CREATE FUNCTION queue_job_tally_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO queue_job_tally (channel, state, jobs, attempts, failed)
        SELECT channel, state, count(*), coalesce(sum(attempt), 0), count(date_failed)
        FROM came WHERE state IN ('done', 'cancelled') GROUP BY channel, state;
        INSERT INTO queue_job_minute (minute, func_name, duration, latency, jobs,
                                      duration_seconds, latency_seconds)
        SELECT m.minute, m.func_name, m.duration, m.latency, count(*),
               sum(m.duration_seconds), sum(m.latency_seconds)
        FROM came, LATERAL queue_job_done(came) AS m GROUP BY 1, 2, 3, 4;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO queue_job_tally (channel, state, jobs, attempts, failed)
        SELECT channel, state, -count(*), -coalesce(sum(attempt), 0), -count(date_failed)
        FROM went WHERE state IN ('done', 'cancelled') GROUP BY channel, state;
        INSERT INTO queue_job_minute (minute, func_name, duration, latency, jobs,
                                      duration_seconds, latency_seconds)
        SELECT m.minute, m.func_name, m.duration, m.latency, -count(*),
               -sum(m.duration_seconds), -sum(m.latency_seconds)
        FROM went, LATERAL queue_job_done(went) AS m GROUP BY 1, 2, 3, 4;
    ELSIF EXISTS (SELECT 1 FROM came WHERE state IN ('done', 'cancelled'))
            OR EXISTS (SELECT 1 FROM went WHERE state IN ('done', 'cancelled')) THEN
        INSERT INTO queue_job_tally (channel, state, jobs, attempts, failed)
        SELECT channel, state, sum(jobs), sum(attempts), sum(failed) FROM (
            SELECT channel, state, 1 AS jobs, attempt AS attempts,
                   (date_failed IS NOT NULL)::int AS failed
            FROM came WHERE state IN ('done', 'cancelled')
            UNION ALL
            SELECT channel, state, -1, -attempt, -(date_failed IS NOT NULL)::int
            FROM went WHERE state IN ('done', 'cancelled')
        ) AS delta GROUP BY channel, state
        HAVING sum(jobs) <> 0 OR sum(attempts) <> 0 OR sum(failed) <> 0;
        INSERT INTO queue_job_minute (minute, func_name, duration, latency, jobs,
                                      duration_seconds, latency_seconds)
        SELECT minute, func_name, duration, latency, sum(jobs), sum(duration_seconds),
               sum(latency_seconds)
        FROM (
            SELECT m.*, 1 AS jobs FROM came, LATERAL queue_job_done(came) AS m
            UNION ALL
            SELECT m.minute, m.func_name, m.duration, m.latency, -m.duration_seconds,
                   -m.latency_seconds, -1
            FROM went, LATERAL queue_job_done(went) AS m
        ) AS delta GROUP BY 1, 2, 3, 4
        HAVING sum(jobs) <> 0 OR sum(duration_seconds) <> 0 OR sum(latency_seconds) <> 0;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER queue_job_tally_insert AFTER INSERT ON queue_job
    REFERENCING NEW TABLE AS came
    FOR EACH STATEMENT EXECUTE FUNCTION queue_job_tally_change();
CREATE TRIGGER queue_job_tally_update AFTER UPDATE ON queue_job
    REFERENCING OLD TABLE AS went NEW TABLE AS came
    FOR EACH STATEMENT EXECUTE FUNCTION queue_job_tally_change();
CREATE TRIGGER queue_job_tally_delete AFTER DELETE ON queue_job
    REFERENCING OLD TABLE AS went
    FOR EACH STATEMENT EXECUTE FUNCTION queue_job_tally_change();

-- the history there is (the triggers, created first, hold writes off until this commits);
-- minutes of the last two days only (queuejob.core.tallies.KEEP_MINUTES)
INSERT INTO queue_job_tally (channel, state, jobs, attempts, failed)
SELECT channel, state, count(*), coalesce(sum(attempt), 0), count(date_failed)
FROM queue_job_history GROUP BY channel, state;
INSERT INTO queue_job_minute (minute, func_name, duration, latency, jobs, duration_seconds,
                              latency_seconds, fresh)
SELECT m.minute, m.func_name, m.duration, m.latency, count(*), sum(m.duration_seconds),
       sum(m.latency_seconds), false
FROM queue_job AS job, LATERAL queue_job_done(job) AS m
WHERE job.state = 'done' AND job.date_done >= now() - interval '2 days'
GROUP BY 1, 2, 3, 4;
