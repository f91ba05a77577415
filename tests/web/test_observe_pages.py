"""Watching a job run on the dashboard, on SQLite and PostgreSQL: the job page shows the
progress a job reports and what it logged, per attempt, and follows the job without a
reload (its script polls /jobs/UUID/live.json); the jobs list shows a bar for started
jobs. Stored text is shown as text, and a stored value that is not what it should be
(written by hand) costs that value, never the page, the list or the endpoint."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect
from starlette.testclient import TestClient

import queuejob
from queuejob.web import create_app, security
from tests import jobs
from tests.helpers import ThreadWorker, run_burst, spawn_worker, stop_process, wait_until
from tests.reliability.common import sql

PAYLOADS = ['<script>window.__xss=1</script>', '<img src=x onerror=alert("xss-img")>',
            '<b id="bold">bold</b>']
INJECTED = "script:not([src]), img, #bold, [onerror]"


@pytest.fixture
def client(db) -> Iterator[TestClient]:
    with TestClient(create_app(db), base_url="http://127.0.0.1") as test_client:
        yield test_client


@pytest.fixture
def info_logs() -> Iterator[None]:
    """The progressing job's INFO lines reach the capture (a worker process sets its
    log level to INFO; a worker thread of the tests' process runs under WARNING)."""
    logger = logging.getLogger("tests.jobs.progressing")
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.setLevel(level)


def started(db: queuejob.Database, done: Any = 1, total: Any = 4,
            message: Any = "halfway", **columns: Any) -> str:
    """A job marked started in its first attempt with a progress report, written by
    hand (as another tool could); ``columns`` override any column."""
    with db.session() as session:
        uuid = jobs.noop.delay(session, "m", description="watched by hand")
    values = {"state": "started", "attempt": 1, "worker_id": "w1", "progress_attempt": 1,
              "progress_done": done, "progress_total": total,
              "progress_message": message, **columns}
    sql(db, "UPDATE queue_job SET " + ", ".join(f"{key} = ?" for key in values)
        + (", date_started = date_created, date_progress = date_created"
           if "date_started" not in columns else "") + " WHERE uuid = ?",
        (*values.values(), uuid))
    return uuid


def add_log(db: queuejob.Database, uuid: str, attempt: Any, lines: Any, dropped: Any = 0
            ) -> None:
    sql(db, "INSERT INTO queue_job_log (job_uuid, attempt, lines, dropped) "
            "VALUES (?, ?, ?, ?)", (uuid, attempt, lines, dropped))


def clean(page) -> None:
    """No element or script of stored data, no dialog, no script error."""
    assert page.locator(INJECTED).count() == 0, page.url
    assert page.evaluate("window.__xss") is None
    assert page.watch.dialogs == [] and page.watch.errors == []
    assert page.watch.console == []


# -- live, in a real browser, with a real worker process ------------------------------------
def test_the_job_page_follows_a_running_job_without_a_reload(web, page, db_url, job_env,
                                                             tmp_path):
    gate = tmp_path / "gate"
    with web.db.session() as session:
        uuid = jobs.progressing.delay(session, "m", 3, gate=str(gate))
    page.goto(f"{web.url}/jobs/{uuid}")
    # a mark of this document: a reload (or any navigation) would lose it
    page.evaluate("window.__same_document = true")
    expect(page.locator("#progress")).to_be_hidden()  # not started: nothing reported
    worker = spawn_worker(db_url, job_env, "--poll", "0.05", log=tmp_path / "worker.log")
    try:
        # the worker process reports step 1 of 3 and waits at the gate: the page shows
        # it by itself
        expect(page.locator("#job-state")).to_have_text("started", timeout=30_000)
        expect(page.locator("#progress-text")).to_have_text("1 / 3 (33%)", timeout=30_000)
        expect(page.locator("#progress-message")).to_have_text("step 1 of 3")
        bar = page.locator("#progress-bar")
        expect(bar).to_be_visible()
        expect(bar).to_have_js_property("value", 1)
        expect(bar).to_have_js_property("max", 3)
        # what it logged so far is stored while it runs, and shown
        running_log = page.locator("#log .attempt-log[data-attempt='1']")
        expect(running_log.locator("tr .message")).to_have_text(["did step 1"],
                                                                 timeout=30_000)
        expect(page.locator("#job-state")).to_have_text("started")
        gate.touch()
        # the job ends: its state, its last report and its log, still in this document
        expect(page.locator("#job-state")).to_have_text("done", timeout=30_000)
        expect(page.locator("#progress-text")).to_have_text("3 / 3 (100%)")
        expect(bar).to_have_js_property("value", 3)
        log = page.locator("#log .attempt-log[data-attempt='1']")
        expect(log).to_contain_text("3 line(s)")
        lines = log.locator("tr")
        expect(lines).to_have_count(3)
        for step in (1, 2, 3):
            row = lines.nth(step - 1)
            expect(row.locator(".level")).to_have_text("INFO")
            expect(row.locator(".logger")).to_have_text("tests.jobs.progressing")
            expect(row.locator(".message")).to_have_text(f"did step {step}")
        assert page.evaluate("window.__same_document") is True
        # an ended job is not watched any more
        expect(page.locator("#job-live")).to_have_attribute("data-ended", "1")
    finally:
        assert stop_process(worker) == 0
    clean(page)


# -- the live state's endpoint and the list's bar, with a real worker -----------------------
def test_the_live_state_of_a_job_and_the_bar_of_the_list(db, client, info_logs, tmp_path):
    gate = tmp_path / "gate"
    with db.session() as session:
        uuid = jobs.progressing.delay(session, "m", 2, gate=str(gate))
        waiting = jobs.noop.delay(session, "m", eta=3600)
    response = client.get(f"/jobs/{uuid}/live.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-security-policy"] == security.CONTENT_SECURITY_POLICY
    assert response.headers["cache-control"] == "no-store"
    state = response.json()
    assert (state["uuid"], state["state"], state["ended"], state["progress"],
            state["logs"], state["log_marker"]) == (uuid, "pending", False, None, [], "")
    assert state["dates"]["date_created"] and state["dates"]["date_started"] is None
    with ThreadWorker(db, poll_interval=0.05):
        # the first report, stored while the job waits at its gate
        state = wait_until(lambda: live_state(client, uuid, "progress"),
                           message="the first report")
        assert state["state"] == "started" and state["ended"] is False
        assert state["attempt"] == 1
        assert state["progress"] == {"done": 1, "total": 2, "percent": 50,
                                     "text": "1 / 2 (50%)", "message": "step 1 of 2"}
        assert state["dates"]["date_started"] and state["dates"]["date_progress"]
        assert state["dates"]["date_done"] is None
        # the jobs list: a bar in the started job's row, none in the waiting job's
        listing = client.get("/jobs").text
        running_row = _row_html(listing, uuid)
        assert '<progress max="2" value="1">' in running_row and "50%" in running_row
        assert "step 1 of 2" in running_row
        assert "<progress" not in _row_html(listing, waiting)
        assert '<progress max="2" value="1">' in client.get("/workers").text
        gate.touch()
        state = wait_until(lambda: live_state(client, uuid, "ended"),
                           message="the job's end")
    assert state["state"] == "done"
    assert state["progress"]["text"] == "2 / 2 (100%)"
    assert state["progress"]["percent"] == 100
    assert state["dates"]["date_done"]
    assert state["logs"] == [{"attempt": 1, "lines": 2, "dropped": 0, "problem": None}]
    assert state["log_marker"] == "1:2:0:0"
    # an ended job has no bar in the list (done jobs listed too)
    assert "<progress" not in _row_html(client.get("/jobs?all=1").text, uuid)
    # the job's page: the bar and the log, whose lines keep their order and level
    page = client.get(f"/jobs/{uuid}").text
    assert '<progress id="progress-bar" max="2" value="2"' in page
    assert page.index("did step 1") < page.index("did step 2")
    missing = client.get("/jobs/00000000-0000-4000-8000-000000000000/live.json")
    assert missing.status_code == 404 and "no job" in missing.json()["error"]


def live_state(client: TestClient, uuid: str, key: str) -> dict[str, Any] | None:
    """The job's live state once its ``key`` is set (else None)."""
    state = client.get(f"/jobs/{uuid}/live.json").json()
    return state if state[key] else None


def _row_html(listing: str, uuid: str) -> str:
    start = listing.index(f'data-uuid="{uuid}"')
    return listing[start:listing.index("</tr>", start)]


def test_the_log_of_each_attempt_last_first_with_its_tracebacks_and_counts(db, client):
    with db.session() as session:
        uuid = jobs.chatty.delay(session, "m", ["first", "second"], fail=True)
    run_burst(db)
    with db.session() as session:  # failed: requeued by hand, it fails again
        queuejob.requeue(session, uuid)
    run_burst(db)
    state = client.get(f"/jobs/{uuid}/live.json").json()
    assert state["state"] == "failed"
    assert [entry["attempt"] for entry in state["logs"]] == [2, 1]
    assert [entry["lines"] for entry in state["logs"]] == [3, 3]
    page = client.get(f"/jobs/{uuid}").text
    log = page[page.index('<section id="log">'):page.index("</section>",
                                                            page.index('<section id="log">'))]
    assert log.index('data-attempt="2"') < log.index('data-attempt="1"')
    # the traceback logged with "it failed" keeps its lines
    assert "it failed\nTraceback (most recent call last):\n" in log
    assert 'raise ValueError(&#34;boom&#34;)' in log and "ValueError: boom</td>" in log
    assert log.count('class="level-error"') == 2 and log.count('class="level-warning"') == 4
    # the current attempt says when it started and failed
    assert "; started " in log and ", failed " in log


# -- stored values that are not what they should be ------------------------------------------
def _answers(client: TestClient, uuid: str) -> tuple[str, str, dict[str, Any]]:
    """The job's page, the list of every job and the job's live state: all 200."""
    bodies = []
    for path in (f"/jobs/{uuid}", "/jobs?all=1&limit=500", "/workers",
                 f"/jobs/{uuid}/live.json"):
        response = client.get(path)
        assert response.status_code == 200, (path, response.text[:300])
        bodies.append(response)
    return bodies[0].text, bodies[1].text, bodies[3].json()


#: progress columns written by hand that hold no report (both backends)
NO_REPORT = [{"total": 0}, {"done": 5, "total": 4}, {"done": -1}, {"total": -3},
             {"done": None}, {"progress_attempt": 7}]
#: the same, with values of another type (SQLite keeps any value in any column)
NO_REPORT_SQLITE = [{"done": "abc"}, {"total": "4 of them"}, {"done": b"\x00\xff"},
                    {"total": 1e300}, {"progress_attempt": "first"}, {"done": 1.5},
                    {"total": "x" * 1_000_000}]


def test_progress_columns_that_hold_no_report_cost_only_the_bar(db, client):
    good = started(db, done=3, total=4, message="the good one")
    cases = NO_REPORT + (NO_REPORT_SQLITE if db.dialect == "sqlite" else [])
    bad = [started(db, done=case.get("done", 1), total=case.get("total", 4),
                   message="never shown", **{key: value for key, value in case.items()
                                             if key == "progress_attempt"})
           for case in cases]
    for uuid, case in zip(bad, cases, strict=True):
        page, listing, state = _answers(client, uuid)
        assert state["progress"] is None and state["state"] == "started", case
        assert 'id="progress" hidden' in page and "never shown" not in page, case
        assert "<progress" not in _row_html(listing, uuid), case
    # the other job keeps its bar
    assert '<progress max="4" value="3">' in _row_html(listing, good)
    assert client.get(f"/jobs/{good}/live.json").json()["progress"]["text"] == "3 / 4 (75%)"


def test_a_message_that_is_not_one_costs_only_itself(db, client):
    huge = started(db, message="m" * 300_000)
    page, listing, state = _answers(client, huge)
    # the bar stays; the message is cut (the list reads a bounded prefix of it)
    assert state["progress"]["text"] == "1 / 4 (25%)"
    assert len(state["progress"]["message"]) < 600
    assert "[... truncated: 300000 characters in all]" in state["progress"]["message"]
    assert '<progress max="4" value="1">' in _row_html(listing, huge)
    assert len(_row_html(listing, huge)) < 3000
    assert len(page) < 50_000
    if db.dialect == "sqlite":
        blob = started(db, message=b"\xff\x00 <b>x</b>")
        page, listing, state = _answers(client, blob)
        assert state["progress"]["message"] == "b'\\xff\\x00 <b>x</b>'"
        assert "b&#39;\\xff\\x00 &lt;b&gt;x&lt;/b&gt;&#39;" in page


def test_stored_logs_that_cannot_all_be_read_cost_what_cannot(db, client):
    uuid = started(db, attempt=4)
    add_log(db, uuid, 1, "not json")
    add_log(db, uuid, 2, '[[1764000000.5, "INFO", "app", "readable"], ["x"], 3, '
                         '[1e300, "INFO", "app", "a time out of range"]]', 7)
    many = "[" + ",".join(f'[1764000000, "INFO", "app", "line {n}"]' for n in range(2000)) + "]"
    add_log(db, uuid, 3, many)
    add_log(db, uuid, 4, '[[1764000000, "WARNING", "app", "' + "y" * 1_000_000 + '"]]')
    page, _, state = _answers(client, uuid)
    assert [(entry["attempt"], entry["lines"], entry["dropped"]) for entry in state["logs"]] \
        == [(4, 1, 0), (3, 2000, 0), (2, 2, 7), (1, 0, 0)]
    assert state["logs"][3]["problem"] == "the stored log is not JSON"
    assert state["logs"][2]["problem"] == "2 stored line(s) could not be read"
    assert "the stored log is not JSON" in page
    assert "2 stored line(s) could not be read" in page and "readable" in page
    assert "7 more line(s) dropped" in page and "a time out of range" in page
    assert "1e+300" in page  # the time as the number it is
    assert "1500 more stored line(s) not shown." in page and "line 499<" in page \
        and "line 500<" not in page
    assert "[... truncated: 1000000 characters in all]" in page and len(page) < 1_000_000
    # a log nested too deeply for its reader costs the log, not the page nor the state
    nested = started(db)
    add_log(db, nested, 1, "[" * 100_000 + "]" * 100_000)
    page, _, state = _answers(client, nested)
    assert [entry["problem"] for entry in state["logs"]] == ["the stored log is not JSON"]
    assert "the stored log is not JSON" in page
    assert state["progress"]["text"] == "1 / 4 (25%)"
    if db.dialect == "sqlite":  # values of other types
        typed = started(db)
        add_log(db, typed, "abc", '[[1764000000, "INFO", "app", "kept"]]', "many")
        add_log(db, typed, 2, b"\xff\x00", -5)
        page, _, state = _answers(client, typed)
        assert {(entry["attempt"], entry["lines"], entry["problem"])
                for entry in state["logs"]} \
            == {("abc", 1, None), (2, 0, "the stored log is not text")}
        assert "kept" in page and "Attempt abc" in page and "more line(s) dropped" not in page


# -- no stored text becomes markup ----------------------------------------------------------
def test_logged_lines_and_progress_messages_are_shown_as_text(web, page):
    db = web.db
    with db.session() as session:
        chatty = jobs.chatty.delay(session, "m", PAYLOADS)
    run_burst(db)
    page.goto(f"{web.url}/jobs/{chatty}")
    messages = page.locator("#log .attempt-log[data-attempt='1'] td.message")
    expect(messages).to_have_count(3)
    for index, payload in enumerate(PAYLOADS):
        expect(messages.nth(index)).to_have_text(payload)
    clean(page)
    # a running job's message, shown by the page and then by its polling (textContent)
    watched = started(db, message=PAYLOADS[1])
    page.goto(f"{web.url}/jobs/{watched}")
    page.evaluate("window.__same_document = true")
    expect(page.locator("#progress-message")).to_have_text(PAYLOADS[1])
    sql(db, "UPDATE queue_job SET progress_done = 2, progress_message = ? WHERE uuid = ?",
        (PAYLOADS[0], watched))
    expect(page.locator("#progress-text")).to_have_text("2 / 4 (50%)")
    expect(page.locator("#progress-message")).to_have_text(PAYLOADS[0])
    # a log stored meanwhile: the page takes its new log from the page's HTML (parsed,
    # never run), where it is escaped
    add_log(db, watched, 1, '[[1764000000, "<i>", "<b id=\\"bold\\">", "' + PAYLOADS[2]
            .replace('"', '\\"') + '"]]')
    expect(page.locator("#log td.message")).to_have_text(PAYLOADS[2])
    expect(page.locator("#log td.logger")).to_have_text('<b id="bold">')
    expect(page.locator("#log tr.level-other td.level")).to_have_text("<i>")
    assert page.evaluate("window.__same_document") is True
    clean(page)
    page.goto(f"{web.url}/jobs")
    expect(page.locator(f"tr[data-uuid='{watched}'] progress")).to_have_count(1)
    assert PAYLOADS[0] in page.locator(
        f"tr[data-uuid='{watched}'] .mini-progress").get_attribute("title")
    clean(page)
