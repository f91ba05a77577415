"""Liveness on the same host: a dead process is seen at once, not after ``dead_after``.

A worker's heartbeat tells other hosts that it lives; a worker on the *same* host can ask
the kernel. Each worker row names its process space: the kernel's boot id and the pid
namespace it runs in (two containers of one host have different namespaces, a host that
rebooted a new boot id). A worker of the same space whose pid has no process (or a
zombie) is dead: the rescue marks it so at its next look, which a restarted worker makes
as it starts, so the jobs that a killed worker held (and the capacity they took) come back
within a rescue interval, not after ``dead_after``.

The evidence only ever goes one way: a pid reused by another process looks alive, and
the heartbeat's ``dead_after`` still decides; where the space cannot be told (no
``/proc``), the row has none and only the heartbeat counts.
"""

from __future__ import annotations

import functools
import os

BOOT_ID = "/proc/sys/kernel/random/boot_id"
PID_NAMESPACE = "/proc/self/ns/pid"


@functools.cache
def process_space() -> str | None:
    """``boot-id/pid-namespace`` of this process, None where it cannot be told."""
    try:
        with open(BOOT_ID, encoding="ascii") as boot:
            boot_id = boot.read().strip()
        namespace = os.stat(PID_NAMESPACE).st_ino
    except (OSError, ValueError):
        return None
    return f"{boot_id}/{namespace}" if boot_id else None


def process_gone(pid: object) -> bool:
    """True when no live process has ``pid`` in this process space (a zombie is gone:
    it only waits for its parent to read its status). Anything unsure is alive."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError, OSError):
        return False  # a process of another user; or a pid that cannot be asked
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            # "pid (comm) S ...": the state follows the last ")" (comm may hold one)
            return stat.read().rpartition(")")[2].split()[:1] == ["Z"]
    except OSError:
        return False
