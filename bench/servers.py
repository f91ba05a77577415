"""The throw-away servers of the benchmark: PostgreSQL and Redis, loopback only.

PostgreSQL is ``tests.pgserver.PostgresServer(fast=False)``: a fresh cluster with
initdb's defaults (fsync, synchronous_commit and full_page_writes on), on a free port.
Redis is Debian's ``redis-server`` with its built-in defaults (RDB snapshots, no AOF),
on a free port, its files in a temporary folder. Both are stopped by ``stop()``, which
only touches the processes started here.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.pgserver import PostgresServer, free_port


class Redis:
    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="queuejob-redis-"))
        self.proc: subprocess.Popen | None = None

    def start(self) -> Redis:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server not found: install Debian's redis-server")
        self.proc = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.dir),
             "--daemonize", "no", "--protected-mode", "yes",
             "--logfile", str(self.dir / "redis.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        deadline = time.monotonic() + 20
        while not self.ping():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        return self

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class Servers:
    """Starts what the chosen systems need; ``stop()`` is safe to call at any time."""

    def __init__(self) -> None:
        self.postgres: PostgresServer | None = None
        self.redis: Redis | None = None

    def start(self, postgres: bool, redis: bool) -> Servers:
        if postgres:
            server = PostgresServer(fast=False)
            self.postgres = server
            server.start()
        if redis:
            self.redis = Redis()
            self.redis.start()
        return self

    def env(self) -> dict[str, str]:
        env = {}
        if self.postgres is not None:
            env["QUEUEJOB_BENCH_PG"] = self.postgres.url("").rstrip("/")
        if self.redis is not None:
            env["QUEUEJOB_BENCH_REDIS"] = self.redis.url()
        return env

    def stop(self) -> None:
        if self.redis is not None:
            with contextlib.suppress(Exception):
                self.redis.stop()
            self.redis = None
        if self.postgres is not None:
            with contextlib.suppress(Exception):
                self.postgres.stop()
            self.postgres = None
