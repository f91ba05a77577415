"""``DatabaseJobStorage``: the page's ``OpenERPJobStorage``, on a session.

``delay()`` comes here: the Job is built (its rules checked), turned into its row
(``store.mapping``) and written by the store in the session's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from . import nodelay, tracing
from .backends.base import Steps
from .core import codec, limits, states
from .core.errors import NoSuchJobError
from .core.job import Job, JobStorage, canonical_uuid, model_name_of, new_uuid
from .store.mapping import job_from_row, new_row, update_row

#: The keywords that ``delay()`` takes for itself, never passing them to the job
#: function: the one list of them. ``@job`` refuses a function with a parameter of one of
#: these names (but ``model_name``, by convention the function's own second parameter,
#: which ``delay(model_name=...)`` fills); ``delay_many`` and ``schedule`` take them as
#: options.
RESERVED = ("priority", "eta", "model_name", "max_retries", "description", "channel",
            "identity_key", "timeout", "concurrency_key", "debounce")
#: reserved for options that a later version adds: refused by ``delay()`` until then
#: (none at the moment: ``concurrency_key`` and ``debounce``, once reserved, are options)
NOT_YET_SUPPORTED: tuple[str, ...] = ()


def check_options(options: Iterable[str], caller: str) -> None:
    """TypeError for an option that ``delay()`` does not take (yet)."""
    given = set(options)
    unknown = given - set(RESERVED)
    if unknown:
        raise TypeError(f"{caller} got unknown options: {', '.join(sorted(unknown))}")
    later = sorted(given & set(NOT_YET_SUPPORTED))
    if later:
        raise TypeError(f"{caller}: {', '.join(later)} {'is' if len(later) == 1 else 'are'} "
                        "reserved for a later version of queuejob, not supported yet")


def job_of_call(func: Any, args: tuple, kwargs: dict[str, Any]) -> Job:
    """The Job of a ``delay``-style call: ``args`` are the function's positional
    arguments after the session (the model name first, by convention), ``kwargs`` its
    keyword arguments and the reserved options (taken out). ``model_name=`` given as an
    option is put first in the arguments, as the original does."""
    kwargs = dict(kwargs)
    options = {key: kwargs.pop(key) for key in RESERVED if key in kwargs}
    check_options(options, "delay()")
    model_name = options.pop("model_name", None)
    job = Job(func=func, model_name=model_name, args=args, kwargs=kwargs, **options)
    if model_name is None:
        job.model_name = limits.check("model_name", model_name_of(job.args))
    return job


@dataclass
class Calls:
    """Many jobs of one ``template`` that differ only in their positional arguments
    (``delay_many``'s tuples, when no identity key nor debounce is shared): stored
    without a Job of each, unless something needs the Jobs (``jobs()``)."""

    template: Job
    args: list[tuple]

    def jobs(self) -> list[Job]:
        """A Job of each call: the template's copy with its arguments."""
        return [self.template.copy(args) for args in self.args]


__all__ = ["NOT_YET_SUPPORTED", "RESERVED", "Calls", "DatabaseJobStorage", "check_options",
           "job_from_row", "job_of_call"]


class DatabaseJobStorage(JobStorage):
    """Store jobs in the database of a session, in the session's transaction."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self._db = session.db
        self._store = session.db.store

    def enqueue(self, func: Any, model_name: str | None = None, args: Any = None,
                kwargs: Any = None, priority: int | None = None, eta: Any = None,
                max_retries: int | None = None, description: str | None = None,
                channel: str | None = None, identity_key: Any = None,
                timeout: float | None = None, concurrency_key: str | None = None,
                debounce: Any = None) -> str:
        """Create a Job and enqueue it in the queue. Return the job uuid.

        With an identity key held by a pending or enqueued job, nothing is stored
        and that job's uuid is returned (with ``debounce``, a pending job of the same
        function gets the new arguments and its eta moved instead).
        """
        return self._enqueue_job(Job(
            func=func, model_name=model_name, args=args, kwargs=kwargs, priority=priority,
            eta=eta, max_retries=max_retries, description=description, channel=channel,
            identity_key=identity_key, timeout=timeout, concurrency_key=concurrency_key,
            debounce=debounce))

    def _enqueue_job(self, job: Job) -> str:
        return self.session.run(self.enqueue_steps(job))

    def enqueue_steps(self, job: Job) -> Steps[str]:
        """Enqueue ``job`` in the session, as steps its session runs (``session.run``):
        what ``delay()`` and ``delay_async()`` both do."""
        job.user_id = self.session.user_id
        job.context = dict(self.session.context)
        intercepted = nodelay.intercept([job], self.session)
        if intercepted is not None:
            return intercepted[0]
        return (yield from self._insert(job))

    def enqueue_resolve_args(self, func: Any, *args: Any, **kwargs: Any) -> str:
        """Create a Job from ``delay``-style arguments and enqueue it. Return the job uuid."""
        return self._enqueue_job(job_of_call(func, args, kwargs))

    def _encoded(self, job: Job, trace_context: str | None = None) -> dict[str, Any]:
        return new_row(job, self._db.max_args_size, trace_context)

    def _debounced(self, job: Job) -> tuple[float, str | None]:
        """What a debounced delay writes over a waiting job besides its arguments: the
        seconds its eta moves to from now, and the description, when one was given."""
        return job.debounce or 0.0, job.description if job.description_given else None

    def _insert(self, job: Job) -> Steps[str]:
        # inside an active span: a PRODUCER span, whose context is stored with the job
        with tracing.sending(job.func_name, 1, job.channel) as sent:
            return (yield from self._insert_row(job, self._encoded(job, sent.carrier)))

    def _insert_row(self, job: Job, params: dict[str, Any]) -> Steps[str]:
        # every statement runs in the session's writing transaction, which the session
        # opens (writing the jobs it holds first) before the first one
        if job.state in states.FINISHED:
            # a Job set done or cancelled before it was ever stored: inserted as a new
            # job (without holding its identity key), then written whole, result and
            # dates included, as the store of a stored job is
            yield from self._store.insert_one_steps(
                {**params, "state": str(states.PENDING), "identity_key": None})
            self.session.mark_inserted()
            yield from self._store.update_steps(update_row(job))
            return job.uuid
        if job.debounce is not None:
            job_uuid = yield from self._store.insert_debounced_steps(
                params, *self._debounced(job))
            self.session.mark_inserted()
            return job_uuid
        # a job without identity key needs no answer from the database: its row can be
        # written with the session's next statement or commit
        if params["identity_key"] is None and self.session.hold(params):
            return job.uuid
        job_uuid = yield from self._store.insert_one_steps(params)
        self.session.mark_inserted()
        return job_uuid

    def enqueue_many(self, jobs: list[Job] | Calls) -> list[str]:
        """Store many jobs in one go (a statement per thousand jobs on PostgreSQL);
        their uuids, in order. Identity keys are honoured as by ``enqueue``. Every
        job is checked and encoded before anything is written. When a job is debounced,
        they are stored one by one, in order (a statement or two each)."""
        return self.session.run(self.enqueue_many_steps(jobs))

    def enqueue_many_steps(self, jobs: list[Job] | Calls) -> Steps[list[str]]:
        """``enqueue_many``, as steps its session runs."""
        if isinstance(jobs, Calls):
            if len(jobs.args) > 1 and not nodelay.intercepting(self.session):
                return (yield from self._copy_calls(jobs))
            jobs = jobs.jobs()
        for job in jobs:
            job.user_id = self.session.user_id
            job.context = dict(self.session.context)
        intercepted = nodelay.intercept(jobs, self.session)
        if intercepted is not None:
            return intercepted
        if not jobs:
            return []
        with tracing.sending(jobs[0].func_name, len(jobs)) as sent:
            rows = [self._encoded(job, sent.carrier) for job in jobs]
            return (yield from self._insert_many(jobs, rows))

    def _copy_calls(self, calls: Calls) -> Steps[list[str]]:
        # the template's row once; of each call, what a Job's copy and its row would
        # give: a new uuid, the model name and the arguments, checked and encoded
        template = calls.template
        template.user_id = self.session.user_id
        template.context = dict(self.session.context)
        max_size = self._db.max_args_size
        check, encode = limits.check, codec.encode_arguments
        with tracing.sending(template.func_name, len(calls.args)) as sent:
            row = self._encoded(template, sent.carrier)
            varying = [(new_uuid(), check("model_name", model_name_of(args)),
                        encode(args, {}, max_size)[0]) for args in calls.args]
            uuids = yield from self._store.copy_alike_steps(row, varying)
        self.session.mark_inserted()
        return uuids

    def _insert_many(self, jobs: list[Job], rows: list[dict[str, Any]]) -> Steps[list[str]]:
        if any(job.debounce is not None or job.state in states.FINISHED for job in jobs):
            # job by job, in order, as delay() stores each: a later call with the same
            # key replaces the arguments an earlier one stored; a Job set done or
            # cancelled before it was stored is written whole (the streamed insert
            # takes new jobs only, into the partition of unfinished ones)
            uuids = []
            for job, row in zip(jobs, rows, strict=True):
                uuids.append((yield from self._insert_row(job, row)))
        else:
            uuids = yield from self._store.insert_many_steps(rows)
        self.session.mark_inserted()
        return uuids

    def enqueue_graph(self, delayables: list[Any]) -> Any:
        """Store the jobs of a graph in one go (parents first), sharing a new
        graph_uuid; each Delayable gets its ``uuid``. When every job that has an
        identity key already exists (and there is one), nothing is stored and the
        keyed Delayables get the existing jobs' uuids. The uuids, or, in an asyncio
        session, what awaits them."""
        return self.session.run(self.enqueue_graph_steps(delayables))

    def enqueue_graph_steps(self, delayables: list[Any]) -> Steps[list[str]]:
        from .core.graph import edges, new_graph_uuid
        for delayable in delayables:
            delayable.job.user_id = self.session.user_id
            delayable.job.context = dict(self.session.context)
        # trapped or run at once: intercept gives the Delayables their uuids
        intercepted = nodelay.intercept([d.job for d in delayables], self.session, delayables)
        if intercepted is not None:
            return intercepted
        keyed = [d for d in delayables if d.job.identity_key is not None]
        if keyed:
            holders = {}
            for delayable in keyed:
                holders[id(delayable)] = yield from self._store.identity_holder_steps(
                    delayable.job.identity_key)
            if all(holders.values()):
                for delayable in keyed:
                    delayable.uuid = holders[id(delayable)]["uuid"]
                return [d.uuid for d in delayables if d.uuid]
        graph_uuid = new_graph_uuid()
        index = {id(d): position for position, d in enumerate(delayables)}
        pairs = [(index[id(parent)], index[id(child)]) for parent, child in edges(delayables)]
        for delayable in delayables:
            job = delayable.job
            job.graph_uuid = graph_uuid
            job.state = states.WAIT_DEPENDENCIES if delayable._parents else states.PENDING
        with tracing.sending("graph" if len(delayables) > 1 else delayables[0].job.func_name,
                             len(delayables)) as sent:
            rows = [self._encoded(d.job, sent.carrier) for d in delayables]
            uuids = yield from self._store.insert_graph_steps(rows, pairs)
        for delayable, job_uuid in zip(delayables, uuids, strict=True):
            delayable.uuid = job_uuid
        self.session.mark_inserted()
        return uuids

    def exists(self, job_uuid: str) -> bool:
        """Returns if a job still exists in the storage."""
        return self._store.exists(self.session.write_connection(), job_uuid)

    def db_record_from_uuid(self, job_uuid: str) -> dict[str, Any] | None:
        """The stored row of a job (a dict of its columns), None if there is none."""
        try:
            return self._store.load(self.session.write_connection(), job_uuid)
        except NoSuchJobError:
            return None

    def db_record(self, job_: Job) -> dict[str, Any] | None:
        return self.db_record_from_uuid(job_.uuid)

    def load(self, job_uuid: str) -> Job:
        """Read a job from the database; NoSuchJobError when there is none."""
        row = self._store.load(self.session.write_connection(), canonical_uuid(job_uuid))
        if row is None:
            raise NoSuchJobError(f"no job {job_uuid}")
        return job_from_row(row, max_size=self._db.max_args_size)

    def store(self, job_: Job) -> None:
        """Store the Job: insert it if new, else write all its fields."""
        conn = self.session.write_connection()
        if self._store.exists(conn, job_.uuid):
            self._store.update(conn, update_row(job_))
        else:
            job_.uuid = self.session.run(self._insert(job_))

    def job_record_with_same_identity_key(self, identity_key: str) -> dict[str, Any] | None:
        """The pending or enqueued job's row with this identity key, if any."""
        return self._store.identity_holder(self.session.write_connection(), identity_key)
