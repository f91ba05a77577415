-- The original's argument convention (connector 9.0): a job's stored arguments begin with
-- its model name, and its function is called as func(session, *args, **kwargs). Jobs
-- stored before were called as func(session, model_name, *args, **kwargs): their model
-- name (NULL included, it was passed as None) now leads their arguments, so that they
-- run exactly as before. Jobs of Django tasks never got a model name: left as they are.
UPDATE queue_job
SET args = '[' || json_quote(model_name)
           || CASE WHEN args = '[]' THEN ']' ELSE ',' || substr(args, 2) END
WHERE typeof(args) = 'text' AND substr(args, 1, 1) = '['
  AND typeof(model_name) IN ('text', 'null')
  AND (typeof(context) <> 'text' OR instr(context, '"django_task"') = 0);
