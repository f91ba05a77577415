-- Subscriptions to failures: when a job of a channel (or its subchannels) or of a job
-- function fails for good, a message goes to a webhook, or a job function of the
-- subscriber's choice is delayed with the failed job's uuid.
CREATE TABLE queue_subscription (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    channel       text CHECK (length(channel) <= 512),    -- NULL: every channel
    func_name     text CHECK (length(func_name) <= 512),  -- NULL: every job function
    target_kind   text        NOT NULL CHECK (target_kind IN ('webhook', 'job')),
    -- the URL, or the job function's module.name
    target        text        NOT NULL CHECK (length(target) <= 2048),
    date_created  timestamptz NOT NULL
);
