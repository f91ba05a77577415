"""CPU time of the processes a measurement involves, from /proc (Linux; standard library
only): a worker process and everything in its session (its threads, and the processes
it forks), and the PostgreSQL server's backends connected to one database."""

from __future__ import annotations

import os
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int | str) -> list[str]:
    """The fields of /proc/PID/stat after the command name (field 3 onwards)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads)."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / _TICK


def session_cpu_seconds(session: int) -> float:
    """CPU time of the live processes of a session (a worker started in its own session
    and the processes it forked)."""
    total = 0.0
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            fields = _stat(entry.name)
            if int(fields[3]) == session:
                total += (int(fields[11]) + int(fields[12])) / _TICK
        except (OSError, ValueError, IndexError):
            continue  # a process that ended meanwhile
    return total


def server_cpu_seconds(dbname: str) -> float:
    """CPU time of the PostgreSQL backends connected to ``dbname`` (0 when empty)."""
    if not dbname:
        return 0.0
    total = 0.0
    marker = f" {dbname} ".encode()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes()
            if text.startswith(b"postgres: ") and marker in text:
                total += cpu_seconds(int(cmdline.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return total
