"""Flow control on the dashboard, in a real headless browser on SQLite and PostgreSQL:
the channel forms take a rate, a key capacity and fair turns (checked on the server,
never erasing the rules a form does not show); the channels page shows each rate with
its use and the busiest keys of keyed and fair channels, as text; /metrics exports them.
Bad stored values cost their row, never the page."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect
from prometheus_client.parser import text_string_to_metric_families

import queuejob
from queuejob import operations
from tests import jobs
from tests.reliability.common import sql

#: what the browser's console says of a refused form's answer: expected here
REFUSED = re.compile(r"Failed to load resource: the server responded with a status of 400")
#: what a key would bring into the page if it were markup
PAYLOADS = ['<script>window.__xss=1</script>', '<img src=x onerror=alert("xss-img")>',
            '<b id="bold">bold</b>']
INJECTED = "script:not([src]), img, #bold, [onerror]"


def entry(db: queuejob.Database, name: str) -> dict:
    return next(item for item in operations.channels(db) if item["name"] == name)


def keyed_jobs(db: queuejob.Database, channel: str, key: str, count: int,
               started: int = 0) -> list[str]:
    """``count`` jobs of ``key`` in ``channel``, the first ``started`` of them running."""
    with db.session() as session:
        uuids = [jobs.noop.delay(session, "m", channel=channel, concurrency_key=key)
                 for _ in range(count)]
    for uuid in uuids[:started]:
        sql(db, "UPDATE queue_job SET state = 'started', worker_id = 'w1' WHERE uuid = ?",
            (uuid,))
    return uuids


def add_starts(db: queuejob.Database, channel: str, count: int) -> None:
    """``count`` starts of a rate-limited channel a second ago (as claims log them)."""
    for _ in range(count):
        if db.dialect == "sqlite":
            sql(db, "INSERT INTO queue_rate_start (channel, started_at) VALUES (?, ?)",
                (channel, time.time() - 1))
        else:
            sql(db, "INSERT INTO queue_rate_start (channel, started_at) "
                    "VALUES (?, now() - interval '1 second')", (channel,))


def row_of(page, name: str):
    return page.locator(f"#channels tr[data-channel='{name}']")


def clean(page) -> None:
    """No dialog, no script error, no element or script of stored data; console errors
    only for the expected 400s."""
    assert page.locator(INJECTED).count() == 0, page.url
    assert page.evaluate("window.__xss") is None
    assert page.watch.dialogs == [] and page.watch.errors == []
    assert [line for line in page.watch.console if not REFUSED.search(line)] == []


def one_line_error(page, *words: str) -> str:
    error = page.locator("#error")
    for word in words:
        expect(error).to_contain_text(word)
    text = error.inner_text()
    assert "\n" not in text.strip(), text
    return text


def post(web, page, form: dict[str, str]):
    """A form posted from the page's context (its cookie, its CSRF token, its origin),
    as a form the page does not show would be."""
    token = page.locator("#new-channel input[name=csrf_token]").input_value()
    return page.request.post(f"{web.url}/channels/set", form={**form, "csrf_token": token},
                             headers={"Origin": web.url}, max_redirects=0)


# -- the forms ------------------------------------------------------------------------------
def test_the_forms_set_rate_key_capacity_and_fair_and_keep_what_they_do_not_show(web, page):
    db = web.db
    page.goto(f"{web.url}/channels")
    new = page.locator("#new-channel")
    new.locator("input[name=name]").fill("root.crm")
    new.locator("input[name=capacity]").fill("4")
    new.locator("input[name=rate]").fill("100/m")
    new.locator("input[name=key_capacity]").fill("2")
    new.locator("input[name=fair]").check()
    new.locator("input[name=removal_interval]").fill("9")
    new.get_by_role("button", name="Save").click()
    expect(page.locator("#flash")).to_contain_text(
        "Channel root.crm: capacity 4, rate 100/m, key capacity 2, fair, done jobs kept 9 days")
    stored = entry(db, "root.crm")
    assert (stored["capacity"], stored["rate"], stored["key_capacity"], stored["fair"],
            stored["removal_interval"]) == (4, "100/m", 2, True, 9.0)
    # the row's form shows them; a change of one keeps the others
    row = row_of(page, "root.crm")
    expect(row.locator("input[name=rate]")).to_have_value("100/m")
    expect(row.locator("input[name=key_capacity]")).to_have_value("2")
    expect(row.locator("input[name=fair]")).to_be_checked()
    expect(row.locator(".rate-used")).to_have_text("0 used")
    row.locator("input[name=rate]").fill("5/s")
    row.get_by_role("button", name="Save").click()
    expect(page.locator("#flash")).to_contain_text("rate 5/s, key capacity 2, fair")
    stored = entry(db, "root.crm")
    assert (stored["rate"], stored["key_capacity"], stored["fair"],
            stored["removal_interval"]) == ("5/s", 2, True, 9.0)
    # pausing and resuming keep them too
    row_of(page, "root.crm").get_by_role("button", name="Pause").click()
    expect(page.locator("#flash")).to_contain_text("Channel root.crm paused.")
    row_of(page, "root.crm").get_by_role("button", name="Resume").click()
    expect(page.locator("#flash")).to_contain_text("Channel root.crm resumed.")
    stored = entry(db, "root.crm")
    assert (stored["rate"], stored["key_capacity"], stored["fair"], stored["paused"]) == (
        "5/s", 2, True, False)
    # a form without the flow fields (another page, an older one) erases none of them
    response = post(web, page, {"name": "root.crm", "capacity": "6"})
    assert response.status == 303
    stored = entry(db, "root.crm")
    assert (stored["capacity"], stored["rate"], stored["key_capacity"], stored["fair"],
            stored["removal_interval"]) == (6, "5/s", 2, True, 9.0)
    # emptied and unticked on the row's form: removed
    page.goto(f"{web.url}/channels")
    row = row_of(page, "root.crm")
    row.locator("input[name=rate]").fill("")
    row.locator("input[name=key_capacity]").fill("")
    row.locator("input[name=fair]").uncheck()
    row.get_by_role("button", name="Save").click()
    expect(page.locator("#flash")).to_contain_text("Channel root.crm: capacity 6, done jobs")
    stored = entry(db, "root.crm")
    assert (stored["rate"], stored["key_capacity"], stored["fair"]) == (None, None, False)
    clean(page)


@pytest.mark.parametrize(("form", "said"), [
    ({"rate": "fast"}, "bad rate 'fast': N/s, N/m or N/h"),
    ({"rate": "100/d"}, "bad rate '100/d'"),
    ({"rate": "0/m"}, "bad rate '0/m'"),
    ({"rate": "9" * 30 + "/m"}, "bad rate '999"),
    ({"rate": "9" * 41}, "bad rate: 41 characters"),
    ({"key_capacity": "0"}, "bad key_capacity '0'"),
    ({"key_capacity": "two"}, "bad key_capacity 'two'"),
    ({"key_capacity": "2147483648"}, "bad key_capacity"),
])
def test_bad_flow_values_are_a_one_line_400_and_change_nothing(web, page, form, said):
    db = web.db
    operations.set_channel(db, "root.crm", 2, rate="7/h", key_capacity=3)
    page.goto(f"{web.url}/channels")
    response = post(web, page, {"name": "root.crm", "capacity": "5", "flow_fields": "1",
                                **form})
    assert response.status == 400
    message = re.search(r'<p class="error" id="error">(.*?)</p>', response.text(), re.S)
    assert message is not None and said in message.group(1).replace("&#39;", "'")
    assert "\n" not in message.group(1).strip()
    stored = entry(db, "root.crm")
    assert (stored["capacity"], stored["rate"], stored["key_capacity"]) == (2, "7/h", 3)


def test_bad_input_typed_in_the_page_is_refused_in_one_line(web, page):
    db = web.db
    operations.set_channel(db, "root.crm", 1, rate="7/h", sequential=True)
    page.goto(f"{web.url}/channels")
    row = row_of(page, "root.crm")
    row.locator("input[name=rate]").fill("lots/m")
    row.get_by_role("button", name="Save").click()
    one_line_error(page, "bad rate 'lots/m'", "N/s, N/m or N/h")
    # what the core refuses comes back as the page's one-line message
    page.goto(f"{web.url}/channels")
    row = row_of(page, "root.crm")
    row.locator("input[name=fair]").check()
    row.get_by_role("button", name="Save").click()
    expect(page.locator("#flash")).to_contain_text("cannot be fair")
    assert "\n" not in page.locator("#flash").inner_text().strip()
    stored = entry(db, "root.crm")
    assert (stored["rate"], stored["sequential"], stored["fair"]) == ("7/h", True, False)
    clean(page)


# -- what the page shows ---------------------------------------------------------------------
def test_the_page_shows_each_rates_use_and_the_busiest_keys_as_text(web, page):
    db = web.db
    operations.set_channel(db, "root.crm", 4, rate="100/m", key_capacity=2)
    operations.set_channel(db, "root.fair", fair=True)
    operations.set_channel(db, "root.plain", 2)
    add_starts(db, "root.crm", 37)
    keyed_jobs(db, "root.crm", "acme", 5, started=2)
    keyed_jobs(db, "root.crm.eu", "acme", 1, started=1)
    keyed_jobs(db, "root.crm", "globex", 2, started=1)
    for index, payload in enumerate(PAYLOADS):
        keyed_jobs(db, "root.fair", payload, 3 + index, started=1)
    keyed_jobs(db, "root.plain", "hidden-key", 2, started=1)
    page.goto(f"{web.url}/channels")
    crm = row_of(page, "root.crm")
    expect(crm.locator(".rate-used")).to_have_text("37 used")
    running = crm.locator(".busiest-keys li")
    expect(running).to_have_count(2)
    expect(running.nth(0)).to_have_text("acme 3")
    expect(running.nth(1)).to_have_text("globex 1")
    waiting = crm.locator(".waiting-keys li")
    expect(waiting).to_have_count(2)
    expect(waiting.nth(0)).to_have_text("acme 3")
    expect(waiting.nth(1)).to_have_text("globex 1")
    # keys are data: shown as the text they are, never as markup
    fair = row_of(page, "root.fair")
    expect(fair.locator(".rate-used")).to_have_count(0)
    expect(fair.locator(".waiting-keys .key")).to_have_text(
        [PAYLOADS[2], PAYLOADS[1], PAYLOADS[0]])
    expect(fair.locator(".busiest-keys .key")).to_have_count(3)
    # a channel with neither a key capacity nor fair turns lists no keys
    expect(row_of(page, "root.plain").locator(".keys")).to_have_count(0)
    expect(page.locator("#channels")).not_to_contain_text("hidden-key")
    clean(page)


def test_bad_stored_values_cost_only_their_row(web, page):
    db = web.db
    operations.set_channel(db, "root.crm", 4, rate="10/m", key_capacity=2)
    for name in ("root.bad-period", "root.bad-flag"):
        operations.set_channel(db, name, 2)
    sql(db, "UPDATE queue_channel SET rate_limit = 3, rate_period = 7 "
            "WHERE name = 'root.bad-period'")
    uuids = keyed_jobs(db, "root.crm", "plain", 4, started=2)
    sql(db, "UPDATE queue_job SET concurrency_key = ? WHERE uuid = ?",
        ("\x1b[31mred\u202e", uuids[0]))
    if db.dialect == "sqlite":
        sql(db, "UPDATE queue_channel SET fair = 'yes', key_capacity = 'x' "
                "WHERE name = 'root.bad-flag'")
        sql(db, "UPDATE queue_job SET concurrency_key = X'FF00' WHERE uuid = ?", (uuids[2],))
        sql(db, "UPDATE queue_job SET concurrency_key = ? WHERE uuid = ?",
            ("k" * 1_000_000, uuids[3]))
        sql(db, "INSERT INTO queue_rate_start (channel, started_at) VALUES "
                "('root.crm', 'soon')")
    else:
        sql(db, "UPDATE queue_channel SET rate_limit = 5 WHERE name = 'root.bad-flag'")
        sql(db, "UPDATE queue_job SET concurrency_key = ? WHERE uuid = ?",
            ("k" * 255, uuids[3]))
    page.goto(f"{web.url}/channels")
    expect(page.locator("h1")).to_have_text("Channels")
    for name in ("root.bad-period", "root.bad-flag"):
        expect(row_of(page, name).locator(".problem")).to_contain_text(
            "stored configuration not used")
    crm = row_of(page, "root.crm")
    expect(crm.locator("input[name=rate]")).to_have_value("10/m")
    expect(crm.locator(".busiest-keys")).to_contain_text("\\x1b[31mred")
    waiting = crm.locator(".waiting-keys .key")
    expect(waiting).to_have_count(2)
    assert all(len(text) <= 600 for text in waiting.all_inner_texts())
    # the metrics hold too
    status, _, text = web.request("GET", "/metrics")
    assert status == 200
    names = {family.name for family in text_string_to_metric_families(text)}
    assert {"queuejob_channel_rate_limit", "queuejob_channel_key_running"} <= names
    clean(page)


def test_metrics_export_rates_and_keys(web):
    db = web.db
    operations.set_channel(db, "root.crm", rate="30/m", key_capacity=1)
    add_starts(db, "root.crm", 4)
    keyed_jobs(db, "root.crm", 'quote"key', 3, started=1)
    status, headers, text = web.request("GET", "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
    found = {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
             for family in text_string_to_metric_families(text) for sample in family.samples}
    assert found[("queuejob_channel_rate_limit", (("channel", "root.crm"),))] == 0.5
    assert found[("queuejob_channel_rate_used", (("channel", "root.crm"),))] == 4
    assert found[("queuejob_channel_key_running",
                  (("channel", "root.crm"), ("key", 'quote"key')))] == 1
    assert found[("queuejob_channel_key_pending",
                  (("channel", "root.crm"), ("key", 'quote"key')))] == 2
