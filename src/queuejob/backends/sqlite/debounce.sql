-- Named queries of the SQLite dialect for debounced jobs.
-- Same names and parameters as postgres/debounce.sql.

-- name: debounce_job
-- A debounced delay() finds the pending job of the same function holding its identity
-- key: that job takes the new arguments (and description, when one is given) and waits
-- :debounce seconds from now. No row when no such job holds the key. The repeated
-- state test lets the partial unique index on identity keys find the row.
UPDATE queue_job SET model_name = :model_name, args = :args, kwargs = :kwargs,
    description = coalesce(:new_description, description),
    eta = :now + :debounce
WHERE identity_key = :identity_key AND func_name = :func_name AND state = 'pending'
  AND state IN ('pending', 'enqueued', 'wait_dependencies')
RETURNING uuid;
