"""``manage.py queuejob ...`` and ``manage.py queuejob_worker``."""
