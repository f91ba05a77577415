"""``delay()`` that runs jobs at once instead of storing them (the successor's
``QUEUE_JOB__NO_DELAY``), and the hook that test helpers use to catch delayed jobs.

With the environment variable ``QUEUE_JOB__NO_DELAY=1``, or the session context key
``queue_job__no_delay``, ``delay()`` runs the job at once, in the caller's session, and
stores nothing. ``queuejob.testing.trap_jobs`` sets ``TRAP`` to keep the jobs delayed
inside it instead.
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Callable, Sequence
from typing import Any

from .core.graph import Delayable, topological_order
from .core.job import Job
from .database import Session

#: environment variable that makes delay() run jobs at once
NO_DELAY_ENV = "QUEUE_JOB__NO_DELAY"
#: session context key that does the same for one session
NO_DELAY_KEY = "queue_job__no_delay"

#: ``trap(jobs, session, parents) -> uuids``: what delay() does instead of storing
#: (None: store). ``parents`` is None for jobs delayed alone; for the jobs of a graph it
#: maps each one's position to its parents' positions, and the uuid of a job the trap
#: does not keep may be None (a graph whose keyed jobs all exist keeps nothing).
Trap = Callable[[list[Job], Any, dict[int, list[int]] | None], list[str | None]]
TRAP: contextvars.ContextVar[Trap | None] = contextvars.ContextVar(
    "queuejob_trap", default=None)


def no_delay(session: Any) -> bool:
    """``delay()`` runs jobs at once for this session (environment or context)."""
    if os.environ.get(NO_DELAY_ENV, "").lower() in ("1", "true", "yes"):
        return True
    return bool(getattr(session, "context", None) and session.context.get(NO_DELAY_KEY))


def intercepting(session: Any) -> bool:
    """``delay`` in this session would not store as usual: a trap, no-delay, or an open
    batch that takes the jobs (``intercept`` does what each needs of the Jobs)."""
    return (TRAP.get() is not None or no_delay(session)
            or (isinstance(session, Session) and session.batch is not None))


def intercept(jobs: Sequence[Job], session: Any,
              delayables: Sequence[Delayable] | None = None) -> list[str] | None:
    """What ``delay`` does instead of storing, inside ``trap_jobs`` or with no-delay
    set: the jobs' uuids (``delayables``, the jobs of a graph, get theirs); None when
    they are to be stored as usual."""
    if isinstance(session, Session):
        session.delaying(jobs)  # an open batch takes them
    trap = TRAP.get()
    if trap is not None:
        parents: dict[int, list[int]] | None = None
        if delayables is not None:
            index = {id(delayable): position for position, delayable in enumerate(delayables)}
            parents = {position: [index[id(parent)] for parent in delayable._parents]
                       for position, delayable in enumerate(delayables)}
        uuids = trap(list(jobs), session, parents)
    elif no_delay(session):
        if getattr(session, "is_async", False):
            raise TypeError(f"{NO_DELAY_ENV} (or the context key {NO_DELAY_KEY}) runs jobs "
                            "at once in the caller's session: not in a session of "
                            "db.session_async(); use trap_jobs() to catch them in tests")
        ordered = topological_order(delayables) if delayables else None
        for job in ([delayable.job for delayable in ordered] if ordered else jobs):
            job.perform(job_session(session, job))
        uuids = [job.uuid for job in jobs]
    else:
        return None
    if delayables is not None:
        for delayable, job_uuid in zip(delayables, uuids, strict=True):
            delayable.uuid = job_uuid
    return [job_uuid for job_uuid in uuids if job_uuid is not None]


def job_session(session: Any, job: Job) -> Any:
    """The session a job run at once gets (the caller's own when it is not a Session)."""
    return session.for_job(job) if isinstance(session, Session) else session
