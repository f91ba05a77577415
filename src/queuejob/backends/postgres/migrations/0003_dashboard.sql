-- Indexes of the dashboard (queuejob web) and the metrics, for databases of millions of
-- jobs. They are partial: a full index is written at every change of a job's state and
-- slows the queue down (measured: a third of PostgreSQL's throughput for four of them).
-- The jobs page reads one page at a time in creation order (keyset pagination on id).

-- The default view hides done and cancelled jobs: the unfinished ones are few.
CREATE INDEX queue_job_unfinished ON queue_job (id) WHERE state NOT IN ('done', 'cancelled');
-- Cancelled jobs are rare: listing them reads only them.
CREATE INDEX queue_job_cancelled ON queue_job (id) WHERE state = 'cancelled';
-- Jobs failed per minute (the overview's chart, the metrics).
CREATE INDEX queue_job_failed_at ON queue_job (date_failed) WHERE date_failed IS NOT NULL;
