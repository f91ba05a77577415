-- A worker's own number of job threads (its --concurrency), beside the channel rules
-- it declares for all workers (channels).
ALTER TABLE queue_worker ADD COLUMN concurrency integer
    CONSTRAINT queue_worker_concurrency_positive CHECK (concurrency >= 0);
