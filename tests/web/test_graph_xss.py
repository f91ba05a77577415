"""Stored XSS in a job graph: payloads in the descriptions, function names and states of a
graph's jobs are shown as text in its drawing (inline SVG) and its table; no dialog opens,
no script of theirs runs, no element of theirs enters the page."""

from __future__ import annotations

from playwright.sync_api import expect

from queuejob import chain, group
from tests.web import webjobs
from tests.web.test_xss import PAYLOADS, _safe


def test_graph_payloads_are_shown_as_text(web, page):
    db = web.db
    with db.session() as session:
        jobs = [webjobs.echo.delayable(session, None, payload, description=payload)
                for payload in PAYLOADS]
        chain(jobs[0], group(*jobs[1:-1]), jobs[-1]).delay()
    uuids = [job.uuid for job in jobs]
    # function names and a state that the API would refuse, written as another tool
    # might have: the dashboard must not trust the database either
    placeholder = "?" if db.dialect == "sqlite" else "%s"

    def write(conn):
        for index, job_uuid in enumerate(uuids):
            db.connector.execute_sql(
                conn, f"UPDATE queue_job SET func_name = {placeholder} WHERE uuid = "
                f"{placeholder}", (f"mod.{PAYLOADS[index]}", job_uuid))
        db.connector.execute_sql(
            conn, f"UPDATE queue_job SET state = {placeholder} WHERE uuid = {placeholder}",
            (PAYLOADS[3], uuids[3]))
    db.run(write)

    for index, job_uuid in enumerate(uuids):
        page.goto(f"{web.url}/jobs/{job_uuid}")
        _safe(page)
        expect(page.locator("#graph a.node")).to_have_count(len(PAYLOADS))
        expect(page.locator("#graph a.node.current")).to_have_attribute("data-uuid", job_uuid)
        node = page.locator(f"#graph a.node[data-uuid='{job_uuid}']")
        # the full texts in the box's tooltip, as text
        title = node.locator("title").text_content()
        assert f"mod.{PAYLOADS[index]}" in title and PAYLOADS[index] in title.splitlines()
        row = page.locator(f"#graph-jobs tr[data-uuid='{job_uuid}']")
        expect(row.locator("td.desc")).to_have_text(PAYLOADS[index])
        expect(row.locator("td").nth(2)).to_have_text(f"mod.{PAYLOADS[index]}")
    # the state written by hand is text too: in the table's badge and the box's data
    page.goto(f"{web.url}/jobs/{uuids[0]}")
    _safe(page)
    expect(page.locator(f"#graph a.node[data-uuid='{uuids[3]}']")).to_have_attribute(
        "data-state", PAYLOADS[3])
    expect(page.locator(f"#graph-jobs tr[data-uuid='{uuids[3]}'] .badge")).to_have_text(
        PAYLOADS[3])
    expect(page.locator("#graph-summary")).to_contain_text(PAYLOADS[3])
    # nothing was even blocked by the Content-Security-Policy: nothing tried to run
    assert page.watch.console == []
