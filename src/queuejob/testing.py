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

Identity keys are honoured as by the database: a job whose key a trapped job holds
(one not performed yet) is not trapped, and ``delay`` returns the holder's uuid (a
debounced one gives the holder its arguments and eta, when it is of the same function);
``trap.calls`` records every ``delay`` all the same. ``JobCounter(db)`` counts the jobs
a database gets from the moment it is made, for tests that let jobs be stored.

With the environment variable ``QUEUE_JOB__NO_DELAY=1``, or the session context
key ``queue_job__no_delay``, ``delay()`` runs the job at once, in the caller's
session, and stores nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, NamedTuple

from .core.errors import NoSuchJobError
from .core.graph import PROPERTIES
from .core.job import Job
from .nodelay import NO_DELAY_ENV, NO_DELAY_KEY, TRAP, job_session
from .operations import Database, JobFilter, find_jobs, load_job

__all__ = ["NO_DELAY_ENV", "NO_DELAY_KEY", "JobCall", "JobCounter", "JobsTrap", "TrappedJob",
           "trap_jobs"]


class JobCall(NamedTuple):
    """One job delayed inside ``trap_jobs``, trapped or not: its function, positional
    arguments (the model name first), keyword arguments, and properties (priority, eta,
    max_retries, description, channel, identity_key, timeout, concurrency_key)."""

    func: Any
    args: tuple
    kwargs: dict[str, Any]
    properties: dict[str, Any]

    @classmethod
    def of(cls, job: Job) -> JobCall:
        return cls(job.func, tuple(job.args), dict(job.kwargs),
                   {key: getattr(job, key) for key in PROPERTIES})


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
        #: every job delayed, in order, with those not trapped for their identity key
        self.calls: list[JobCall] = []

    @property
    def enqueued_jobs(self) -> list[Job]:
        """The trapped jobs (a job whose identity key was held is not among them)."""
        return [trapped.job for trapped in self.trapped]

    def add(self, jobs: list[Job], session: Any,
            parents: Mapping[int, list[int]] | None = None) -> list[str | None]:
        """Trap ``jobs`` (``nodelay.TRAP``): their uuids, the holder's for a job whose
        identity key a trapped job holds. ``parents`` (a graph's jobs: each one's
        parents' positions) links them; a graph whose keyed jobs are all held is not
        trapped at all, and its jobs without a key get no uuid, as in the database."""
        self.calls.extend(JobCall.of(job) for job in jobs)
        if parents is None:
            return [self._keep(job, session).job.uuid for job in jobs]
        keyed = [job for job in jobs if job.identity_key is not None]
        held = {id(job): self._holder(job.identity_key) for job in keyed}
        if keyed and all(held.values()):
            return [holder.job.uuid if (holder := held.get(id(job))) else None
                    for job in jobs]
        kept = [self._keep(job, session) for job in jobs]
        for index, (job, trapped) in enumerate(zip(jobs, kept, strict=True)):
            if trapped.job is not job:
                continue  # a job that stands in keeps its parents; children wait for it
            for parent in parents.get(index, []):
                if kept[parent] not in trapped.parents:
                    trapped.parents.append(kept[parent])
        return [trapped.job.uuid for trapped in kept]

    def _holder(self, identity_key: str | None) -> TrappedJob | None:
        """The trapped job, not performed yet, that holds ``identity_key``."""
        if identity_key is None:
            return None
        for trapped in self.trapped:
            if not trapped.performed and trapped.job.identity_key == identity_key:
                return trapped
        return None

    def _keep(self, job: Job, session: Any) -> TrappedJob:
        """``job`` trapped, or the trapped job that holds its identity key (which takes
        its arguments and eta when it is debounced, as a pending job in the database)."""
        holder = self._holder(job.identity_key)
        if holder is not None:
            if job.debounce is not None and holder.job.func_name == job.func_name:
                held = holder.job
                held.args, held.kwargs, held.model_name = job.args, job.kwargs, job.model_name
                if job.description_given:
                    held.description = job.description
                held.eta = job.eta
            return holder
        trapped = TrappedJob(job, session, [])
        self.trapped.append(trapped)
        return trapped

    def _matching(self, only: Any = None) -> list[TrappedJob]:
        if only is None:
            return list(self.trapped)
        name = getattr(only, "func_name", only)
        return [trapped for trapped in self.trapped if trapped.job.func_name == name]

    def jobs_count(self, only: Any = None) -> int:
        """How many jobs were trapped (of the job function ``only``)."""
        return len(self._matching(only))

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
        """Forget the trapped jobs and the calls."""
        self.trapped.clear()
        self.calls.clear()


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


class JobCounter:
    """The jobs a database gets from the moment the counter is made (the successor's
    ``JobCounter``)::

        counter = JobCounter(db)
        confirm_order(...)                       # commits jobs to db
        assert counter.count_created() == 1
        row = counter.search_created()[0]        # as queuejob.operations.load_job gives it

    It reads what is committed, through ``queuejob.operations``: jobs delayed in a
    session that is still open are not seen yet.
    """

    #: jobs read per query
    PAGE = 1000

    def __init__(self, db: Database) -> None:
        self.db = db
        #: the uuids of the jobs that existed when the counter was made
        self.existing: frozenset[str] = frozenset(self._uuids())

    def _uuids(self) -> list[str]:
        """The uuids of every job, the oldest first."""
        filters = JobFilter(show_all=True)
        uuids: list[str] = []
        cursor: str | None = None
        while True:
            page = find_jobs(self.db, filters, sort="created", after=cursor, limit=self.PAGE)
            uuids.extend(row["uuid"] for row in page.rows)
            if page.next is None:
                return uuids
            cursor = page.next

    def _created(self) -> list[str]:
        return [job_uuid for job_uuid in self._uuids() if job_uuid not in self.existing]

    def count_all(self) -> int:
        """Every job of the database now."""
        return len(self._uuids())

    def count_created(self) -> int:
        """The jobs created since the counter was made (and not deleted since)."""
        return len(self._created())

    def count_existing(self) -> int:
        """The jobs that existed when the counter was made and still exist."""
        return len(self.existing.intersection(self._uuids()))

    def search_created(self) -> list[dict[str, Any]]:
        """The rows of the jobs created since the counter was made, the oldest first,
        as ``queuejob.operations.load_job`` returns them."""
        rows = []
        for job_uuid in self._created():
            try:
                rows.append(load_job(self.db, job_uuid))
            except NoSuchJobError:  # deleted since it was listed
                continue
        return rows
