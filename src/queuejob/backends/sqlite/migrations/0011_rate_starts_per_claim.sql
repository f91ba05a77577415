-- One row per claim and rate-limited channel, counting the jobs it started there
-- (starts), instead of one row per job: a window's count reads a claim's row once.
ALTER TABLE queue_rate_start ADD COLUMN starts INTEGER NOT NULL DEFAULT 1 CHECK (starts > 0);
