"""Helpers for your own tests: trap the jobs your code delays, or run them at once.

``trap_jobs()`` (the successor's helper of the same name) catches every job
delayed inside it instead of storing it::

    from queuejob.testing import trap_jobs

    def test_confirming_an_order_exports_it(db):
        with trap_jobs() as trap, db.session() as session:
            confirm_order(session, order_id=42)          # calls export_order.delay(...)
            trap.assert_jobs_count(1, only=export_order)
            trap.assert_enqueued_job(export_order, args=("sale.order", 42),
                                     properties={"priority": 5})
            trap.perform_enqueued_jobs()                 # runs them now, in graph order

With the environment variable ``QUEUE_JOB__NO_DELAY=1``, or the session context
key ``queue_job__no_delay``, ``delay()`` runs the job at once, in the caller's
session, and stores nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from .core.job import Job
from .nodelay import NO_DELAY_ENV, NO_DELAY_KEY, TRAP, job_session

__all__ = ["NO_DELAY_ENV", "NO_DELAY_KEY", "JobsTrap", "TrappedJob", "trap_jobs"]


class TrappedJob:
    """A job delayed inside ``trap_jobs``: not stored, kept to be asserted or run."""

    def __init__(self, job: Job, session: Any, parents: list[TrappedJob]) -> None:
        self.job = job
        self.session = session
        self.parents = parents
        self.performed = False

    @property
    def func(self) -> Any:
        return self.job.func

    def __repr__(self) -> str:
        return f"<TrappedJob {self.job.func_string}>"


class JobsTrap:
    """The jobs delayed inside ``trap_jobs()``, in the order they were delayed."""

    def __init__(self) -> None:
        self.trapped: list[TrappedJob] = []

    @property
    def enqueued_jobs(self) -> list[Job]:
        return [trapped.job for trapped in self.trapped]

    def add(self, jobs: list[Job], session: Any,
            parents: Mapping[int, list[int]] | None = None) -> list[str]:
        start = len(self.trapped)
        for index, job in enumerate(jobs):
            links = [self.trapped[start + parent] for parent in (parents or {}).get(index, [])]
            self.trapped.append(TrappedJob(job, session, links))
        return [job.uuid for job in jobs]

    def _matching(self, only: Any = None) -> list[TrappedJob]:
        if only is None:
            return list(self.trapped)
        name = getattr(only, "func_name", only)
        return [trapped for trapped in self.trapped if trapped.job.func_name == name]

    def assert_jobs_count(self, expected: int, only: Any = None) -> None:
        """Exactly ``expected`` jobs were delayed (of the job function ``only``)."""
        found = self._matching(only)
        if len(found) != expected:
            listing = "\n".join(f"  {trapped.job.func_string}" for trapped in found) or "  none"
            raise AssertionError(f"expected {expected} delayed job(s), found {len(found)}:\n"
                                 f"{listing}")

    def assert_enqueued_job(self, func: Any, args: tuple | None = None,
                            kwargs: Mapping[str, Any] | None = None,
                            properties: Mapping[str, Any] | None = None) -> Job:
        """A job of ``func`` was delayed with these arguments (``args`` begins with the
        model name, as in ``delay``) and these properties (priority, eta, channel,
        description, max_retries, identity_key...). Returns it."""
        candidates = self._matching(func)
        for trapped in candidates:
            job = trapped.job
            if args is not None and tuple(job.args) != tuple(args):
                continue
            if kwargs is not None and job.kwargs != dict(kwargs):
                continue
            if properties and any(getattr(job, key) != value
                                  for key, value in properties.items()):
                continue
            return job
        listing = "\n".join(f"  {trapped.job.func_string}" for trapped in candidates) \
            or "  none"
        raise AssertionError(
            f"no delayed job of {getattr(func, 'func_name', func)} with args={args} "
            f"kwargs={kwargs} properties={properties}; delayed ones:\n{listing}")

    def perform_enqueued_jobs(self) -> None:
        """Run the trapped jobs now, parents before children; jobs they delay are
        trapped and run as well. An exception of a job is raised here."""
        while True:
            waiting = [trapped for trapped in self.trapped if not trapped.performed]
            if not waiting:
                return
            for trapped in order(waiting):
                trapped.performed = True
                trapped.job.perform(job_session(trapped.session, trapped.job))

    def clear(self) -> None:
        self.trapped.clear()


def order(trapped: list[TrappedJob]) -> list[TrappedJob]:
    """Trapped jobs with parents before children."""
    done: set[int] = set()
    out: list[TrappedJob] = []
    remaining = list(trapped)
    while remaining:
        ready = [item for item in remaining
                 if all(parent.performed or id(parent) in done for parent in item.parents)]
        if not ready:
            raise RuntimeError("trapped jobs wait for each other in a cycle")
        for item in ready:
            done.add(id(item))
            out.append(item)
            remaining.remove(item)
    return out


@contextmanager
def trap_jobs() -> Iterator[JobsTrap]:
    """Catch the jobs delayed inside the block instead of storing them."""
    trap = JobsTrap()
    token = TRAP.set(trap.add)
    try:
        yield trap
    finally:
        TRAP.reset(token)
