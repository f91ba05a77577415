"""Jobs over their timeout: the attempt ends as a retry (a failure once its retries are
used up), a new thread takes the slot, and ``JobTimeout`` is raised in the old thread;
what the old thread does after is fenced out."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..core.errors import FailedJobError, RetryableJobError
from ..core.outcome import Outcome, outcome_of
from ..core.retry import Delay
from ..store.mapping import job_from_row

log = logging.getLogger("queuejob.worker")


@dataclass
class Running:
    """A job this worker runs: its claimed row, when it started (monotonic)."""

    row: dict[str, Any]
    started: float
    is_async: bool = False

    @property
    def deadline(self) -> float | None:
        timeout = self.row.get("timeout")
        return self.started + timeout if timeout else None


def next_deadline(running: Mapping[Any, Running]) -> float:
    """When the first running job is over its time (inf: none has a timeout)."""
    deadlines = [item.deadline for item in running.values() if item.deadline is not None]
    return min(deadlines, default=float("inf"))


def overdue(running: Mapping[Any, Running], now: float) -> list[Any]:
    """The keys of the running jobs over their time."""
    return [key for key, item in running.items()
            if item.deadline is not None and now >= item.deadline]


def timeout_outcome(item: Running, retry_pattern: dict[int, Delay] | None) -> Outcome:
    """The outcome of an attempt stopped for its timeout: a retry, or a failure once
    its retries are used up."""
    job = job_from_row(item.row, decode=False)
    job.retry_pattern_override = retry_pattern
    job.retry += 1  # the attempt counts, as perform() counted it
    message = f"timed out after {item.row['timeout']:g} s"
    error: BaseException = RetryableJobError(message)
    if job.max_retries and job.retry >= job.max_retries:
        error = FailedJobError(f"Max. retries ({job.max_retries}) reached: {message}")
    log.warning("job %s: %s, stopping it", job.uuid, message)
    return outcome_of(job, item.row["attempt"], error)
