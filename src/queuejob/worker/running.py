"""Running one claimed job: find its function, decode its arguments, perform it.

Only functions registered with ``@job`` (in the worker's modules) are run; the
stored name is looked up, never imported. A job whose session wrote to the
database commits its outcome in that same transaction, fenced on its attempt:
its writes and its ``done`` stand or fall together. Other outcomes are handed
to the worker loop, which writes them in batches.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from .. import tracing
from ..core import registry, states
from ..core.errors import DecodeError, FailedJobError, JobTimeout, RetryableJobError
from ..core.joblog import AttemptLog
from ..core.outcome import Outcome, failure, outcome_of, released
from ..core.progress import Progress
from ..core.retry import Delay
from ..database import Session
from ..store.mapping import job_from_row
from .joblog import capturing

if TYPE_CHECKING:
    from ..database import Database

log = logging.getLogger("queuejob.worker")


class Host(Protocol):
    """What running a job needs of its worker."""

    db: Database

    def allows(self, func: Any) -> bool: ...

    def retry_pattern(self, func_name: str) -> dict[int, Delay] | None: ...

    def timed_out(self, row: dict[str, Any]) -> bool: ...

    def lost_ownership(self, outcome: Outcome) -> None: ...

    def connection_failed(self, conn: Any) -> None: ...

    def report_progress(self, key: tuple[str, int], progress: Progress) -> None: ...

    def log_started(self, key: tuple[str, int], log: AttemptLog) -> None: ...


def job_session(host: Host, get_connection: Callable[[], Any], job: Any, attempt: int
                ) -> Session:
    """The session a job runs with: its creator's user and context, its uuid in
    ``context["job_uuid"]`` and ``session.job``; its connection is the job thread's,
    opened on first use; its progress reports go to the worker."""
    session = Session(host.db, user_id=job.user_id,
                      context={**job.context, "job_uuid": job.uuid}, connect=get_connection)
    session.job = job
    session.in_worker = True
    session.progress_sink = lambda progress: host.report_progress((job.uuid, attempt),
                                                                  progress)
    return session


def not_registered(func_name: str) -> str:
    return (f"{func_name} is not registered as a job in this worker: only functions "
            "decorated with @job in the worker's modules are run")


def prepare(worker: Host, row: dict[str, Any], get_connection: Callable[[], Any]
            ) -> tuple[Any, Session] | Outcome:
    """The job of a claimed row and its session; or, when it cannot run (its function
    is not registered, its arguments cannot be decoded), its failed outcome."""
    attempt = row["attempt"]
    func = registry.job_function(row["func_name"])
    if func is None or not worker.allows(func):
        return failure(row["uuid"], attempt, row["retry"], not_registered(row["func_name"]),
                       row.get("id"))
    try:
        job = job_from_row(row, max_size=worker.db.max_args_size)
    except DecodeError as exc:
        return failure(row["uuid"], attempt, row["retry"], str(exc), row.get("id"))
    job.retry_pattern_override = worker.retry_pattern(row["func_name"])
    return job, job_session(worker, get_connection, job, attempt)


def run_claimed(worker: Host, row: dict[str, Any], get_connection: Callable[[], Any]
                ) -> tuple[Outcome, bool]:
    """Perform one claimed job in this thread; (its outcome, whether it is written).
    Traced when OpenTelemetry is (``tracing``)."""
    with tracing.attempt(row) as span:
        return span.ended(_run_claimed(worker, row, get_connection))


def _run_claimed(worker: Host, row: dict[str, Any], get_connection: Callable[[], Any]
                 ) -> tuple[Outcome, bool]:
    prepared = prepare(worker, row, get_connection)
    if isinstance(prepared, Outcome):
        return prepared, False
    job, session = prepared
    error: BaseException | None = None
    with capturing(functools.partial(worker.log_started, (row["uuid"], row["attempt"]))
                   ) as capture:
        try:
            job.perform(session)
        except BaseException as exc:
            error = exc
    return conclude(worker, row, job, session, error, capture.log)


async def run_claimed_async(worker: Host, row: dict[str, Any],
                            get_connection: Callable[[], Any]) -> tuple[Outcome, bool]:
    """Perform one claimed ``async def`` job on the worker's event loop."""
    with tracing.attempt(row) as span:
        return span.ended(await _run_claimed_async(worker, row, get_connection))


async def _run_claimed_async(worker: Host, row: dict[str, Any],
                             get_connection: Callable[[], Any]) -> tuple[Outcome, bool]:
    prepared = prepare(worker, row, get_connection)
    if isinstance(prepared, Outcome):
        return prepared, False
    job, session = prepared
    error: BaseException | None = None
    with capturing(functools.partial(worker.log_started, (row["uuid"], row["attempt"]))
                   ) as capture:
        try:
            await job.perform_async(session)
        except BaseException as exc:
            error = exc
    return conclude(worker, row, job, session, error, capture.log)


def conclude(worker: Host, row: dict[str, Any], job: Any, session: Session,
             error: BaseException | None, attempt_log: AttemptLog | None = None
             ) -> tuple[Outcome, bool]:
    """The outcome of a performed job (with what it logged); written at once, with
    the job's own writes, when the job used its session."""
    kept = attempt_log if attempt_log is not None and (
        attempt_log.lines or attempt_log.dropped) else None
    attempt = row["attempt"]
    connector = worker.db.connector
    if isinstance(error, JobTimeout) and not worker.timed_out(row):
        # meant for an attempt this thread had just finished: run this one again
        return released(row), False
    if error is not None and connector.is_transient(error):
        # the database was busy or went away under the job: try again soon
        error = database_retry(job, connector.describe_error(error))
    outcome = outcome_of(job, attempt, error)
    outcome.log = kept
    if not session.used:
        if session.opened and connector.is_closed(session.connection):
            worker.connection_failed(session.connection)
        return outcome, False
    conn = session.connection
    if outcome.state != states.DONE:
        try:
            connector.rollback(conn)
        except Exception:
            worker.connection_failed(conn)
        return outcome, False
    # the job wrote through its session: its done state commits with its writes,
    # fenced on its attempt, so that both stand or neither does
    try:
        lost = worker.db.store.record(conn, [outcome])
        if lost:
            connector.rollback(conn)
            worker.lost_ownership(outcome)
            # nothing of this attempt stands: no outcome, no hook
            return released(row), True
        connector.commit(conn)
        session.after_commit()
        return outcome, True
    except Exception as exc:
        connector.rollback_if_open(conn)
        if connector.is_transient(exc):
            worker.connection_failed(conn)
            # its writes are gone with the transaction: it runs again (a counted retry)
            log.warning("job %s: its writes and outcome could not be committed (%s); it "
                        "will run again", outcome.uuid, connector.describe_error(exc))
            retried = outcome_of(job, attempt,
                                 database_retry(job, connector.describe_error(exc)))
            retried.log = kept
            return retried, False
        # refused at commit (a deferred constraint...): the attempt failed
        refused = outcome_of(job, attempt, exc)
        refused.log = kept
        return refused, False


def database_retry(job: Any, message: str) -> BaseException:
    """A database failure under a job: retried after 5 s, counting the attempt."""
    if job.max_retries and job.retry >= job.max_retries:
        return FailedJobError(f"Max. retries ({job.max_retries}) reached: {message}")
    return RetryableJobError(message, seconds=5)
