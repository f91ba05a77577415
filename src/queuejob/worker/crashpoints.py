"""Test-only crash points: the reliability tests kill a worker at exact moments.

With ``QUEUEJOB_TEST_CRASH_AT=<point>`` in its environment, a worker process
kills itself (SIGKILL: no clean-up, like a power cut) the first time it reaches
that point. Unset, as in production, ``reached`` does nothing.
"""

from __future__ import annotations

import os
import signal

POINTS = (
    "claim_before_commit",    # jobs chosen and marked started, transaction not committed
    "claim_after_commit",     # claim committed, jobs not handed to a thread yet
    "job_before_outcome",     # a job returned, its outcome not written
    "outcome_after_commit",   # outcomes committed
)

_AT = os.environ.get("QUEUEJOB_TEST_CRASH_AT") or None


def reached(point: str) -> None:
    if point == _AT:
        os.kill(os.getpid(), signal.SIGKILL)


def armed(point: str) -> bool:
    """Whether this process kills itself at ``point`` (the code reaching it must not
    take a path that skips it)."""
    return point == _AT
