"""What the loop test of tests/test_async_client.py runs beside an asyncio application, in
a process of its own (so that no thread of the test's process competes with the event
loop for the interpreter): another connection that takes the queue's table (PostgreSQL)
or the file's write lock (SQLite) for 20 ms every 40 ms, and what a worker would do to
the jobs the application waits for (described "waited"): set them done.

    python -m tests.async_pressure URL

Prints "ready" once it holds its connections; stops when its standard input closes.
"""

from __future__ import annotations

import sqlite3
import sys
import threading

import psycopg

import queuejob


def hold(url: str, stop: threading.Event) -> None:
    if url.startswith("sqlite:"):
        conn: object = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        take, give = ["BEGIN IMMEDIATE"], "COMMIT"
    else:
        conn = psycopg.connect(url, autocommit=True, prepare_threshold=None)
        take, give = ["BEGIN", "LOCK TABLE queue_job IN EXCLUSIVE MODE"], "COMMIT"
    try:
        while not stop.wait(0.02):
            for statement in take:
                conn.execute(statement)  # type: ignore[attr-defined]
            stop.wait(0.02)
            conn.execute(give)  # type: ignore[attr-defined]
    finally:
        conn.close()  # type: ignore[attr-defined]


def finish_waited(db: queuejob.Database, stop: threading.Event) -> None:
    while not stop.wait(0.05):
        with db.session() as session:
            wanted = [str(row[0]) for row in session.execute(
                "SELECT uuid FROM queue_job WHERE state = 'pending' "
                "AND description = 'waited' LIMIT 20").fetchall()]
            if wanted:
                queuejob.set_done(session, *wanted)


def main() -> None:
    url = sys.argv[1]
    stop = threading.Event()
    db = queuejob.open(url)
    threads = [threading.Thread(target=hold, args=(url, stop)),
               threading.Thread(target=finish_waited, args=(db, stop))]
    for thread in threads:
        thread.start()
    print("ready", flush=True)
    sys.stdin.read()  # until the test closes it
    stop.set()
    for thread in threads:
        thread.join()
    db.close()


if __name__ == "__main__":
    main()
