"""Stored XSS: payloads in arguments, descriptions, model and channel names, results,
tracebacks, function settings and worker names are shown as text; no dialog opens, no
script of theirs runs, no element of theirs enters the page."""

from __future__ import annotations

from playwright.sync_api import expect

import queuejob
from tests.web import webjobs

PAYLOADS = [
    '<script>alert("xss-script")</script>',
    '<img src=x onerror=alert("xss-img")>',
    '"><svg onload=alert("xss-svg")>',
    "'><iframe src=javascript:alert('xss-iframe')></iframe>",
    '<a id=xsslink href="javascript:window.__xss=1">click</a>',
    '</pre><script>window.__xss=1</script>',
    '<style>body{display:none}</style>',
    '{{ 7*7 }}{% raw %}',
    '<details open ontoggle=alert("xss-details")>',
]
#: elements or attributes a payload would bring if it were markup
INJECTED = ("script:not([src]), img, iframe, style, details, #xsslink, [onerror], [onload], "
            "[ontoggle]")


def _store_corpus(db: queuejob.Database) -> dict[str, list[str]]:
    jobs: dict[str, list[str]] = {"result": [], "traceback": [], "pending": []}
    with db.session() as session:
        for payload in PAYLOADS:
            jobs["result"].append(webjobs.echo.delay(session, payload, payload,
                                                     description=payload))
            jobs["traceback"].append(webjobs.explode.delay(session, None, payload))
            jobs["pending"].append(webjobs.echo.delay(session, None, [payload],
                                                      description=payload, eta=3600))
    queuejob.Worker(db, channels="root:4", modules=["tests.web.webjobs"]).run(burst=True)
    # names that the API would refuse, written as another tool might have: the
    # dashboard must not trust the database either
    placeholder = "?" if db.dialect == "sqlite" else "%s"

    def write(conn):
        for index, job_uuid in enumerate(jobs["pending"]):
            payload = PAYLOADS[index]
            db.connector.execute_sql(
                conn, f"UPDATE queue_job SET channel = {placeholder}, func_name = "
                f"{placeholder} WHERE uuid = {placeholder}",
                (f"root.{payload}", f"mod.{payload}", job_uuid))
            db.connector.execute_sql(
                conn, "INSERT INTO queue_job_function (name, channel, retry_pattern) "
                f"VALUES ({placeholder}, {placeholder}, NULL)",
                (f"fn.{payload}", f"root.{payload}"))
            db.connector.execute_sql(
                conn, "INSERT INTO queue_channel (name, capacity, sequential, throttle, "
                f"paused) VALUES ({placeholder}, 2, {placeholder}, 0, {placeholder})",
                (f"root.{payload}", False, False))
        db.connector.execute_sql(
            conn, "INSERT INTO queue_worker (id, hostname, pid, channels, state, "
            f"date_started, heartbeat) VALUES ({placeholder}, {placeholder}, 1, "
            f"{placeholder}, 'alive', {placeholder}, {placeholder})",
            (PAYLOADS[1], PAYLOADS[0], PAYLOADS[2], *((1.0e9, 1.0e9)
                                                      if db.dialect == "sqlite" else
                                                      ("2001-09-09T01:46:40Z",) * 2)))
    db.run(write)
    return jobs


def _safe(page) -> None:
    assert page.locator(INJECTED).count() == 0, page.url
    assert page.evaluate("window.__xss") is None
    assert page.watch.dialogs == []
    assert page.watch.errors == []


def test_stored_payloads_are_shown_as_text(web, page):
    jobs = _store_corpus(web.db)
    pages = ["/", "/?range=day", "/jobs?all=1&limit=200", "/jobs", "/channels",
             "/functions", "/workers", "/jobs?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
             "/jobs/confirm?action=cancel&model=%3Cimg+src%3Dx+onerror%3Dalert(1)%3E",
             "/jobs?state=%3Cscript%3E"]
    for path in pages:
        page.goto(web.url + path)
        _safe(page)
    # the text itself is there, as text
    page.goto(web.url + "/jobs?all=1&limit=200")
    expect(page.locator("#jobs")).to_contain_text(PAYLOADS[0])
    for index, payload in enumerate(PAYLOADS):
        page.goto(f"{web.url}/jobs/{jobs['result'][index]}")
        _safe(page)
        expect(page.locator("#result")).to_have_text(payload)
        expect(page.locator("p.desc")).to_have_text(payload)
        expect(page.locator("#fields")).to_contain_text(payload)  # the model name
        page.goto(f"{web.url}/jobs/{jobs['traceback'][index]}")
        _safe(page)
        expect(page.locator("#traceback")).to_contain_text(f"ValueError: {payload}")
        expect(page.locator("#call")).to_contain_text(repr(payload))
        page.goto(f"{web.url}/jobs/{jobs['pending'][index]}")
        _safe(page)
        expect(page.locator("h1")).to_be_visible()
    # an error message that quotes what was typed
    page.goto(web.url + "/channels")
    page.fill("#new-channel input[name=name]", PAYLOADS[1])
    page.click("#new-channel button")
    expect(page.locator("#flash")).to_contain_text(PAYLOADS[1])
    _safe(page)
    # nothing was even blocked by the Content-Security-Policy: nothing tried to run (the
    # only console error is the 400 of the bad state filter)
    assert [line for line in page.watch.console if "status of 400" not in line] == []
