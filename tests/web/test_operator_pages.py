"""The successor's operator features on the dashboard, in a real headless browser
(chromium), on SQLite and PostgreSQL: the new job fields (exception, message, run time,
cancellation, worker pid) and the exception filter; failures grouped by exception;
requeue of done and cancelled jobs and set done, one job and every matching job, the
buttons shown only where the state allows them; edits of a pending job's priority, eta
and channel, one job and every matching job; a job function's settings (channel, retry
pattern, related action); subscriptions to failures. Each action is checked in the
database; each bad value shows its form again with a one-line error, storing nothing;
the new forms need the CSRF token and the same origin; bad stored values in the new
columns cost their row only."""

from __future__ import annotations

import datetime as dt
import json
import re
import urllib.parse
from typing import Any

import pytest
from playwright.sync_api import expect

import queuejob
from queuejob import chain, operations
from queuejob.web import display
from tests.reliability.common import sql
from tests.web import operatorjobs, webjobs

MODULES = ["tests.web.webjobs", "tests.web.operatorjobs"]
ECHO = "tests.web.webjobs.echo"


def burst(db: queuejob.Database) -> None:
    queuejob.Worker(db, channels="root:4", modules=MODULES).run(burst=True)


#: what the browser's console says of a refused form's answer (a 400, or the 404 of an
#: unknown function): expected here, not an error of the page
REFUSED = re.compile(r"Failed to load resource: the server responded with a status of "
                     r"40[04] ")


def clean(page) -> None:
    """The page ran no script of job data and broke no rule of its CSP."""
    assert page.watch.dialogs == []
    assert page.watch.errors == []
    assert [line for line in page.watch.console if not REFUSED.search(line)] == []


def shown(page) -> set[str]:
    """The uuids of the jobs listed on the jobs page."""
    return set(page.locator("#jobs tbody tr[data-uuid]").evaluate_all(
        "rows => rows.map(row => row.dataset.uuid)"))


def one_line_error(page, *words: str) -> str:
    """The page's error: one line, holding ``words``."""
    error = page.locator("#error")
    for word in words:
        expect(error).to_contain_text(word)
    text = error.inner_text()
    assert "\n" not in text.strip(), text
    return text


def submit(page, selector: str, method: str = "POST") -> int:
    """Click a form's button; the status of the answer to the form."""
    with page.expect_response(lambda response: response.request.method == method
                              and response.request.resource_type == "document") as answer:
        page.click(selector)
    return answer.value.status


def function_entry(db: queuejob.Database, name: str = ECHO) -> dict[str, Any]:
    return next(entry for entry in operations.functions(db) if entry["name"] == name)


# -- the new fields, the exception filter, failures by exception ------------------------------
def test_job_page_and_jobs_list_show_the_new_fields(web, page):
    db = web.db
    with db.session() as session:
        failed = operatorjobs.wrong_value.delay(session, "res.partner",
                                                "the <b>disk</b> is full <img src=x "
                                                "onerror=alert(1)>")
        missing = operatorjobs.missing_key.delay(session, "res.partner", "vat")
        done = webjobs.echo.delay(session, None, "hello")
        cancelled = webjobs.echo.delay(session, None, "never")
    with db.session() as session:
        operations.cancel(session, cancelled)
    burst(db)
    stored = operations.load_job(db, failed)
    assert (stored["exc_name"], stored["exc_message"]) == (
        "builtins.ValueError", "the <b>disk</b> is full <img src=x onerror=alert(1)>")
    assert isinstance(stored["worker_pid"], int)
    exec_time = operations.load_job(db, done)["exec_time"]
    assert exec_time is not None and exec_time >= 0
    assert operations.load_job(db, cancelled)["date_cancelled"] is not None

    page.goto(f"{web.url}/jobs/{failed}")
    expect(page.locator("#exc-name")).to_have_text("builtins.ValueError")
    expect(page.locator("#exc-message")).to_have_text(
        "the <b>disk</b> is full <img src=x onerror=alert(1)>")
    expect(page.locator("#worker")).to_contain_text(f"(pid {stored['worker_pid']})")
    page.goto(f"{web.url}/jobs/{done}")
    expect(page.locator("#exec-time")).to_have_text(display.seconds(exec_time))
    expect(page.locator("#exc-name")).to_have_count(0)
    page.goto(f"{web.url}/jobs/{cancelled}")
    timeline = page.locator("#timeline li")
    expect(timeline).to_have_count(2)
    expect(timeline.nth(1)).to_contain_text("cancelled")

    # the list: run time of the done job, the exception of the failed ones, a link to
    # the failures of that exception
    page.goto(f"{web.url}/jobs?all=1")
    expect(page.locator(f"tr[data-uuid='{done}'] .exec-time")).to_have_text(
        display.seconds(exec_time))
    expect(page.locator(f"tr[data-uuid='{missing}'] .exc-name")).to_have_text(
        "builtins.KeyError")
    page.click(f"tr[data-uuid='{failed}'] a.exc-name")
    expect(page.locator("#f-exception")).to_have_value("builtins.ValueError")
    expect(page.locator("#jobs tbody tr[data-uuid]")).to_have_count(1)
    assert shown(page) == {failed}
    assert "exception=builtins.ValueError" in page.url and "state=failed" in page.url
    # typed in the filter, kept by the bulk actions' links
    page.goto(f"{web.url}/jobs")
    page.fill("#f-exception", "builtins.KeyError")
    page.click("#f-apply")
    expect(page.locator("#jobs tbody tr[data-uuid]")).to_have_count(1)
    assert shown(page) == {missing}
    expect(page.locator("#bulk")).to_contain_text("exception builtins.KeyError")
    page.fill("#f-exception", "builtins.NoSuchError")
    page.click("#f-apply")
    expect(page.locator("#no-jobs")).to_be_visible()
    clean(page)


def test_failures_grouped_by_exception_link_to_their_jobs(web, page):
    db = web.db
    with db.session() as session:
        values = [operatorjobs.wrong_value.delay(session, None, f"bad {index}")
                  for index in range(2)]
        keys = [operatorjobs.missing_key.delay(session, None, "vat")]
        webjobs.echo.delay(session, None, "fine")
    burst(db)
    assert [(group["exc_name"], group["jobs"])
            for group in operations.failures_by_exception(db)] == [
        ("builtins.ValueError", 2), ("builtins.KeyError", 1)]
    page.goto(web.url + "/")
    page.uncheck("#autorefresh")  # the rows stay the ones clicked
    groups = page.locator("#failures tbody tr")
    expect(groups).to_have_count(2)
    expect(groups.nth(0)).to_contain_text("builtins.ValueError")
    expect(groups.nth(0).locator("td.num.bad")).to_have_text("2")
    # how many of them failed within the last hour and day
    expect(groups.nth(0).locator("td.last-hour")).to_have_text("2")
    expect(groups.nth(0).locator("td.last-day")).to_have_text("2")
    expect(groups.nth(1)).to_contain_text("builtins.KeyError")
    expect(groups.nth(0).locator("td").nth(2)).not_to_be_empty()  # the last failure
    groups.nth(1).get_by_role("link", name="builtins.KeyError").click()
    expect(page.locator("h1")).to_have_text("Jobs")
    expect(page.locator("#jobs tbody tr[data-uuid]")).to_have_count(1)
    assert shown(page) == set(keys)
    page.go_back()
    page.uncheck("#autorefresh")
    page.locator("#failures").get_by_role("link", name="builtins.ValueError").click()
    expect(page.locator("#jobs tbody tr[data-uuid]")).to_have_count(2)
    assert shown(page) == set(values)
    clean(page)


# -- requeue done and cancelled jobs, set done ------------------------------------------------
def _buttons(page) -> set[str]:
    return set(page.locator("#actions button").evaluate_all(
        "buttons => buttons.map(button => button.id)"))


def test_requeue_done_and_cancelled_jobs_and_set_done_where_allowed(web, page):
    db = web.db
    with db.session() as session:
        done = [webjobs.echo.delay(session, None, f"done {index}") for index in range(3)]
    burst(db)
    with db.session() as session:
        cancelled = webjobs.echo.delay(session, None, "cancelled")
        pending = webjobs.echo.delay(session, None, "pending")
        first = webjobs.echo.delayable(session, None, "first")
        waiting = webjobs.echo.delayable(session, None, "second")
        chain(first, waiting).delay()
    with db.session() as session:
        operations.cancel(session, cancelled)
    assert operations.load_job(db, waiting.uuid)["state"] == "wait_dependencies"

    # a done job: requeue only, no edit
    page.goto(f"{web.url}/jobs/{done[0]}")
    assert _buttons(page) == {"action-requeue"}
    expect(page.locator("#edit")).to_have_count(0)
    page.click("#action-requeue")
    expect(page.locator("#flash")).to_contain_text(f"Requeued job {done[0]}")
    expect(page.locator("#job-state")).to_have_text("pending")
    stored = operations.load_job(db, done[0])
    assert (stored["state"], stored["retry"]) == ("pending", 0)
    # a cancelled job: requeue only
    page.goto(f"{web.url}/jobs/{cancelled}")
    assert _buttons(page) == {"action-requeue"}
    page.click("#action-requeue")
    expect(page.locator("#job-state")).to_have_text("pending")
    assert operations.load_job(db, cancelled)["state"] == "pending"
    # a job waiting for its parents: set done or cancel, no requeue
    page.goto(f"{web.url}/jobs/{waiting.uuid}")
    assert _buttons(page) == {"action-done", "action-cancel"}
    page.click("#action-done")
    expect(page.locator("#flash")).to_contain_text(f"Set done job {waiting.uuid}")
    stored = operations.load_job(db, waiting.uuid)
    assert (stored["state"], stored["result"]) == ("done", "Manually set to done by dashboard")
    # a pending job: every action
    page.goto(f"{web.url}/jobs/{pending}")
    assert _buttons(page) == {"action-requeue", "action-done", "action-cancel"}
    page.click("#action-done")
    expect(page.locator("#job-state")).to_have_text("done")
    assert operations.load_job(db, pending)["state"] == "done"

    # every done job at once: only requeue is offered for them
    page.goto(f"{web.url}/jobs?state=done")
    expect(page.locator("#bulk-requeue")).to_be_visible()
    expect(page.locator("#bulk-done")).to_have_count(0)
    expect(page.locator("#bulk-cancel")).to_have_count(0)
    expect(page.locator("#bulk-edit")).to_have_count(0)
    now_done = {job_uuid for job_uuid in [*done, waiting.uuid, pending]
                if operations.load_job(db, job_uuid)["state"] == "done"}
    assert len(now_done) == 4
    page.click("#bulk-requeue")
    expect(page.locator("#confirm-count")).to_have_text("4")
    expect(page.locator("#confirm-text")).to_contain_text("state done")
    page.click("#confirm-button")
    expect(page.locator("#flash")).to_contain_text("Requeued 4 job(s) matching state done")
    assert {operations.load_job(db, job_uuid)["state"] for job_uuid in now_done} == {"pending"}
    expect(page.locator("#no-jobs")).to_be_visible()
    clean(page)


# -- edits of pending jobs -------------------------------------------------------------------
def test_edit_a_pending_job(web, page):
    db = web.db
    with db.session() as session:
        job_uuid = webjobs.echo.delay(session, "res.partner", "x", priority=10)
    before = operations.load_job(db, job_uuid)
    page.goto(f"{web.url}/jobs/{job_uuid}")
    expect(page.locator("#edit-priority")).to_have_attribute("placeholder", "10")
    for field, value, words in [
            ("#edit-priority", "high", ("bad priority", "high", "whole number")),
            ("#edit-priority", "99999999999", ("bad priority",)),
            ("#edit-eta", "tomorrow", ("bad eta", "tomorrow")),
            ("#edit-eta", "2030-02-30 10:00", ("bad eta",)),
            ("#edit-eta", "inf", ("bad eta",)),
            ("#edit-channel", "root.no spaces", ("bad channel name",))]:
        page.goto(f"{web.url}/jobs/{job_uuid}")
        page.fill(field, value)
        assert submit(page, "#edit-save") == 400, value
        one_line_error(page, *words)
        expect(page.locator(field)).to_have_value(value)  # what was typed, shown again
        expect(page.locator("#job-state")).to_have_text("pending")
        after = operations.load_job(db, job_uuid)
        assert (after["priority"], after["eta"], after["channel"]) == (
            before["priority"], before["eta"], before["channel"])
    # nothing typed: nothing to edit
    page.goto(f"{web.url}/jobs/{job_uuid}")
    assert submit(page, "#edit-save") == 400
    one_line_error(page, "nothing to edit")

    page.fill("#edit-priority", "3")
    page.fill("#edit-eta", "2030-01-02 03:04")
    page.fill("#edit-channel", "edited")
    page.click("#edit-save")
    expect(page.locator("#flash")).to_contain_text(
        f"Edited job {job_uuid}: priority 3, eta 2030-01-02 03:04:00 UTC, channel root.edited")
    after = operations.load_job(db, job_uuid)
    assert (after["priority"], after["channel"], after["state"]) == (3, "root.edited", "pending")
    wanted = dt.datetime(2030, 1, 2, 3, 4, tzinfo=dt.UTC)
    assert abs((after["eta"] - wanted).total_seconds()) < 2
    expect(page.locator("#fields")).to_contain_text("root.edited")
    expect(page.locator("#edit-priority")).to_have_attribute("placeholder", "3")
    # due now
    page.fill("#edit-eta", "now")
    page.click("#edit-save")
    expect(page.locator("#flash")).to_contain_text("due now")
    eta = operations.load_job(db, job_uuid)["eta"]
    assert eta is None or eta <= dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
    # once done, it is not editable any more
    with db.session() as session:
        operations.set_done(session, job_uuid)
    page.goto(f"{web.url}/jobs/{job_uuid}")
    expect(page.locator("#edit")).to_have_count(0)
    clean(page)


def test_edit_every_matching_job(web, page):
    db = web.db
    with db.session() as session:
        partners = [webjobs.echo.delay(session, "res.partner", f"p{index}")
                    for index in range(3)]
        orders = [webjobs.echo.delay(session, "sale.order", f"o{index}") for index in range(2)]
    page.goto(f"{web.url}/jobs?model=res.partner")
    page.fill("#bulk-eta", "soon")
    assert submit(page, "#bulk-edit-button", method="GET") == 400
    one_line_error(page, "bad eta", "soon")
    expect(page.locator("#bulk-eta")).to_have_value("soon")
    expect(page.locator("#jobs tbody tr[data-uuid]")).to_have_count(3)  # the same filter
    assert shown(page) == set(partners)
    page.fill("#bulk-eta", "")
    page.fill("#bulk-priority", "7")
    page.fill("#bulk-channel", "root.bulk")
    page.click("#bulk-edit-button")
    expect(page.locator("#confirm-count")).to_have_text("3")
    expect(page.locator("#confirm-change")).to_have_text("priority 7, channel root.bulk")
    expect(page.locator("#confirm-text")).to_contain_text("model res.partner")
    # a job arriving after the confirmation was shown is left alone
    with db.session() as session:
        late = webjobs.echo.delay(session, "res.partner", "late")
    page.click("#confirm-button")
    expect(page.locator("#flash")).to_contain_text(
        "Edited 3 job(s) matching not done nor cancelled, model res.partner: priority 7, "
        "channel root.bulk")
    for job_uuid in partners:
        stored = operations.load_job(db, job_uuid)
        assert (stored["priority"], stored["channel"]) == (7, "root.bulk")
    for job_uuid in [*orders, late]:
        stored = operations.load_job(db, job_uuid)
        assert (stored["priority"], stored["channel"]) == (10, "root")
    clean(page)


# -- a job function's settings ------------------------------------------------------------------
def test_job_function_settings_and_reset(web, page):
    db = web.db
    with db.session() as session:
        job_uuid = webjobs.echo.delay(session, "res.partner", "42")
    page.goto(web.url + "/functions")
    page.locator(f"tr[data-function='{ECHO}']").get_by_role("link", name="Settings…").click()
    expect(page.locator("#function-name")).to_have_text(ECHO)
    page.fill("#s-retry", "1: 10-20, 5: 300")
    page.fill("#s-related-name", "tests.web.operatorjobs.open_in_crm")
    page.fill("#s-related-kwargs", '{"base": "https://crm.example.com", "kind": "partner"}')
    page.click("#s-save")
    expect(page.locator("#flash")).to_contain_text(f"Function {ECHO}: updated")
    entry = function_entry(db)
    assert entry["retry_pattern"] == {1: (10, 20), 5: 300}
    assert entry["related_action_setting"] == {
        "enable": True, "func_name": "tests.web.operatorjobs.open_in_crm",
        "kwargs": {"base": "https://crm.example.com", "kind": "partner"}}
    assert entry["channel_overridden"] is False
    # the form shows what is stored
    expect(page.locator("#s-retry")).to_have_value("1: 10-20, 5: 300")
    expect(page.locator("#s-related-name")).to_have_value("tests.web.operatorjobs.open_in_crm")
    assert json.loads(page.locator("#s-related-kwargs").input_value()) == {
        "base": "https://crm.example.com", "kind": "partner"}
    page.goto(f"{web.url}/jobs/{job_uuid}")
    expect(page.locator("#related-link")).to_have_attribute(
        "href", "https://crm.example.com/partner/42")

    # the table's row changes the channel, and leaves the related action as it is
    page.goto(web.url + "/functions")
    row = page.locator(f"tr[data-function='{ECHO}']")
    expect(row.locator(".related-action")).to_have_text(
        "tests.web.operatorjobs.open_in_crm (set here)")
    row.locator("input[name=channel]").fill("root.echoes")
    row.get_by_role("button", name="Save").click()
    expect(page.locator("#flash")).to_contain_text(f"Function {ECHO}: updated")
    entry = function_entry(db)
    assert entry["channel"] == "root.echoes"
    assert entry["retry_pattern"] == {1: (10, 20), 5: 300}
    assert entry["related_action_setting"]["func_name"] == "tests.web.operatorjobs.open_in_crm"

    # bad values: shown again, one line, nothing stored
    stored = function_entry(db)
    for field, value, words in [
            ("#s-related-kwargs", "[1, 2", ("bad related action kwargs", "JSON object")),
            ("#s-related-kwargs", '["not", "an object"]', ("bad related action kwargs",)),
            ("#s-related-kwargs", '{"x": NaN}', ("bad related action kwargs",)),
            ("#s-related-name", "tests.web.nothing_here", ("unknown related action",)),
            ("#s-retry", "1: soon", ("bad retry pattern",)),
            ("#s-retry", "1: 20-10", ("bad retry pattern", "low bound")),
            ("#s-channel", "root..x", ("bad channel name",))]:
        page.goto(f"{web.url}/functions/edit?name={ECHO}")
        page.fill(field, value)
        assert submit(page, "#s-save") == 400, value
        one_line_error(page, *words)
        expect(page.locator(field)).to_have_value(value)
        assert function_entry(db) == stored, value

    # off: the jobs have no related action
    page.goto(f"{web.url}/functions/edit?name={ECHO}")
    page.uncheck("#s-related-enable")
    page.click("#s-save")
    expect(page.locator("#flash")).to_contain_text("related action off")
    assert function_entry(db)["related_action_setting"]["enable"] is False
    expect(page.locator("#s-related-enable")).not_to_be_checked()
    page.goto(f"{web.url}/jobs/{job_uuid}")
    expect(page.locator("#related")).to_have_count(0)

    # reset: everything back to the decorator's
    page.goto(f"{web.url}/functions/edit?name={ECHO}")
    page.click("#s-reset")
    expect(page.locator("#flash")).to_contain_text("back to its decorator's")
    entry = function_entry(db)
    assert (entry["channel_overridden"], entry["retry_pattern_overridden"],
            entry["related_action_overridden"]) == (False, False, False)
    expect(page.locator("#s-retry")).to_have_value("")
    expect(page.locator("#s-related-enable")).to_be_checked()
    clean(page)


def test_settings_of_an_unknown_function_are_refused(web, page):
    db = web.db
    names = {entry["name"] for entry in operations.functions(db)}
    page.goto(web.url + "/functions")
    page.click("#function-by-name")
    page.fill("#s-name", "tests.web.no_such_function")
    page.fill("#s-channel", "root.nowhere")
    assert submit(page, "#s-save") == 400
    one_line_error(page, "unknown job function", "tests.web.no_such_function")
    expect(page.locator("#s-channel")).to_have_value("root.nowhere")
    assert {entry["name"] for entry in operations.functions(db)} == names
    response = page.goto(f"{web.url}/functions/edit?name=tests.web.no_such_function")
    assert response.status == 404
    one_line_error(page, "unknown job function")
    # a name typed for a function that is known works the same as its row's link
    page.goto(web.url + "/functions/edit")
    page.fill("#s-name", ECHO)
    page.fill("#s-retry", "2: 30")
    page.click("#s-save")
    expect(page.locator("#flash")).to_contain_text(f"Function {ECHO}: updated")
    assert function_entry(db)["retry_pattern"] == {2: 30}
    clean(page)


# -- subscriptions to failures -------------------------------------------------------------------
def test_subscriptions_page(web, page):
    db = web.db
    page.goto(web.url + "/")
    page.get_by_role("link", name="Subscriptions").click()
    expect(page.locator("h1")).to_have_text("Subscriptions to failures")
    expect(page.locator("#no-subscriptions")).to_be_visible()

    webhook = "https://chat.example.com/hooks/queue?room=ops&tag=<b>"
    page.fill("#sub-channel", "root.web")
    page.fill("#sub-target", webhook)
    page.click("#sub-add")
    expect(page.locator("#flash")).to_contain_text("failures of the jobs of root.web go to "
                                                   "the webhook")
    [entry] = operations.subscriptions(db)
    assert (entry["channel"], entry["func_name"], entry["target_kind"], entry["target"]) == (
        "root.web", None, "webhook", webhook)
    row = page.locator(f"tr[data-subscription='{entry['id']}']")
    expect(row.locator(".target")).to_have_text(webhook)

    page.fill("#sub-function", "tests.web.webjobs.explode")
    page.select_option("#sub-kind", "job")
    page.fill("#sub-target", "tests.web.operatorjobs.on_failure")
    page.click("#sub-add")
    expect(page.locator("#flash")).to_contain_text(
        "failures of the jobs of tests.web.webjobs.explode go to a job of "
        "tests.web.operatorjobs.on_failure")
    expect(page.locator("#subscriptions tbody tr[data-subscription]")).to_have_count(2)
    added = [one for one in operations.subscriptions(db) if one["id"] != entry["id"]]
    assert [(one["func_name"], one["target_kind"], one["target"]) for one in added] == [
        ("tests.web.webjobs.explode", "job", "tests.web.operatorjobs.on_failure")]

    before = operations.subscriptions(db)
    for fields, words in [
            ({"#sub-target": "not a url"}, ("bad webhook URL",)),
            ({"#sub-target": "ftp://files.example.com/"}, ("bad webhook URL", "http")),
            ({"#sub-target": ""}, ("bad target",)),
            ({"#sub-channel": "root..x", "#sub-target": webhook}, ("bad channel name",)),
            ({"#sub-function": "tests.web.nothing", "#sub-target": webhook},
             ("unknown job function",)),
            ({"#sub-kind": "job", "#sub-target": "tests.web.nothing"},
             ("not a registered job function",))]:
        page.goto(web.url + "/subscriptions")
        for selector, value in fields.items():
            if selector == "#sub-kind":
                page.select_option(selector, value)
            else:
                page.fill(selector, value)
        assert submit(page, "#sub-add") == 400, fields
        one_line_error(page, *words)
        for selector, value in fields.items():
            if selector != "#sub-kind":
                expect(page.locator(selector)).to_have_value(value)
        assert operations.subscriptions(db) == before

    page.goto(web.url + "/subscriptions")
    page.locator(f"tr[data-subscription='{entry['id']}']").get_by_role(
        "button", name="Remove").click()
    expect(page.locator("#flash")).to_contain_text(f"Subscription {entry['id']} removed")
    assert [one["id"] for one in operations.subscriptions(db)] == [added[0]["id"]]
    expect(page.locator("#subscriptions tbody tr[data-subscription]")).to_have_count(1)
    clean(page)


# -- the new forms' defences ----------------------------------------------------------------------
def _token(web, path: str) -> tuple[str, str]:
    status, headers, body = web.request("GET", path)
    assert status == 200
    cookie = headers["set-cookie"].split(";")[0]
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', body).group(1)
    return cookie, token


def test_the_new_forms_need_the_csrf_token_and_the_same_origin(web):
    db = web.db
    with db.session() as session:
        job_uuid = webjobs.echo.delay(session, "res.partner", "x")
    cookie, token = _token(web, f"/jobs/{job_uuid}")
    settings_before = function_entry(db)
    forms = [
        (f"/jobs/{job_uuid}/edit", {"new_priority": "1"}),
        ("/jobs/bulk", {"action": "edit", "upto": "1000000", "new_priority": "1"}),
        ("/subscriptions", {"op": "add", "target_kind": "webhook",
                            "target": "https://hooks.example.com/x"}),
        ("/functions/set", {"name": ECHO, "page": "edit", "related": "1",
                            "related_enable": "on", "channel": "root.stolen"})]
    for path, fields in forms:
        body = urllib.parse.urlencode(fields)
        for headers, form in [
                ({"Cookie": cookie, "Origin": web.url}, body),  # no token
                ({"Cookie": cookie, "Origin": "http://evil.example"},
                 f"{body}&csrf_token={token}"),
                ({"Cookie": cookie}, f"{body}&csrf_token={token}"),  # no Origin nor Referer
                ({"Origin": web.url}, f"{body}&csrf_token={token}")]:  # no cookie
            status, _, _ = web.request("POST", path, body=form, headers=headers)
            assert status == 403, (path, headers)
    stored = operations.load_job(db, job_uuid)
    assert stored["priority"] == 10
    assert operations.subscriptions(db) == []
    assert function_entry(db) == settings_before
    # with both, they act
    status, headers, _ = web.request(
        "POST", f"/jobs/{job_uuid}/edit", body=f"new_priority=1&csrf_token={token}",
        headers={"Cookie": cookie, "Origin": web.url})
    assert (status, headers["location"]) == (303, f"/jobs/{job_uuid}")
    assert operations.load_job(db, job_uuid)["priority"] == 1
    # an unknown operation of the subscriptions' form is a 400 that says which
    status, _, text = web.request("POST", "/subscriptions", body=f"op=drop&csrf_token={token}",
                                  headers={"Cookie": cookie, "Origin": web.url})
    assert status == 400 and "bad op" in text


def test_the_new_pages_hold_no_inline_code(web):
    with web.db.session() as session:
        job_uuid = webjobs.echo.delay(session, "res.partner", "x")
    for path in ["/subscriptions", "/functions/edit", f"/functions/edit?name={ECHO}",
                 f"/jobs/{job_uuid}", "/jobs/confirm?action=edit&new_priority=4",
                 "/jobs?exception=builtins.ValueError"]:
        status, headers, body = web.request("GET", path)
        assert status == 200, path
        assert "unsafe-inline" not in headers["content-security-policy"]
        assert not re.search(r"<script(?![^>]*\bsrc=)", body), path
        assert not re.search(r"\sstyle=", body), path
        assert not re.search(r"<style", body), path
        assert not re.search(r"\son[a-z]+=", body), path


# -- bad stored values in the new columns -------------------------------------------------------
BAD_UTF8 = b"caf\xe9\xff \x00 \x1b[2J \xe2\x80\xae <b>bold</b>"
BAD_TEXT = "caf\u00e9 \x1b[2J \u202e <b>bold</b> \x07"


def _bad_text(db: queuejob.Database, job_uuid: str, column: str) -> list[str]:
    """Write a bad text in a column of a job, as another tool might; the escaped forms
    the pages show of it."""
    if db.dialect == "sqlite":
        sql(db, f"UPDATE queue_job SET {column} = CAST(? AS TEXT) WHERE uuid = ?",
            (BAD_UTF8, job_uuid))
        return ["caf\\udce9\\udcff", "\\x00", "\\x1b[2J", "&lt;b&gt;bold&lt;/b&gt;"]
    sql(db, f"UPDATE queue_job SET {column} = ? WHERE uuid = ?", (BAD_TEXT, job_uuid))
    return ["café", "\\x1b[2J", "\\u202e", "&lt;b&gt;bold&lt;/b&gt;"]


@pytest.mark.parametrize("column", ["exc_name", "exc_message"])
def test_a_bad_stored_value_in_a_new_column_costs_its_row_only(web, column):
    db = web.db
    with db.session() as session:
        bad = webjobs.echo.delay(session, "res.partner", "bad")
        other = webjobs.echo.delay(session, "res.partner", "other")
    sql(db, "UPDATE queue_job SET state = 'failed', exc_info = 'Traceback\nValueError: x', "
        "exc_name = 'builtins.ValueError' WHERE uuid IN (?, ?)", (bad, other))
    escaped = _bad_text(db, bad, column)
    if db.dialect == "sqlite":  # untyped columns: any value of any type
        sql(db, "UPDATE queue_job SET exec_time = 'slow', worker_pid = x'ff', "
            "date_cancelled = 'never' WHERE uuid = ?", (bad,))
    bodies = {}
    for path in ["/", "/jobs", "/jobs?state=failed", "/jobs?all=1",
                 "/jobs?exception=builtins.ValueError&state=failed", f"/jobs/{bad}",
                 f"/jobs/{other}"]:
        status, _, body = web.request("GET", path)
        assert status == 200, path
        assert "\x00" not in body and "\x1b" not in body and "\u202e" not in body
        bodies[path] = body
    assert f'data-uuid="{bad}"' in bodies["/jobs"] and f'data-uuid="{other}"' in bodies["/jobs"]
    shown_in = bodies["/"] if column == "exc_name" else bodies[f"/jobs/{bad}"]
    for form in escaped:
        assert form in shown_in, form
    if db.dialect == "sqlite":
        page = bodies[f"/jobs/{bad}"]
        assert "slow" in page and "never" in page


def test_a_bad_subscription_row_costs_its_row_only(web):
    db = web.db
    good = operations.add_subscription(db, channel="root.web",
                                       webhook="https://hooks.example.com/ok")
    cast = "CAST(? AS TEXT)" if db.dialect == "sqlite" else "?"
    value: Any = BAD_UTF8 if db.dialect == "sqlite" else BAD_TEXT
    now = 0 if db.dialect == "sqlite" else dt.datetime.now(dt.UTC)
    # PostgreSQL checks the kind where it is written: SQLite takes any
    kind = "pigeon" if db.dialect == "sqlite" else "webhook"
    sql(db, "INSERT INTO queue_subscription (channel, func_name, target_kind, target, "
        f"date_created) VALUES ('root.bad name', NULL, ?, {cast}, ?)", (kind, value, now))
    status, _, body = web.request("GET", "/subscriptions")
    assert status == 200
    assert f'data-subscription="{good}"' in body
    assert "https://hooks.example.com/ok" in body
    assert "not used:" in body and "root.bad name" in body and kind in body
    assert "\x00" not in body and "\x1b" not in body
    # the good one can still be removed
    assert body.count('name="op" value="remove"') == 2
