"""Batches on the dashboard, in a real headless browser on SQLite and PostgreSQL: the
batches page lists each batch with its jobs counted per state, a batch's page shows its
callbacks and its jobs (linked to their pages); names and callbacks written by hand are
shown as text, and a row that does not make sense costs that row, never the page."""

from __future__ import annotations

import json
import re
import uuid as uuid_module

from playwright.sync_api import expect

import queuejob
from tests import jobs
from tests.reliability.common import sql

#: what a stored name would bring into the page if it were markup
PAYLOADS = ['<script>window.__xss=1</script>', '<img src=x onerror=alert("xss-img")>',
            '<b id="bold">bold</b>']
INJECTED = "script:not([src]), img, #bold, [onerror]"


def clean(page) -> None:
    """No dialog, no script error, no console error, no element of stored data."""
    assert page.locator(INJECTED).count() == 0, page.url
    assert page.evaluate("window.__xss") is None
    assert page.watch.dialogs == [] and page.watch.errors == []
    assert page.watch.console == []


def test_the_pages_show_the_counts_and_the_jobs(web, page):
    db = web.db
    with db.session() as session:
        with queuejob.batch(session, "import 2026-12-03", on_done=jobs.noop.delayable(
                session, "sale.order", "report")) as b:
            done, cancelled, pending = jobs.noop.delay_many(
                session, [("sale.order", 1), ("sale.order", 2), ("sale.order", 3)])
        with queuejob.batch(session, "other") as other:
            jobs.noop.delay(session, "x")
    with db.session() as session:
        queuejob.set_done(session, done)
        queuejob.cancel(session, cancelled)
    page.goto(f"{web.url}/")
    page.get_by_role("link", name="Batches").click()
    expect(page).to_have_url(re.compile(r"/batches$"))
    row = page.locator(f"#batches tr[data-batch='{b.uuid}']")
    expect(row.locator(".batch-name")).to_have_text("import 2026-12-03")
    expect(row.locator(".badge")).to_have_text("open")
    for kind, count in (("done", 1), ("failed", 0), ("cancelled", 1), ("started", 0),
                        ("pending", 1), ("total", 3)):
        expect(row.locator(f".count-{kind}")).to_have_text(str(count))
    expect(row.locator(".progress-text")).to_have_text("33%")
    expect(page.locator(f"#batches tr[data-batch='{other.uuid}'] .count-total")
           ).to_have_text("1")
    page.goto(f"{web.url}/batches?state=done")
    expect(page.locator("#batches tbody tr")).to_have_count(1)
    expect(page.locator("#batches .empty")).to_contain_text("No batch done")

    page.goto(f"{web.url}/batches")
    page.locator(f"#batches tr[data-batch='{b.uuid}'] a").click()
    expect(page.locator("#batch-name")).to_have_text("import 2026-12-03")
    expect(page.locator("#batch-state")).to_have_text("open")
    counts = page.locator("#batch-counts")
    expect(counts).to_contain_text("1 done, 0 failed, 1 cancelled, 0 started, 1 pending")
    expect(page.locator(".callback")).to_contain_text('tests.jobs.noop args ["sale.order",'
                                                      '"report"]')
    job_rows = page.locator("#batch-jobs tbody tr")
    expect(job_rows).to_have_count(3)
    expect(page.locator(f"#batch-jobs tr[data-job='{pending}'] .badge")).to_have_text(
        "pending")
    page.locator(f"#batch-jobs tr[data-job='{done}'] a").click()
    expect(page).to_have_url(re.compile(f"/jobs/{done}$"))
    clean(page)


def test_rows_written_by_hand_cost_their_row_only(web, page):
    db = web.db
    with db.session() as session:
        member = jobs.noop.delay(session, "x")
        with queuejob.batch(session, "good") as good:
            jobs.noop.delay(session, "y")
    now = "?" if db.dialect == "sqlite" else "now()"
    stored = {}
    for name, on_done in ((PAYLOADS[0], "not json <b id=\"bold\">"),
                          (PAYLOADS[1], json.dumps({"func_name": PAYLOADS[2], "args": "[]"})),
                          (PAYLOADS[2] + "\x1b[31m", None)):
        batch_uuid = str(uuid_module.uuid4())
        stored[batch_uuid] = name
        params = [batch_uuid, name, *([1.0] if db.dialect == "sqlite" else []), on_done]
        sql(db, f"INSERT INTO queue_batch (uuid, name, state, date_created, on_done) "
                f"VALUES (?, ?, 'open', {now}, ?)", params)
        sql(db, "INSERT INTO queue_batch_job (batch_uuid, job_uuid) VALUES (?, ?)",
            (batch_uuid, member))
    if db.dialect == "sqlite":
        sql(db, "INSERT INTO queue_batch (uuid, name, state, date_created, callback_error) "
                "VALUES ('not a uuid', x'00ff', x'01', 'yesterday', 5)")
        sql(db, "INSERT INTO queue_batch (uuid, name, state, date_created) "
                "VALUES (7, 8, 'open', 9)")
    page.goto(f"{web.url}/batches")
    expect(page.locator(f"#batches tr[data-batch='{good.uuid}'] .count-total")
           ).to_have_text("1")
    for batch_uuid, name in stored.items():
        row = page.locator(f"#batches tr[data-batch='{batch_uuid}']")
        expect(row.locator(".batch-name")).to_contain_text(name[:20])
        expect(row.locator(".count-total")).to_have_text("1")
    if db.dialect == "sqlite":
        expect(page.locator("#batches tr[data-batch='not a uuid']")).to_have_count(1)
    clean(page)
    for batch_uuid in stored:
        page.goto(f"{web.url}/batches/{batch_uuid}")
        expect(page.locator("#batch-jobs tbody tr")).to_have_count(1)
        clean(page)
    first = next(iter(stored))
    page.goto(f"{web.url}/batches/{first}")
    expect(page.locator(".callback .error")).to_contain_text("not JSON")
    missing = page.goto(f"{web.url}/batches/{uuid_module.uuid4()}")
    assert missing is not None and missing.status == 404
    page.watch.console.clear()  # the 404 the browser logs
    clean(page)
