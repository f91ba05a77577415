"""Writing the outcomes of finished attempts, in batches, and what to do when a batch
cannot be written.

Outcomes are fenced on their attempt: one whose job was rescued, requeued or cancelled
meanwhile changes nothing (``lost``). A batch that fails on something other than the
database being away (a value of a job or of a stored row) is written again one outcome
at a time (``careful``), so that one job's outcome never takes the others with it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from ..backends.base import Connector
from ..core.outcome import Outcome, released
from ..core.text import describe
from ..store import JobStore
from .connections import LoopConnection

log = logging.getLogger("queuejob.worker")

#: an attempt: (job uuid, attempt number)
Key = tuple[str, int]


def key_of(item: Outcome | dict[str, Any]) -> Key:
    if isinstance(item, Outcome):
        return (item.uuid, item.attempt)
    return (item["uuid"], item["attempt"])


def lost_ownership(outcome: Outcome) -> None:
    log.warning("job %s: lost ownership of attempt %d (rescued, requeued or cancelled "
                "meanwhile); its outcome (%s) was not written",
                outcome.uuid, outcome.attempt, outcome.state)


class OutcomeWriter:
    """The loop's writer of outcomes; its ``careful`` flag belongs to the loop's thread."""

    def __init__(self, store: JobStore, connector: Connector, worker_id: str) -> None:
        self.store = store
        self.connector = connector
        self.worker_id = worker_id
        #: the last cycle failed on data, not on the database: outcomes go one by one
        self.careful = False

    def write(self, conn: Any, outcomes: list[Outcome]) -> list[Outcome]:
        """Write ``outcomes``; those written (the others lost their job)."""
        if not outcomes:
            return []
        record = self.store.record_one_by_one if self.careful else self.store.record
        return self.settle(outcomes, record(conn, outcomes))

    @staticmethod
    def settle(outcomes: list[Outcome], lost: list[Outcome]) -> list[Outcome]:
        """The outcomes written, once ``lost`` (those whose attempts lost their jobs)
        are said to be."""
        for outcome in lost:
            lost_ownership(outcome)
        gone = {id(outcome) for outcome in lost}
        return [outcome for outcome in outcomes if id(outcome) not in gone]

    def data_failed(self, exc: Exception) -> bool:
        """A cycle failed on something other than the database being away or lost:
        True to try again at once, carefully (the first time); False to back off as for
        an outage. Never fatal."""
        if self.connector.is_transient(exc) or self.connector.is_lost(exc):
            return False
        text = describe(str(exc) or type(exc).__name__, 300)[1:-1]
        if not self.careful:
            self.careful = True
            log.warning("writing outcomes one by one after an error: %s", text)
            return True
        log.error("a claim or outcome write failed (the worker goes on): %s", text,
                  exc_info=exc)
        return False

    def write_last(self, connection: LoopConnection, outcomes: list[Outcome], tries: int
                   ) -> list[Outcome] | None:
        """At shutdown: the last outcomes (jobs given back among them) and the worker's
        row stopped, in a few tries (one when out of time, each bounded by the lock
        timeout); after that the rescue takes over. The outcomes written, None when the
        transaction failed."""
        def final(conn: Any) -> list[Outcome]:
            written = self.write(conn, outcomes)
            self.store.stop_worker(conn, self.worker_id)
            return written

        attempt = 0
        while attempt < tries:
            attempt += 1
            try:
                written: list[Outcome] = connection.transaction(final)
                return written
            except Exception as exc:
                transient = self.connector.is_transient(exc)
                if not transient and not self.connector.is_lost(exc) and not self.careful:
                    self.careful = True  # again, one outcome at a time (not counted)
                    attempt -= 1
                    continue
                if attempt >= tries or not transient:
                    log.error("could not record the last outcomes (%s): the jobs will be "
                              "rescued", self.connector.describe_error(exc))
                    return None
                connection.drop()
                time.sleep(0.2)
        return None

    def give_back_forgotten(self, conn: Any, running: Iterable[Key]) -> None:
        """After a failed transaction whose commit may have gone through (the answer
        was lost with the connection), jobs may be started by this worker in the
        database that it does not run: give them back to pending."""
        mine = set(running)
        rows = self.store.started_by(conn, self.worker_id)
        forgotten = [released(row) for row in rows if key_of(row) not in mine]
        if forgotten:
            log.warning("giving back %d job(s) claimed by a transaction whose answer was "
                        "lost", len(forgotten))
            self.store.record(conn, forgotten)
