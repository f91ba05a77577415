-- Batches (queue_batch, queue_batch_job): written with their jobs by queuejob.batch, in
-- the session's transaction; concluded by the workers (a compare-and-set on state, in
-- the transaction that delays the callback); read by the operations. Uuid lists are JSON
-- arrays (json_each).

-- name: insert_batch
INSERT INTO queue_batch (uuid, name, state, date_created, on_done, on_failure)
VALUES (:uuid, :name, 'open', :now, :on_done, :on_failure);

-- name: add_batch_jobs
-- The jobs of :uuids that are stored (a job whose identity key another job held was not)
-- join the batch; the uuids that joined.
INSERT INTO queue_batch_job (batch_uuid, job_uuid)
SELECT :batch_uuid, uuid FROM queue_job WHERE uuid IN (SELECT value FROM json_each(:uuids))
ON CONFLICT DO NOTHING
RETURNING job_uuid;

-- name: open_batches
-- Open batches, oldest first, from after the cursor (:after_created, :after_uuid; NULL:
-- from the start): what a worker looks at.
SELECT uuid, name, date_created, on_done, on_failure FROM queue_batch
WHERE state = 'open'
  AND (:after_uuid IS NULL OR date_created > :after_created
       OR (date_created = :after_created AND uuid > :after_uuid))
ORDER BY date_created, uuid
LIMIT :limit;

-- name: batch_counts
-- The jobs of the batches of :uuids, counted per state.
SELECT member.batch_uuid AS batch_uuid, job.state AS state, count(*) AS jobs
FROM queue_batch_job AS member JOIN queue_job AS job ON job.uuid = member.job_uuid
WHERE member.batch_uuid IN (SELECT value FROM json_each(:uuids))
GROUP BY member.batch_uuid, job.state;

-- name: conclude_batch
-- Compare-and-set: of the workers that saw the batch open, one concludes it, and only
-- that one delays its callback (in the same transaction).
UPDATE queue_batch SET state = :state, date_concluded = :now, callback_error = :error
WHERE uuid = :uuid AND state = 'open'
RETURNING uuid;

-- name: batch_callback
UPDATE queue_batch SET callback_uuid = :callback_uuid WHERE uuid = :uuid;

-- name: batches
-- The batches, newest first (:state NULL: all).
SELECT uuid, name, state, date_created, date_concluded, callback_uuid, callback_error,
       on_done IS NOT NULL AS has_on_done, on_failure IS NOT NULL AS has_on_failure
FROM queue_batch
WHERE :state IS NULL OR state = :state
ORDER BY date_created DESC, uuid
LIMIT :limit;

-- name: batch
SELECT uuid, name, state, date_created, date_concluded, callback_uuid, callback_error,
       on_done, on_failure
FROM queue_batch WHERE uuid = :uuid;

-- name: batch_jobs
-- A batch's jobs, in the order they were stored.
SELECT job.uuid, job.state, job.func_name, job.description, job.date_created,
       job.date_done, job.exc_name, job.retry, job.max_retries
FROM queue_batch_job AS member JOIN queue_job AS job ON job.uuid = member.job_uuid
WHERE member.batch_uuid = :uuid
ORDER BY job.id
LIMIT :limit;
