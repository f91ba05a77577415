"""Tallies of finished jobs: the rules of their windows.

The faces (statistics, metrics, the overview's chart, the functions page) read the done
jobs of a window from per-minute tallies that the database keeps as jobs change (the
``*_tallies`` migrations), never by counting the history. A window is therefore made of
whole minutes of the database's clock, the current one included; and the tallies keep
the minutes of the longest window only.
"""

from __future__ import annotations

import math

#: minutes of done jobs kept in the per-minute tally: two days (the overview's day, the
#: functions page's day, a metrics window up to two days)
KEEP_MINUTES = 2 * 24 * 60
#: the longest window a face may read, in seconds
MAX_WINDOW = KEEP_MINUTES * 60.0


def window_minutes(seconds: float) -> int:
    """The whole minutes that a window of ``seconds`` reads (the current one included):
    at least one, at most ``KEEP_MINUTES``."""
    return max(1, min(KEEP_MINUTES, math.ceil(seconds / 60)))
