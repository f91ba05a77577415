-- Named queries of the PostgreSQL dialect for debounced jobs.
-- Same names and parameters as sqlite/debounce.sql.

-- name: debounce_job
-- A debounced delay() finds the pending job of the same function holding its identity
-- key: that job takes the new arguments (and description, when one is given) and waits
-- debounce seconds from now (the server's clock). No row when no such job holds
-- the key. A concurrent UPDATE of the same row is waited for, then the state is tested
-- again on the row it left: the last call's arguments win, and a job a worker took
-- meanwhile is not changed. The repeated state test lets the partial unique index on
-- identity keys find the row.
UPDATE queue_job SET model_name = %(model_name)s, args = %(args)s, kwargs = %(kwargs)s,
    description = coalesce(%(new_description)s::text, description),
    eta = now() + make_interval(secs => %(debounce)s::float8)
WHERE identity_key = %(identity_key)s AND func_name = %(func_name)s AND state = 'pending'
  AND state IN ('pending', 'enqueued', 'wait_dependencies')
RETURNING uuid;
