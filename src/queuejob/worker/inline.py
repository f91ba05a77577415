"""Short jobs on the loop's own thread.

Handing a job to a job thread and its outcome back costs two wake-ups and the turns of
the interpreter lock between threads: more than a job that takes a few hundred
microseconds. A job function whose recent attempts all ended quickly therefore runs on
the loop's thread, right after its claim, before the loop's next turn: a function earns
it with ``STREAK`` attempts in a row under ``SHORT`` seconds. Never an ``async def``
function (the event loop runs those) nor a job with a timeout (only a job thread can be
stopped).

While a job runs on the loop's thread, the loop waits for it: a function whose inline
attempt takes ``LONG`` seconds or more goes back to job threads and needs twice the
streak to come back (up to ``MAX_STREAK``), so that a job that is short but now and then
slow costs the loop that wait ever more rarely. The heartbeat has a thread of its own:
a slow inline job never makes its worker look dead.
"""

from __future__ import annotations

#: an attempt under this many seconds counts towards its function's streak
SHORT = 0.002
#: short attempts in a row before a function's jobs run on the loop's thread
STREAK = 16
#: the longest streak a function is asked for after slow inline attempts
MAX_STREAK = 4096
#: an inline attempt this long (seconds) sends its function back to job threads
LONG = 0.02


class ShortJobs:
    """The streak of short attempts of each job function (the loop and the job threads
    report attempts under the slots' lock)."""

    def __init__(self) -> None:
        self._streak: dict[str, int] = {}
        self._needed: dict[str, int] = {}

    def inline(self, func_name: str) -> bool:
        """Whether ``func_name``'s next job runs on the loop's thread."""
        return self._streak.get(func_name, 0) >= self._needed.get(func_name, STREAK)

    def ended(self, func_name: str, seconds: float, inline: bool) -> None:
        """An attempt of ``func_name`` took ``seconds`` (on the loop's thread when
        ``inline``)."""
        needed = self._needed.get(func_name, STREAK)
        if seconds < SHORT:
            self._streak[func_name] = min(self._streak.get(func_name, 0) + 1, MAX_STREAK)
            return
        self._streak[func_name] = 0
        if inline and seconds >= LONG:
            self._needed[func_name] = min(needed * 2, MAX_STREAK)
