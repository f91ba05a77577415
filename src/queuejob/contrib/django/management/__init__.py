"""Django management commands of queuejob (queuejob, queuejob_worker)."""
