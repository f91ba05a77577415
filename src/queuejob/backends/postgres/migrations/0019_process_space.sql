-- A worker killed on a host is known dead as soon as another worker of the same host
-- looks, not after dead_after: the row names the space its pid means something in (the
-- kernel's boot id and the pid namespace; NULL where that cannot be told), and a worker
-- of the same space that finds no process behind that pid marks it dead
-- (worker/liveness.py).
ALTER TABLE queue_worker ADD COLUMN process_space text;
