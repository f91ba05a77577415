"""queuejob: a database-backed job queue for Python.

``@job`` functions whose ``.delay()`` stores a job inside the caller's own
transaction; workers that run jobs by priority and eta through a tree of
channels with capacities; retries by pattern; identity keys; safe arguments.
"""

from .aio import AsyncSession
from .batches import batch
from .core.errors import (
    ConfigurationError,
    FailedJobError,
    JobError,
    JobStateError,
    NoSuchJobError,
    NothingToDoJob,
    QueueJobError,
    RetryableJobError,
)
from .core.graph import Delayable, GraphError, chain, group
from .core.identity import identity_exact
from .core.job import Job, JobStorage
from .core.retry import RETRY_INTERVAL
from .core.states import State
from .database import Database, Session, open
from .jobfunction import (
    JobFunction,
    job,
    register_related_action,
    related_action,
    schedule,
    whitelist_unpickle_global,
)
from .operations import (
    cancel,
    cancel_async,
    requeue,
    requeue_async,
    set_done,
    set_done_async,
)
from .storage import DatabaseJobStorage
from .worker import Worker

__version__ = "0.1.0"

__all__ = [
    "RETRY_INTERVAL",
    "AsyncSession",
    "ConfigurationError",
    "Database",
    "DatabaseJobStorage",
    "Delayable",
    "FailedJobError",
    "GraphError",
    "Job",
    "JobError",
    "JobFunction",
    "JobStateError",
    "JobStorage",
    "NoSuchJobError",
    "NothingToDoJob",
    "QueueJobError",
    "RetryableJobError",
    "Session",
    "State",
    "Worker",
    "batch",
    "cancel",
    "cancel_async",
    "chain",
    "group",
    "identity_exact",
    "job",
    "open",
    "register_related_action",
    "related_action",
    "requeue",
    "requeue_async",
    "schedule",
    "set_done",
    "set_done_async",
    "whitelist_unpickle_global",
]
