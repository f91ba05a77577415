"""A throw-away PgBouncer in front of a test PostgreSQL server (tests.pgserver).

Its own pgbouncer.ini and userlist in a temporary directory, a free loopback port, run in
the foreground as a child process the tests own (never the system's service, which
Debian's package installs and may start). Its databases forward to the server's: each
database ``name`` in transaction pooling mode, PgBouncer's default settings otherwise
(that is what queuejob must work behind), and ``name_session`` to the same database in
session pooling mode (what keeps a LISTEN). ``admin_users`` names the test user so that
the tests can read the admin console (SHOW POOLS, SHOW SERVERS): it changes nothing in
how connections are pooled. As root, PgBouncer runs as the ``postgres`` OS user (it
refuses root), as the server does.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from tests.pgserver import PostgresServer, free_port

BINARY = Path("/usr/sbin/pgbouncer")
SESSION_SUFFIX = "_session"


def find_binary() -> Path:
    if BINARY.exists():
        return BINARY
    found = shutil.which("pgbouncer")
    if found:
        return Path(found)
    raise RuntimeError("pgbouncer not found: install Debian's pgbouncer package "
                       "(scripts/test does)")


class PgBouncer:
    def __init__(self, server: PostgresServer, dbnames: tuple[str, ...] = ("queuejob_test",),
                 pool_mode: str = "transaction") -> None:
        self.binary = find_binary()
        self.server = server
        self.dbnames = dbnames
        self.pool_mode = pool_mode
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="queuejob-pgbouncer-"))
        self.ini = self.root / "pgbouncer.ini"
        self.userlist = self.root / "userlist.txt"
        self.logfile = self.root / "pgbouncer.log"
        self.user = server.user  # the server's superuser: trusted there, trusted here
        self.as_user: str | None = "postgres" if os.geteuid() == 0 else None
        self.process: subprocess.Popen | None = None

    def _config(self) -> str:
        target = f"host=127.0.0.1 port={self.server.port}"
        databases = []
        for name in self.dbnames:
            databases.append(f"{name} = {target} dbname={name}")
            databases.append(f"{name}{SESSION_SUFFIX} = {target} dbname={name} "
                             "pool_mode=session")
        # Only what running a private instance needs (where to listen, where its files
        # are, who may connect, who may read the admin console) and pool_mode; every
        # pooling setting keeps PgBouncer's default (no ignore_startup_parameters, no
        # max_prepared_statements, default_pool_size 20, server_reset_query...).
        return "\n".join([
            "[databases]", *databases, "",
            "[pgbouncer]",
            "listen_addr = 127.0.0.1",
            f"listen_port = {self.port}",
            f"unix_socket_dir = {self.root}",
            "auth_type = trust",
            f"auth_file = {self.userlist}",
            f"admin_users = {self.user}",
            f"pool_mode = {self.pool_mode}",
            "",
        ])

    def start(self, timeout: float = 30.0) -> PgBouncer:
        self.ini.write_text(self._config())
        self.userlist.write_text(f'"{self.user}" ""\n')
        command = [str(self.binary), str(self.ini)]
        if self.as_user:
            pw = pwd.getpwnam(self.as_user)
            for path in (self.root, self.ini, self.userlist):
                os.chown(path, pw.pw_uid, pw.pw_gid)
            command = ["runuser", "-u", self.as_user, "--", *command]
        with open(self.logfile, "ab") as log:
            # its own process group: stop() signals runuser and pgbouncer together
            self.process = subprocess.Popen(command, stdout=log, stderr=log, cwd=self.root,
                                            start_new_session=True)
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"pgbouncer exited with {self.process.returncode}:\n"
                                   f"{self.log()[-3000:]}")
            try:
                self.show("VERSION")
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"pgbouncer not ready after {timeout}s:\n"
                                       f"{self.log()[-3000:]}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # pgbouncer: immediate shutdown
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        return self.logfile.read_text(errors="replace") if self.logfile.exists() else ""

    def url(self, dbname: str = "queuejob_test", session: bool = False) -> str:
        """The database through PgBouncer: its transaction pool, or with ``session`` its
        session pool."""
        alias = dbname + SESSION_SUFFIX if session else dbname
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{alias}"

    # -- the admin console ---------------------------------------------------------------
    def admin(self) -> psycopg.Connection:
        # the admin console speaks only the simple query protocol: a client-side cursor
        return psycopg.connect(f"postgresql://{self.user}@127.0.0.1:{self.port}/pgbouncer",
                               autocommit=True, connect_timeout=5,
                               cursor_factory=psycopg.ClientCursor, row_factory=dict_row)

    def show(self, what: str) -> list[dict[str, Any]]:
        """``SHOW <what>`` on the admin console (POOLS, CLIENTS, SERVERS, ...)."""
        with self.admin() as conn:
            return conn.execute(f"SHOW {what}").fetchall()

    def pools(self, dbname: str = "queuejob_test", session: bool = False) -> dict[str, Any]:
        """The SHOW POOLS row of a database's pool (zeros while it has none)."""
        alias = dbname + SESSION_SUFFIX if session else dbname
        for row in self.show("POOLS"):
            if row["database"] == alias:
                return row
        return {"database": alias, "cl_active": 0, "cl_waiting": 0, "sv_active": 0,
                "sv_idle": 0, "sv_used": 0, "sv_tested": 0, "sv_login": 0}

    def server_connections(self, dbname: str = "queuejob_test") -> list[dict[str, Any]]:
        """PgBouncer's connections to the server on ``dbname`` (both of its pools), as
        PostgreSQL's pg_stat_activity shows them (pid, state, query...), read through a
        direct connection: PgBouncer's SHOW SERVERS names their server pids."""
        pids = [row["remote_pid"] for row in self.show("SERVERS") if row["remote_pid"]]
        if not pids:
            return []
        with psycopg.connect(self.server.url(dbname), autocommit=True,
                             row_factory=dict_row) as conn:
            return conn.execute(
                "SELECT pid, state, query, xact_start FROM pg_stat_activity "
                "WHERE datname = %s AND pid = ANY(%s)", (dbname, pids)).fetchall()
