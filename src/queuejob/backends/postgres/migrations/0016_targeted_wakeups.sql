-- Many workers on one server (deployment guide: docs/deployment.md).
--
-- A new job wakes one worker, not all: the notification's payload is a token (the
-- inserting transaction's id), and of the live workers that take jobs, the one whose
-- rank is the token modulo their number claims (core/wakeups.py). Several inserts in
-- one transaction send the same payload, which PostgreSQL delivers once.
CREATE OR REPLACE FUNCTION queue_job_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('queuejob', mod(txid_current(), 1000000000)::text);
    RETURN NULL;
END
$$;

-- What a worker holds, for `queuejob workers`: the supervisor it runs under (NULL:
-- alone), how it is woken ('own' LISTEN connection, 'shared' through its supervisor,
-- 'none': polling) and the most connections its jobs' sessions may hold.
ALTER TABLE queue_worker ADD COLUMN supervisor_pid integer;
ALTER TABLE queue_worker ADD COLUMN listener text;
ALTER TABLE queue_worker ADD COLUMN job_connections integer;
