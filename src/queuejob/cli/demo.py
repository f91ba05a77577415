"""``queuejob demo``: a few thousand jobs on the embedded SQLite database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .. import operations
from ..operations import open_database
from . import demo_jobs
from .output import cell, plain

DEFAULT_DB = "queuejob-demo.db"
CHANNELS = "root:4,root.import:2,root.export:2,root.mail:1,root.reports:1:sequential"


def run_demo(  # noqa: C901 - the demo's steps in the order a person watches them
        db_url: str | None, count: int, processes: int) -> None:
    console = Console(highlight=False)
    if db_url is None:
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(DEFAULT_DB + suffix):
                os.remove(DEFAULT_DB + suffix)
        db_url = f"sqlite:///{DEFAULT_DB}"
    db = open_database(db_url)
    started = time.monotonic()
    with db.session(user_id=1, context={"lang": "en"}) as session:
        demo_jobs.delay_demo_jobs(session, count)
    enqueued = time.monotonic() - started
    total = sum(sum(by_state.values()) for by_state in operations.stats(db).values())
    # the URL is what a person typed: text, never markup
    console.print(f"[bold]queuejob demo[/]: {total} jobs enqueued in {enqueued:.2f}s "
                  f"into {escape(plain(db_url))}")
    console.print(f"{processes} worker process(es), channels {CHANNELS}")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    workers = [subprocess.Popen(
        [sys.executable, "-m", "queuejob", "worker", "--db", db_url, "--channels", CHANNELS,
         "--module", demo_jobs.__name__, "--poll", "0.2", "--log-level", "WARNING"],
        env=env, stderr=subprocess.DEVNULL) for _ in range(processes)]
    run_started = time.monotonic()
    try:
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                      MofNCompleteColumn(), TextColumn("{task.fields[detail]}"),
                      TimeElapsedColumn(), console=console) as progress:
            task = progress.add_task("running", total=total, detail="")
            while True:
                counts: Counter[str] = Counter()
                for by_state in operations.stats(db).values():
                    counts.update(by_state)
                finished = counts["done"] + counts["failed"] + counts["cancelled"]
                progress.update(task, completed=finished,
                                detail=f"started {counts['started']}  pending "
                                       f"{counts['pending']}  failed {counts['failed']}")
                if finished >= total:
                    break
                if any(worker.poll() is not None for worker in workers):
                    raise click.ClickException("a worker process exited early")
                time.sleep(0.1)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        for worker in workers:
            try:
                worker.wait(10)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
    elapsed = time.monotonic() - run_started
    stats = operations.stats(db)
    table = Table(title="Jobs by channel", box=None, header_style="bold")
    for column in ("channel", "done", "failed", "cancelled", "retried"):
        table.add_column(column, justify="left" if column == "channel" else "right")
    rows = db.read(lambda conn: db.connector.execute_sql(
        conn, "SELECT channel, count(*) FROM queue_job WHERE retry > 1 GROUP BY channel"
    ).fetchall())
    retried = {channel: number for channel, number in rows}
    # --db may name a database holding other jobs: its channels are data
    for channel in sorted(stats, key=str):
        by_state = stats[channel]
        table.add_row(cell(channel), str(by_state.get("done", 0)),
                      str(by_state.get("failed", 0)), str(by_state.get("cancelled", 0)),
                      str(retried.get(channel, 0)))
    console.print(table)
    console.print(f"{total} jobs finished in {elapsed:.1f}s "
                  f"({total / max(elapsed, 1e-9):.0f} jobs/s, retries and their delays "
                  "included).")
    console.print(f"See the failed ones: [bold]queuejob jobs --db {escape(plain(db_url))} "
                  "--state failed[/]")
    db.close()
