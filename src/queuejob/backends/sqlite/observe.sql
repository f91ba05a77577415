-- Watching jobs run: their progress reports and what they logged, per attempt.

-- name: save_progress
-- A running attempt's latest progress report; fenced on the attempt (a report of an
-- attempt that was rescued meanwhile changes nothing; one written after the attempt
-- ended is its last report).
UPDATE queue_job SET progress_done = :done, progress_total = :total,
    progress_message = :message, progress_attempt = :attempt, date_progress = :now
WHERE uuid = :uuid AND attempt = :attempt;

-- name: save_job_log
-- What an attempt logged, written with its outcome.
INSERT INTO queue_job_log (job_uuid, attempt, lines, dropped)
VALUES (:uuid, :attempt, :lines, :dropped)
ON CONFLICT (job_uuid, attempt) DO UPDATE SET lines = excluded.lines,
    dropped = excluded.dropped;

-- name: job_logs
-- What each attempt of a job logged, the last attempt first.
SELECT attempt, lines, dropped FROM queue_job_log
WHERE job_uuid = :uuid
ORDER BY attempt DESC
LIMIT :limit;
