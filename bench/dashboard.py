"""The dashboard's jobs page on a database of a million jobs: server time per page.

    python -m bench.dashboard                       # both backends, 1,000,000 jobs
    python -m bench.dashboard --backend sqlite --jobs 200000

Fills a database with a million jobs spread over 30 days (done mostly; failed,
cancelled, pending and started ones; six channels, eight functions, four models),
serves the dashboard with uvicorn on a loopback port, and times each page from the
server's own Server-Timing header (the time until the response starts: queries and
template) and from the client. Target: under 300 ms for the first page and for
filtered pages.
"""

from __future__ import annotations

import argparse
import http.client
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import uvicorn  # noqa: E402

import queuejob  # noqa: E402
from queuejob.web import create_app  # noqa: E402

TARGET_MS = 300.0
PAGES = [
    ("first page (default: not done nor cancelled)", "/jobs", True),
    ("state=failed", "/jobs?state=failed", True),
    ("channel=root.export (and subchannels), default states", "/jobs?channel=root.export",
     True),
    ("state=failed, channel=root.mail", "/jobs?state=failed&channel=root.mail", True),
    ("function=app.jobs.task_3, every state", "/jobs?function=app.jobs.task_3&all=1", True),
    ("every state", "/jobs?all=1", True),
    ("every state, page 2", None, True),
    ("model=sale.order, user=7, every state", "/jobs?model=sale.order&user=7&all=1", False),
    ("sorted by priority, every state", "/jobs?all=1&sort=priority", False),
    ("search 'failure 99999' in failed jobs", "/jobs?state=failed&q=failure+99999", False),
    ("job page", None, False),
    ("overview (counts, chart of the last hour)", "/", False),
]

# One statement per dialect fills the table: ids 1..N, a job every 2.6 s over 30 days.
SQLITE_FILL = """
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :count)
INSERT INTO queue_job (uuid, state, func_name, model_name, args, kwargs, description, channel,
                       priority, max_retries, retry, attempt, user_id, exc_info, worker_id,
                       eta, date_created, date_enqueued, date_started, date_done, date_failed,
                       result)
SELECT printf('%08x-0000-4000-8000-%012x', i, i),
       CASE WHEN i % 100 < 2 THEN 'failed' WHEN i % 100 = 2 THEN 'cancelled'
            WHEN i % 100 BETWEEN 3 AND 7 THEN 'pending' WHEN i % 1000 = 8 THEN 'started'
            ELSE 'done' END AS state,
       'app.jobs.task_' || (i % 8), CASE i % 4 WHEN 0 THEN 'res.partner'
       WHEN 1 THEN 'sale.order' WHEN 2 THEN 'account.move' ELSE 'stock.picking' END,
       '[' || i || ', "record"]', '{}', 'Job number ' || i,
       CASE (i * 7) % 6 WHEN 0 THEN 'root' WHEN 1 THEN 'root.import' WHEN 2 THEN 'root.export'
       WHEN 3 THEN 'root.export.eu' WHEN 4 THEN 'root.mail' ELSE 'root.reports' END,
       CASE WHEN i % 3 = 0 THEN 5 ELSE 10 END, 5, i % 100 < 2, 1, i % 20,
       CASE WHEN i % 100 < 2 THEN 'Traceback (most recent call last):' || char(10)
            || '  File "app/jobs.py", line 12, in task' || char(10)
            || 'ValueError: failure ' || i END,
       CASE WHEN i % 1000 = 8 THEN 'bench-worker' END,
       NULL, :now - (:count - i) * 2.6, :now - (:count - i) * 2.6 + 0.5,
       :now - (:count - i) * 2.6 + 0.5, :now - (:count - i) * 2.6 + 1.0,
       CASE WHEN i % 100 < 2 THEN :now - (:count - i) * 2.6 + 1.0 END, 'ok'
FROM n
"""

POSTGRES_FILL = """
INSERT INTO queue_job (uuid, state, func_name, model_name, args, kwargs, description, channel,
                       priority, max_retries, retry, attempt, user_id, exc_info, worker_id,
                       eta, date_created, date_enqueued, date_started, date_done, date_failed,
                       result)
SELECT md5(i::text)::uuid,
       CASE WHEN i %% 100 < 2 THEN 'failed' WHEN i %% 100 = 2 THEN 'cancelled'
            WHEN i %% 100 BETWEEN 3 AND 7 THEN 'pending' WHEN i %% 1000 = 8 THEN 'started'
            ELSE 'done' END,
       'app.jobs.task_' || (i %% 8), (ARRAY['res.partner', 'sale.order', 'account.move',
                                          'stock.picking'])[i %% 4 + 1],
       '[' || i || ', "record"]', '{}', 'Job number ' || i,
       (ARRAY['root', 'root.import', 'root.export', 'root.export.eu', 'root.mail',
              'root.reports'])[(i * 7) %% 6 + 1],
       CASE WHEN i %% 3 = 0 THEN 5 ELSE 10 END, 5, (i %% 100 < 2)::int, 1, i %% 20,
       CASE WHEN i %% 100 < 2 THEN E'Traceback (most recent call last):\\n'
            || E'  File "app/jobs.py", line 12, in task\\n' || 'ValueError: failure ' || i END,
       CASE WHEN i %% 1000 = 8 THEN 'bench-worker' END,
       NULL, t, t + interval '0.5 s', t + interval '0.5 s', t + interval '1 s',
       CASE WHEN i %% 100 < 2 THEN t + interval '1 s' END, 'ok'
FROM generate_series(1, %(count)s) AS i,
     LATERAL (SELECT now() - (%(count)s - i) * interval '2.6 s' AS t) AS times
"""


def fill(db: queuejob.Database, count: int) -> float:
    started = time.monotonic()
    if db.dialect == "sqlite":
        def run(conn):
            db.connector.execute_sql(conn, SQLITE_FILL, {"count": count, "now": time.time()})
        db.run(run)
        db.run(lambda conn: db.connector.execute_sql(conn, "ANALYZE"))
    else:
        db.run(lambda conn: db.connector.execute_sql(conn, POSTGRES_FILL, {"count": count}))
        conn = db.connector.connect(autocommit=True)
        try:
            conn.execute("VACUUM ANALYZE queue_job")
        finally:
            conn.close()
    # the done (and not done) jobs are scattered over time; the latest are unfinished too
    return time.monotonic() - started


class Server:
    def __init__(self, db: queuejob.Database) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(create_app(db), log_level="warning",
                                                    lifespan="off"))
        self.thread = threading.Thread(target=self.server.run,
                                       kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    def get(self, path: str) -> tuple[float, float, str]:
        """(server ms from Server-Timing, client ms, body)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            started = time.perf_counter()
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read().decode()
            client = (time.perf_counter() - started) * 1000
            if response.status != 200:
                raise RuntimeError(f"GET {path}: {response.status} {body[:200]}")
            timing = response.getheader("server-timing", "")
            server = float(timing.split("dur=")[1]) if "dur=" in timing else float("nan")
            return server, client, body
        finally:
            conn.close()


def measure(server: Server, path: str, repeat: int) -> tuple[float, float, float]:
    for _ in range(2):
        server.get(path)
    servers, clients = [], []
    for _ in range(repeat):
        server_ms, client_ms, _ = server.get(path)
        servers.append(server_ms)
        clients.append(client_ms)
    servers.sort()
    return (statistics.median(servers), servers[int(len(servers) * 0.95) - 1 if
                                                  len(servers) > 1 else 0],
            statistics.median(clients))


def bench(url: str, count: int, repeat: int) -> list[tuple[str, float, float, float, bool]]:
    db = queuejob.open(url)
    print(f"filling {count:,} jobs ...", flush=True)
    seconds = fill(db, count)
    print(f"filled in {seconds:.0f} s", flush=True)
    results = []
    with Server(db) as server:
        next_path = job_path = None
        for label, fixed_path, target in PAGES:
            path = {"every state, page 2": next_path, "job page": job_path}.get(
                label, fixed_path)
            median, p95, client = measure(server, path, repeat)
            if label == "every state":
                body = server.get(path)[2]
                next_path = "/jobs?" + body.split('id="page-next" href="?')[1].split('"')[0] \
                    .replace("&amp;", "&")
                job_path = "/jobs/" + body.split('data-uuid="')[1].split('"')[0]
            results.append((label, median, p95, client, target))
            print(f"  {label:55s} server {median:7.1f} ms (p95 {p95:7.1f})  "
                  f"client {client:7.1f} ms" + ("" if not target else
                                               "  ok" if p95 < TARGET_MS else "  OVER"),
                  flush=True)
    db.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=15)
    options = parser.parse_args()
    backends = ["sqlite", "postgresql"] if options.backend == "both" else [options.backend]
    failed = False
    for backend in backends:
        print(f"== {backend}")
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as folder:
                results = bench(f"sqlite:///{folder}/jobs.db", options.jobs, options.repeat)
        else:
            from tests.pgserver import PostgresServer
            server = PostgresServer().start()
            try:
                url = server.create_database("bench_dashboard")
                results = bench(url, options.jobs, options.repeat)
            finally:
                server.stop()
        failed |= any(target and p95 >= TARGET_MS for _, _, p95, _, target in results)
    print("target met" if not failed else f"target of {TARGET_MS:.0f} ms missed")


if __name__ == "__main__":
    main()
