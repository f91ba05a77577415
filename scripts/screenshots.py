"""Screenshots of the dashboard for the docs: docs/img/overview.png and docs/img/job.png.

    .venv/bin/python scripts/screenshots.py [--out docs/img]

Makes a demo database (SQLite, in a temporary folder) with the jobs of ``queuejob demo``,
runs them with a worker, spreads their dates over the last hour so that the chart has a
shape, adds a small job graph whose mail bounces (the job page shown is that failed job,
with its graph), serves the dashboard on a free loopback port and photographs it with
Debian's headless chromium (Playwright pointed at /usr/bin/chromium).
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import uvicorn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

import queuejob  # noqa: E402
from queuejob import chain, group, operations  # noqa: E402
from queuejob.cli import demo_jobs  # noqa: E402
from queuejob.web import create_app  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync"]
CHANNELS = "root:4,root.import:2,root.export:2,root.mail:1,root.reports:1:sequential"


def make_demo(db: queuejob.Database, count: int) -> str:
    """Fill ``db``; returns the uuid of the failed job of the graph."""
    with db.session(user_id=1, context={"lang": "en"}) as session:
        demo_jobs.delay_demo_jobs(session, count, bounce_every=30)
    queuejob.Worker(db, channels=CHANNELS, modules=[demo_jobs.__name__]).run(burst=True)
    # spread the jobs over the last hour (a job's dates move together), so that the
    # chart of jobs done and failed per minute shows a day's shape, not one spike
    db.run(lambda conn: db.connector.execute_sql(conn, """
        UPDATE queue_job SET
            date_created = date_created - (id * 7919 % 3500),
            eta = eta - (id * 7919 % 3500),
            date_enqueued = date_enqueued - (id * 7919 % 3500),
            date_started = date_started - (id * 7919 % 3500),
            date_done = date_done - (id * 7919 % 3500),
            date_failed = date_failed - (id * 7919 % 3500)"""))
    # a job graph: import a partner, then export it twice and mail it (the mail
    # bounces), then the report, which waits for the failed mail
    with db.session(user_id=1) as session:
        fetch = demo_jobs.import_record.delayable(session, "res.partner", 4242,
                                                  description="Import partner 4242")
        exports = [demo_jobs.export_record.delayable(session, "res.partner", 4242,
                                                     description=f"Export partner 4242 to {to}")
                   for to in ("the CRM", "the ERP")]
        mail = demo_jobs.send_mail.delayable(session, "res.partner", 4242,
                                             "partner4242@example.invalid",
                                             description="Welcome mail to partner 4242")
        report = demo_jobs.compute_report.delayable(session, "account.report", "onboarding",
                                                    description="Onboarding report")
        chain(fetch, group(*exports, mail), report).delay()
    queuejob.Worker(db, channels=CHANNELS, modules=[demo_jobs.__name__]).run(burst=True)
    # a backlog, and a global configuration
    with db.session(user_id=2) as session:
        for index in range(40):
            demo_jobs.export_record.delay(session, "sale.order", 10_000 + index)
    operations.set_channel(db, "root.export", 2)
    operations.set_channel(db, "root.reports", 1, sequential=True)
    operations.set_channel(db, "root.mail", 1, paused=True)
    assert mail.uuid is not None
    return mail.uuid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "img"))
    parser.add_argument("--jobs", type=int, default=900)
    options = parser.parse_args()
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright
    with tempfile.TemporaryDirectory() as folder:
        db = queuejob.open(f"sqlite:///{folder}/demo.db")
        failed = make_demo(db, options.jobs)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(create_app(db), log_level="warning",
                                               lifespan="off"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            if time.monotonic() > deadline:
                raise SystemExit("the dashboard did not start")
            time.sleep(0.05)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM,
                                                     args=LAUNCH_ARGS, headless=True)
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.goto(f"http://127.0.0.1:{port}/")
                page.screenshot(path=str(out / "overview.png"), full_page=True)
                page.goto(f"http://127.0.0.1:{port}/jobs/{failed}")
                page.screenshot(path=str(out / "job.png"), full_page=True)
                browser.close()
        finally:
            server.should_exit = True
            thread.join(10)
            db.close()
    print(f"wrote {out / 'overview.png'} and {out / 'job.png'}")


if __name__ == "__main__":
    main()
