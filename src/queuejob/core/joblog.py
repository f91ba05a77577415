"""What a job logs while it runs, kept with its attempt: bounded, storable lines.

An attempt keeps at most ``limits.LOG_LINES`` lines and ``limits.LOG_CHARS`` characters
in all, each line cut to ``limits.LOG_LINE``; what does not fit is counted
(``dropped``) and dropped. The lines are stored as JSON: ``[[time, level, logger,
message], ...]``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from . import limits
from .text import bounded, storable


@dataclass(frozen=True, slots=True)
class LogLine:
    at: float  # seconds since the epoch
    level: str
    logger: str
    message: str


@dataclass(slots=True)
class AttemptLog:
    """The lines of one attempt, within the limits."""

    lines: list[LogLine] = field(default_factory=list)
    dropped: int = 0
    chars: int = 0

    def add(self, at: float, level: str, logger: str, message: str) -> None:
        if len(self.lines) >= limits.LOG_LINES:
            self.dropped += 1
            return
        text = bounded(storable(message), limits.LOG_LINE)
        size = len(text) + len(logger)
        if self.chars + size > limits.LOG_CHARS:
            self.dropped += 1
            return
        self.chars += size
        self.lines.append(LogLine(at, storable(level)[:20], storable(logger)[:200], text))

    def to_json(self) -> str:
        return json.dumps([[line.at, line.level, line.logger, line.message]
                           for line in self.lines])


def stored_lines(text: Any) -> tuple[list[LogLine], str | None]:
    """The lines an attempt's stored log holds, and a reason when some could not be read
    (a row written by hand): what can be read is kept."""
    if not isinstance(text, str):
        return [], "the stored log is not text"
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
        return [], "the stored log is not JSON"
    if not isinstance(data, list):
        return [], "the stored log is not a list of lines"
    lines, bad = [], 0
    for item in data:
        if (isinstance(item, list) and len(item) == 4
                and isinstance(item[0], int | float) and not isinstance(item[0], bool)
                and math.isfinite(item[0]) and all(isinstance(v, str) for v in item[1:])):
            lines.append(LogLine(float(item[0]), item[1], item[2], item[3]))
        else:
            bad += 1
    return lines, (f"{bad} stored line(s) could not be read" if bad else None)
