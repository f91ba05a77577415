-- The OpenTelemetry context a job was stored in (queuejob.tracing, the extra
-- queuejob[otel]): the propagator's fields as JSON ({"traceparent": ...}); NULL for a job
-- stored outside any span. The worker's span of each attempt continues it.
ALTER TABLE queue_job ADD COLUMN trace_context text;
