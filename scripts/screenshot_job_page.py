"""A screenshot of a job's page while the job runs: its progress bar and its own log, per
attempt. Writes docs/img/job-page.png.

    .venv/bin/python scripts/screenshot_job_page.py [--out docs/img]

Makes a database (SQLite, in a temporary folder) with one job that syncs invoices: its
first attempt logs a few lines, a warning and the traceback of a timeout, then asks to be
retried; its second attempt reports its progress invoice by invoice and stops at 74 of
120 until the screenshot is taken. A worker runs it in a thread; the dashboard is served
on a free loopback port and photographed with Debian's headless chromium (Playwright
pointed at /usr/bin/chromium), once the page has shown the report by itself.
"""

from __future__ import annotations

import argparse
import linecache
import logging
import socket
import sys
import tempfile
import threading
import time
import types
from pathlib import Path

import uvicorn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

import queuejob  # noqa: E402
from queuejob.web import create_app  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync"]
#: the job's module, as an application would write it (made here under its own name, so
#: that the page shows an application's function and traceback, not this script's)
SHOP_INVOICES = """\
import logging
import threading

from queuejob import RetryableJobError, job

INVOICES = 120
SHOWN_AT = 74
#: the running attempt waits here until the screenshot is taken
release = threading.Event()
log = logging.getLogger("shop.invoices")


def read_page(number):
    raise TimeoutError("the ERP did not answer within 30 s")


@job(default_channel="root.erp")
def sync_invoices(session, model_name, since):
    \"\"\"Sync the invoices changed since ``since`` with the ERP.\"\"\"
    log.info("fetching the invoices changed since %s from the ERP", since)
    if session.job.attempt == 1:
        log.warning("invoice INV-2026-0042: the customer has no VAT number, skipped")
        try:
            read_page(3)
        except TimeoutError:
            log.exception("page 3 of the ERP's invoices could not be read")
            raise RetryableJobError("the ERP timed out", seconds=0.1) from None
    for number in range(1, INVOICES + 1):
        session.progress(number, INVOICES, f"invoice INV-2026-{number:04d}")
        if number == SHOWN_AT:
            release.wait(60)
    log.info("%d invoices synced", INVOICES)
    return INVOICES
"""


def shop_invoices() -> types.ModuleType:
    """The module ``shop.invoices``, from SHOP_INVOICES (its source known to tracebacks)."""
    filename = "shop/invoices.py"
    lines = SHOP_INVOICES.splitlines(keepends=True)
    linecache.cache[filename] = (len(SHOP_INVOICES), None, lines, filename)
    module = types.ModuleType("shop.invoices")
    module.__file__ = filename
    sys.modules["shop.invoices"] = module
    exec(compile(SHOP_INVOICES, filename, "exec"), module.__dict__)  # noqa: S102
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "img"))
    options = parser.parse_args()
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from playwright.sync_api import expect, sync_playwright
    shop = shop_invoices()
    with tempfile.TemporaryDirectory() as folder:
        db = queuejob.open(f"sqlite:///{folder}/shop.db")
        with db.session(user_id=1) as session:
            uuid = shop.sync_invoices.delay(session, "account.move", "2026-12-01",
                                           description="Sync the invoices with the ERP")
        worker = queuejob.Worker(db, poll_interval=0.05)
        worker_thread = threading.Thread(target=worker.run, daemon=True)
        worker_thread.start()
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
                page.goto(f"http://127.0.0.1:{port}/jobs/{uuid}")
                # the page follows the job by itself: the second attempt's report
                expect(page.locator("#progress-text")).to_have_text(
                    f"{shop.SHOWN_AT} / {shop.INVOICES} (61%)", timeout=30_000)
                expect(page.locator("#log .attempt-log")).to_have_count(1)
                page.screenshot(path=str(out / "job-page.png"), full_page=True)
                browser.close()
        finally:
            shop.release.set()
            worker.stop()
            worker_thread.join(20)
            server.should_exit = True
            thread.join(10)
            db.close()
    print(f"wrote {out / 'job-page.png'}")


if __name__ == "__main__":
    main()
