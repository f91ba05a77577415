-- Subscriptions to failures: when a job of a channel (or its subchannels) or of a job
-- function fails for good, a message goes to a webhook, or a job function of the
-- subscriber's choice is delayed with the failed job's uuid.
CREATE TABLE queue_subscription (
    id            INTEGER PRIMARY KEY,
    channel       TEXT,             -- NULL: every channel
    func_name     TEXT,             -- NULL: every job function
    target_kind   TEXT NOT NULL,    -- 'webhook' or 'job'
    target        TEXT NOT NULL,    -- the URL, or the job function's module.name
    date_created  REAL NOT NULL
);
