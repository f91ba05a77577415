"""The machine and the servers, recorded with the results."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import sqlite3
import subprocess
import sys
from typing import Any

from bench import config


def _first(path: str, prefix: str) -> str | None:
    with contextlib.suppress(OSError), open(path) as lines:
        for line in lines:
            if line.startswith(prefix):
                return line.split(":", 1)[1].strip()
    return None


def _fs_type(path: str) -> str:
    try:
        out = subprocess.run(["df", "-T", path], capture_output=True, text=True, timeout=10,
                             check=False)
        return out.stdout.splitlines()[1].split()[1]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "?"


def queuejob_source() -> dict[str, Any]:
    """The commit queuejob was measured at, and whether src/ had uncommitted changes."""
    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=config.ROOT, capture_output=True, text=True,
                             timeout=10, check=False)
        return out.stdout.strip()
    try:
        return {"commit": git("rev-parse", "--short", "HEAD") or None,
                "src_modified": bool(git("status", "--porcelain", "--", "src"))}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None}


def postgres(servers: Any) -> dict[str, Any] | None:
    if servers.postgres is None:
        return None
    from bench.pgutil import pg_settings
    try:
        found: dict[str, Any] = pg_settings(servers.postgres.url("postgres"))
    except Exception as exc:
        return {"error": repr(exc)}
    found["data_dir_fs"] = _fs_type(str(servers.postgres.root))
    found["connection"] = "TCP, 127.0.0.1"
    return found


def redis(servers: Any) -> dict[str, Any] | None:
    if servers.redis is None:
        return None
    try:
        import redis as redis_py
        client = redis_py.Redis(host="127.0.0.1", port=servers.redis.port)
        found = {"version": client.info("server").get("redis_version")}
        for name in ("save", "appendonly", "appendfsync"):
            found[name] = client.config_get(name).get(name)
        client.close()
    except Exception as exc:
        return {"error": repr(exc)}
    found["data_dir_fs"] = _fs_type(str(servers.redis.dir))
    found["connection"] = "TCP, 127.0.0.1"
    return found


def collect(servers: Any) -> dict[str, Any]:
    mem_kib = _first("/proc/meminfo", "MemTotal")
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpu_model": _first("/proc/cpuinfo", "model name") or platform.processor(),
        "cpus": os.cpu_count(),
        "memory_gib": round(int(mem_kib.split()[0]) / 1024 / 1024, 1) if mem_kib else None,
        "os": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "queuejob_source": queuejob_source(),
        "sqlite": sqlite3.sqlite_version,
        "sqlite_fs": _fs_type(str(config.workdir())),
        "postgresql": postgres(servers),
        "redis": redis(servers),
        "loadavg_at_start": os.getloadavg(),
    }
