-- Batches (queue_batch, queue_batch_job): written with their jobs by queuejob.batch, in
-- the session's transaction; concluded by the workers (a compare-and-set on state, in
-- the transaction that delays the callback); read by the operations. Uuid lists are
-- arrays.

-- name: insert_batch
INSERT INTO queue_batch (uuid, name, state, date_created, on_done, on_failure)
VALUES (%(uuid)s::uuid, %(name)s, 'open', now(), %(on_done)s, %(on_failure)s);

-- name: add_batch_jobs
-- The jobs of uuids that are stored (a job whose identity key another job held was not)
-- join the batch; the uuids that joined.
INSERT INTO queue_batch_job (batch_uuid, job_uuid)
SELECT %(batch_uuid)s::uuid, uuid FROM queue_job WHERE uuid = ANY(%(uuids)s::uuid[])
ON CONFLICT DO NOTHING
RETURNING job_uuid;

-- name: open_batches
-- Open batches, oldest first, from after the cursor (after_created, after_uuid; NULL:
-- from the start): what a worker looks at.
SELECT uuid, name, date_created, on_done, on_failure FROM queue_batch
WHERE state = 'open'
  AND (%(after_uuid)s::uuid IS NULL
       OR (date_created, uuid) > (%(after_created)s::timestamptz, %(after_uuid)s::uuid))
ORDER BY date_created, uuid
LIMIT %(limit)s;

-- name: batch_counts
-- The jobs of the batches of uuids, counted per state.
SELECT member.batch_uuid AS batch_uuid, job.state AS state, count(*) AS jobs
FROM queue_batch_job AS member JOIN queue_job AS job ON job.uuid = member.job_uuid
WHERE member.batch_uuid = ANY(%(uuids)s::uuid[])
GROUP BY member.batch_uuid, job.state;

-- name: conclude_batch
-- Compare-and-set: of the workers that saw the batch open, one concludes it, and only
-- that one delays its callback (in the same transaction; the others wait on the row,
-- then find it concluded).
UPDATE queue_batch SET state = %(state)s, date_concluded = now(),
                       callback_error = %(error)s
WHERE uuid = %(uuid)s::uuid AND state = 'open'
RETURNING uuid;

-- name: batch_callback
UPDATE queue_batch SET callback_uuid = %(callback_uuid)s WHERE uuid = %(uuid)s::uuid;

-- name: batches
-- The batches, newest first (state NULL: all).
SELECT uuid, name, state, date_created, date_concluded, callback_uuid, callback_error,
       on_done IS NOT NULL AS has_on_done, on_failure IS NOT NULL AS has_on_failure
FROM queue_batch
WHERE %(state)s::text IS NULL OR state = %(state)s
ORDER BY date_created DESC, uuid
LIMIT %(limit)s;

-- name: batch
SELECT uuid, name, state, date_created, date_concluded, callback_uuid, callback_error,
       on_done, on_failure
FROM queue_batch WHERE uuid = %(uuid)s::uuid;

-- name: batch_jobs
-- A batch's jobs, in the order they were stored.
SELECT job.uuid, job.state, job.func_name, job.description, job.date_created,
       job.date_done, job.exc_name, job.retry, job.max_retries
FROM queue_batch_job AS member JOIN queue_job AS job ON job.uuid = member.job_uuid
WHERE member.batch_uuid = %(uuid)s::uuid
ORDER BY job.id
LIMIT %(limit)s;
