"""``queuejob.batch``: a named group of jobs delayed together, tracked as one (the
successor's ``queue_job_batch``).

::

    with db.session() as session:
        with queuejob.batch(session, "import 2026-12-03",
                            on_done=report.delayable(session, "sale.order", day),
                            on_failure=alert.delayable(session, "sale.order", day)) as b:
            for chunk in chunks:
                import_chunk.delay(session, "sale.order", chunk)

The jobs delayed in ``session`` inside the block (``delay``, ``delay_many``, graphs)
belong to the batch. At the block's end the batch and its membership are written in the
session's transaction: they commit or roll back with the jobs. A worker concludes the
batch once all its jobs are done (``on_done`` is delayed) or one failed for good or was
cancelled (``on_failure``); one callback across all workers.
"""

from __future__ import annotations

import uuid as uuid_module
from types import TracebackType
from typing import Any

from .core import batches as rules
from .core.graph import Delayable
from .database import Session
from .store.batches import BatchStore

__all__ = ["Batch", "batch"]


def _callback(option: str, value: Any, session: Session) -> rules.Callback | None:
    if value is None:
        return None
    if not isinstance(value, Delayable):
        raise TypeError(f"batch({option}=...) takes one job built by fn.delayable(session, "
                        f"...), not {type(value).__name__}")
    if value._stored or value._linked_in or value._split:
        raise ValueError(f"batch({option}=...) takes a job of its own: not one stored, "
                         "split or part of a graph")
    job = value.job
    job.user_id = session.user_id
    job.context = dict(session.context)
    return rules.callback_of(job, session.db.max_args_size)


class Batch:
    """An open batch (``queuejob.batch``): ``uuid`` is its id, ``jobs`` the uuids of its
    jobs (those delayed so far inside the block; once it ended, the stored members)."""

    def __init__(self, session: Session, name: str, on_done: Delayable | None = None,
                 on_failure: Delayable | None = None) -> None:
        if getattr(session, "is_async", False):
            raise TypeError("batch() takes a session of db.session(): batches are not "
                            "available in a session of db.session_async() yet")
        if not isinstance(session, Session):
            raise TypeError(f"batch() takes a session of queuejob, not "
                            f"{type(session).__name__}")
        self.session = session
        self.name = rules.check_name(name)
        self.on_done = _callback("on_done", on_done, session)
        self.on_failure = _callback("on_failure", on_failure, session)
        self.uuid = str(uuid_module.uuid4())
        #: the jobs delayed inside the block: (uuid, identity key)
        self._delayed: list[tuple[str, str | None]] = []
        self.jobs: list[str] = []
        self._entered = False

    def delaying(self, jobs: Any) -> None:
        """Jobs delayed in the session inside the block (``Session.delaying``)."""
        for job in jobs:
            self._delayed.append((job.uuid, job.identity_key))
            self.jobs.append(job.uuid)

    def __enter__(self) -> Batch:
        if self._entered:
            raise ValueError("a batch is used once: open a new one")
        if self.session.batch is not None:
            raise ValueError("batches do not nest: the session's jobs already join batch "
                             f"{self.session.batch.name!r}")
        self._entered = True
        self.session.batch = self
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.session.batch = None
        if error is not None:
            return  # the session rolls back: nothing of the batch is written
        self._write()

    def _write(self) -> None:
        """The batch and its membership, in the session's transaction (the jobs held so
        far written first). A job whose identity key another job held was not stored:
        that job joins instead. A batch of no stored job is written too: it has nothing
        to wait for, and the next look of a worker concludes it done."""
        session = self.session
        conn = session.write_connection()
        db = session.db
        store = BatchStore(db.connector)
        store.insert(conn, self.uuid, self.name, self.on_done, self.on_failure)
        wanted = list(dict.fromkeys(job_uuid for job_uuid, _ in self._delayed))
        joined = store.add_jobs(conn, self.uuid, wanted)
        found = set(joined)
        holders = []
        for job_uuid, key in self._delayed:
            if job_uuid in found or key is None:
                continue
            holder = db.store.identity_holder(conn, key)
            if holder is not None:
                holders.append(str(holder["uuid"]))
        if holders:
            joined += store.add_jobs(conn, self.uuid, list(dict.fromkeys(holders)))
        self.jobs = joined


def batch(session: Session, name: str, *, on_done: Delayable | None = None,
          on_failure: Delayable | None = None) -> Batch:
    """A batch: ``with queuejob.batch(session, name, on_done=..., on_failure=...) as b``.

    The jobs delayed in ``session`` inside the block join the batch, named ``name`` (one
    line, up to 200 characters); ``b.uuid`` is its id. ``on_done`` and ``on_failure``
    (optional) are jobs built by ``fn.delayable(session, ...)``, stored with the batch
    (function name, arguments encoded as for any job, options) and delayed by the worker
    that concludes it: ``on_done`` once every job is done, ``on_failure`` as soon as one
    failed for good (its retries spent) or was cancelled; a job pending for a retry is
    not a failure. Batches do not nest (ValueError). A batch of no job is written and
    concluded done at a worker's next look."""
    return Batch(session, name, on_done=on_done, on_failure=on_failure)
