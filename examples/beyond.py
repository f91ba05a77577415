"""Job graphs, a periodic job, async jobs and waiting for an outcome, on SQLite.

    python examples/beyond.py

Builds an import -> (two exports side by side) -> report graph, runs it with a
worker in this process, waits for the report's outcome, and shows a job that
an async function awaited.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import threading
from pathlib import Path

import queuejob
from queuejob import chain, group, job


@job(default_channel="root.import")
def import_orders(session, model_name, day):
    """Import the orders of a day."""
    return f"imported the orders of {day}"


@job(default_channel="root.export")
def export_orders(session, model_name, day, target):
    """Export a day's orders to one target."""
    return f"exported {day} to {target}"


@job
def report(session, model_name, day):
    """Report once both exports are done."""
    return f"report of {day} ready"


@job
async def notify(session, model_name, address):
    """An async job: awaits without holding a thread."""
    await asyncio.sleep(0.1)
    return f"notified {address}"


@job(cron="0 3 * * *")
def nightly_cleanup(session):
    """Delayed at 03:00 every day by one of the running workers."""
    return "cleaned"


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        db = queuejob.open(f"sqlite:///{Path(folder) / 'jobs.db'}")
        with db.session(user_id=1) as session:
            first = import_orders.delayable(session, "sale.order", "2026-11-27")
            crm = export_orders.delayable(session, "sale.order", "2026-11-27", "crm")
            erp = export_orders.delayable(session, "sale.order", "2026-11-27", "erp")
            last = report.delayable(session, "sale.order", "2026-11-27")
            chain(first, group(crm, erp), last).delay()
            mail = notify.delay(session, "res.partner", "ops@example.com")
        worker = queuejob.Worker(db, channels="root:4", modules=[__name__])
        thread = threading.Thread(target=worker.run)
        thread.start()
        try:
            outcome = db.wait(last.uuid, timeout=30)
            print(f"{outcome.state}: {outcome.result}")
            print(f"{db.wait(mail, timeout=30).result}")
        finally:
            worker.stop()
            thread.join()
        for row in queuejob.operations.schedules(db):
            print(f"schedule {row['name']}: next run {row['next_run']:%Y-%m-%d %H:%M} UTC")
        db.close()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
