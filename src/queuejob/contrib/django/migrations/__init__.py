"""The Django migrations of queuejob's tables."""
