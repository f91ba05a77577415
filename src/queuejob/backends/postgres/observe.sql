-- Watching jobs run: their progress reports and what they logged, per attempt.

-- name: save_progress
-- (batch) Running attempts' latest progress reports; fenced on the attempt (a report of
-- an attempt that was rescued meanwhile changes nothing; one written after the attempt
-- ended is its last report). Columns of no index: the row stays on its page.
UPDATE queue_job AS job SET progress_done = report.done, progress_total = report.total,
    progress_message = report.message, progress_attempt = report.attempt,
    date_progress = now()
FROM unnest(%(uuid)s::uuid[], %(attempt)s::int[], %(done)s::bigint[], %(total)s::bigint[],
            %(message)s::text[]) AS report(uuid, attempt, done, total, message)
WHERE job.uuid = report.uuid AND job.attempt = report.attempt;

-- name: save_job_log
-- (batch) What attempts logged, written with their outcomes.
INSERT INTO queue_job_log (job_uuid, attempt, lines, dropped)
SELECT * FROM unnest(%(uuid)s::uuid[], %(attempt)s::int[], %(lines)s::text[],
                     %(dropped)s::int[])
ON CONFLICT (job_uuid, attempt) DO UPDATE SET lines = excluded.lines,
    dropped = excluded.dropped;

-- name: job_logs
-- What each attempt of a job logged, the last attempt first.
SELECT attempt, lines, dropped FROM queue_job_log
WHERE job_uuid = %(uuid)s
ORDER BY attempt DESC
LIMIT %(limit)s;
