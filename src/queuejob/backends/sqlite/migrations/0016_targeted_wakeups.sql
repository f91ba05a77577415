-- What a worker holds, for `queuejob workers`: the supervisor it runs under (NULL:
-- alone), how it is woken ('own' watcher, 'shared' through its supervisor, 'none':
-- polling) and the most connections its jobs' sessions may hold.
ALTER TABLE queue_worker ADD COLUMN supervisor_pid integer;
ALTER TABLE queue_worker ADD COLUMN listener text;
ALTER TABLE queue_worker ADD COLUMN job_connections integer;
