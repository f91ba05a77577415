-- Indexes of the dashboard (queuejob web) and the metrics, for databases of millions of
-- jobs. The jobs page reads one page at a time in creation order (keyset pagination on
-- id): each filter has an index that yields its jobs in that order, so that a page reads
-- about as many index entries as it shows, whatever the size of the table.

-- The default view hides done and cancelled jobs: the unfinished ones are few.
CREATE INDEX queue_job_unfinished ON queue_job (id) WHERE state NOT IN ('done', 'cancelled');
-- The jobs page filtered by state, by channel, by job function.
CREATE INDEX queue_job_state_id ON queue_job (state, id);
CREATE INDEX queue_job_channel_id ON queue_job (channel, id);
CREATE INDEX queue_job_func_id ON queue_job (func_name, id);
-- Jobs done and jobs failed per minute (the overview's chart, the metrics).
CREATE INDEX queue_job_done_at ON queue_job (date_done) WHERE state = 'done';
CREATE INDEX queue_job_failed_at ON queue_job (date_failed) WHERE date_failed IS NOT NULL;
