-- The original's argument convention (connector 9.0): a job's stored arguments begin with
-- its model name, and its function is called as func(session, *args, **kwargs). Jobs
-- stored before were called as func(session, model_name, *args, **kwargs): their model
-- name (NULL included, it was passed as None) now leads their arguments, so that they
-- run exactly as before. Jobs of Django tasks never got a model name: left as they are.
UPDATE queue_job
SET args = '[' || coalesce(to_json(model_name)::text, 'null')
           || CASE WHEN args = '[]' THEN ']' ELSE ',' || substr(args, 2) END
WHERE left(args, 1) = '['
  AND (context IS NULL OR position('"django_task"' IN context) = 0);
