"""The schedules page, in a real headless browser on SQLite and PostgreSQL: the schedules
defined at run time are added, edited, paused, resumed, run now and removed through
its forms (with the dashboard's CSRF token); bad input is a one-line 400 that stores
nothing; rows written by hand with garbage cost their row only, never the page."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from queuejob import operations
from tests import jobs
from tests.test_run_time_schedules import add_garbage

REFUSED = re.compile(r"Failed to load resource: the server responded with a status of 400")
PAYLOAD = '<script>window.__xss=1</script>'


def stored(db) -> dict[str, dict]:
    return {entry["name"]: entry for entry in operations.run_time_schedules(db)}


def row_of(page, name: str):
    return page.locator(f"#run-time-schedules tr[data-run-schedule='{name}']")


def clean(page) -> None:
    assert page.locator("script:not([src]), [onerror]").count() == 0
    assert page.evaluate("window.__xss") is None
    assert page.watch.dialogs == [] and page.watch.errors == []
    assert [line for line in page.watch.console if not REFUSED.search(line)] == []


def test_the_forms_add_edit_pause_resume_run_and_remove(web, page):
    db = web.db
    assert jobs.noop.func_name == "tests.jobs.noop"  # registered in the dashboard's process
    page.goto(f"{web.url}/schedules")
    expect(page.locator("#no-run-time-schedules")).to_be_visible()
    form = page.locator("#schedule-form")
    form.locator("input[name=name]").fill("nightly")
    form.locator("input[name=cron]").fill("0 2 * * *")
    form.locator("input[name=function]").fill("tests.jobs.noop")
    form.locator("input[name=args]").fill('["res.partner", 42]')
    form.locator("input[name=channel]").fill("root.night")
    form.locator("input[name=timezone]").fill("Europe/Brussels")
    form.locator("select[name=missed]").select_option("all")
    form.locator("input[name=missed_window]").fill("3600")
    form.get_by_role("button", name="Add").click()
    expect(page.locator("#flash")).to_contain_text("Schedule nightly added.")
    entry = stored(db)["nightly"]
    assert (entry["cron"], entry["func_name"], entry["args"], entry["channel"],
            entry["timezone"], entry["missed"], entry["missed_window"]) == (
        "0 2 * * *", "tests.jobs.noop", '["res.partner",42]', "root.night",
        "Europe/Brussels", "all", 3600.0)
    row = row_of(page, "nightly")
    expect(row).to_contain_text("Europe/Brussels")
    # edit: the form holds the stored values
    row.get_by_role("link", name="Edit").click()
    expect(page.locator("#schedule-form-title")).to_have_text("Edit schedule nightly")
    expect(form.locator("input[name=cron]")).to_have_value("0 2 * * *")
    form.locator("input[name=cron]").fill("30 6 * * 1-5")
    form.locator("input[name=channel]").fill("")
    form.get_by_role("button", name="Save").click()
    expect(page.locator("#flash")).to_contain_text("Schedule nightly edited.")
    entry = stored(db)["nightly"]
    assert entry["cron"] == "30 6 * * 1-5" and entry["channel"] is None
    assert entry["args"] == '["res.partner",42]'
    # pause, run now, resume, remove
    row.get_by_role("button", name="Pause").click()
    expect(page.locator("#flash")).to_contain_text("Schedule nightly: paused.")
    expect(row).to_contain_text("paused")
    assert stored(db)["nightly"]["paused"] is True
    row.get_by_role("button", name="Run now").click()
    expect(page.locator("#flash")).to_contain_text("run requested")
    assert stored(db)["nightly"]["run_requested"] == 1
    row.get_by_role("button", name="Resume").click()
    expect(page.locator("#flash")).to_contain_text("resumed")
    assert stored(db)["nightly"]["paused"] is False
    row.get_by_role("button", name="Remove").click()
    expect(page.locator("#flash")).to_contain_text("Schedule nightly: removed.")
    assert stored(db) == {}
    clean(page)


def test_bad_input_is_a_one_line_400_that_stores_nothing(web, page):
    db = web.db
    operations.add_schedule(db, "taken", cron="* * * * *", function="tests.jobs.noop")
    for values, said in (({"cron": "every day"}, "bad cron expression"),
                         ({"args": "{}"}, "a JSON list is needed"),
                         ({"name": "taken"}, "already taken")):
        page.goto(f"{web.url}/schedules")
        form = page.locator("#schedule-form")
        typed = {"name": "new", "cron": "* * * * *", "function": "tests.jobs.noop",
                 **values}
        for key, value in typed.items():
            form.locator(f"input[name={key}]").fill(value)
        form.get_by_role("button", name="Add").click()
        error = page.locator("#error")
        expect(error).to_contain_text(said)
        assert "\n" not in error.inner_text().strip()
        # what was typed is shown again
        expect(form.locator("input[name=cron]")).to_have_value(typed["cron"])
        assert set(stored(db)) == {"taken"}
    # a form without the CSRF token is refused
    status, _, _ = web.request("POST", "/schedules", "op=remove&name=taken",
                               headers={"Origin": web.url})
    assert status == 403 and set(stored(db)) == {"taken"}
    clean(page)


def test_garbage_rows_cost_only_their_row(web, page):
    db = web.db
    add_garbage(db)
    operations.add_schedule(db, "fine", cron="*/5 * * * *", function="tests.jobs.noop",
                            args=f'["{PAYLOAD}"]')
    operations.add_schedule(db, "elsewhere", cron="*/5 * * * *", function="os.system")
    page.goto(f"{web.url}/schedules")
    expect(page.locator("h1")).to_have_text("Schedules")
    for name, problem in (("g-cron", "bad cron expression"), ("g-json", "not JSON"),
                          ("g-zone", "unknown time zone"), ("g-args", "a JSON list"),
                          ("elsewhere", "not registered here")):
        expect(page.locator(f"tr[data-problem-of='{name}']")).to_contain_text(problem)
    expect(page.locator("tr[data-problem-of='fine']")).to_have_count(0)
    expect(row_of(page, "fine")).to_contain_text(PAYLOAD)  # as text, never markup
    expect(row_of(page, "fine").locator(".next-run")).not_to_be_empty()
    # a bad row can still be removed from the page
    row_of(page, "g-json").get_by_role("button", name="Remove").click()
    expect(page.locator("#flash")).to_contain_text("Schedule g-json: removed.")
    assert "g-json" not in stored(db)
    # run now of a row that cannot run says why, in one line
    row_of(page, "g-zone").get_by_role("button", name="Run now").click()
    expect(page.locator("#flash")).to_contain_text("cannot run")
    clean(page)
