"""The dashboard in a real headless browser (chromium), on SQLite and PostgreSQL: pages,
filters, a failed job's traceback, actions, channel and function edits, live refresh."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import expect

import queuejob
from queuejob import operations
from tests.helpers import ThreadWorker, max_overlap, row, wait_until
from tests.web import webjobs

MODULES = ["tests.web.webjobs"]


def burst(db: queuejob.Database) -> None:
    queuejob.Worker(db, channels="root:4", modules=MODULES).run(burst=True)


def clean(page) -> None:
    """The page ran no script of job data and broke no rule of its CSP."""
    assert page.watch.dialogs == []
    assert page.watch.errors == []
    assert page.watch.console == []


def test_every_page_opens(web, page):
    with web.db.session() as session:
        failed = webjobs.explode.delay(session, None, "no luck")
        webjobs.echo.delay(session, "res.partner", "hello")
    burst(web.db)
    for path, heading in [("/", "Overview"), ("/jobs", "Jobs"), ("/channels", "Channels"),
                          ("/workers", "Workers"), ("/functions", "Job functions"),
                          (f"/jobs/{failed}", "Job"), ("/?range=day", "Overview")]:
        response = page.goto(web.url + path)
        assert response.status == 200, path
        expect(page.locator("h1")).to_contain_text(heading)
    clean(page)


def test_filter_the_jobs_table(web, page):
    with web.db.session(user_id=7) as session:
        done = [webjobs.echo.delay(session, "res.partner", f"hello {i}") for i in range(3)]
        failed = webjobs.explode.delay(session, "sale.order", "kaput")
    burst(web.db)
    with web.db.session() as session:
        later = webjobs.echo.delay(session, None, "later",
                                   description="Write the monthly invoices")
    rows = page.locator("#jobs tbody tr[data-uuid]")

    def shown() -> set[str]:
        return set(rows.evaluate_all("rows => rows.map(row => row.dataset.uuid)"))

    page.goto(web.url + "/jobs")
    # as in the original: done jobs hidden unless asked for, failed rows stand out
    expect(rows).to_have_count(2)
    assert shown() == {failed, later}
    expect(page.locator(f"tr[data-uuid='{failed}']")).to_have_class("state-failed")
    expect(page.locator(f"tr[data-uuid='{failed}'] .exc")).to_have_text("ValueError: kaput")

    page.select_option("#f-state", "failed")
    page.click("#f-apply")
    expect(rows).to_have_count(1)
    assert shown() == {failed}

    page.select_option("#f-state", "")
    page.fill("#f-q", "monthly INVOICES")
    page.click("#f-apply")
    expect(rows).to_have_count(1)
    assert shown() == {later}

    page.fill("#f-q", "")
    page.check("#f-all")
    page.select_option("#f-function", "tests.web.webjobs.echo")
    page.click("#f-apply")
    expect(rows).to_have_count(4)
    assert shown() == {*done, later}

    page.fill("#f-model", "res.partner")
    page.fill("#f-user", "7")
    page.click("#f-apply")
    expect(rows).to_have_count(3)
    assert shown() == set(done)

    page.goto(web.url + "/jobs")
    page.fill("#f-q", done[1])
    page.click("#f-apply")
    expect(rows).to_have_count(1)
    assert shown() == {done[1]}
    clean(page)


def test_pages_of_jobs_in_order(web, page):
    with web.db.session() as session:
        uuids = [webjobs.echo.delay(session, None, f"job {i}", priority=i % 3)
                 for i in range(7)]
    rows = page.locator("#jobs tbody tr[data-uuid]")

    def shown() -> list[str]:
        return rows.evaluate_all("rows => rows.map(row => row.dataset.uuid)")

    def go(link: str) -> None:
        # the rows are read once the next page has loaded, not while it streams in
        with page.expect_navigation(wait_until="load"):
            page.click(link)

    page.goto(web.url + "/jobs?limit=3")
    assert shown() == uuids[::-1][:3]
    go("#page-next")
    assert shown() == uuids[::-1][3:6]
    go("#page-next")
    assert shown() == uuids[::-1][6:]
    expect(page.locator("#page-next")).to_have_count(0)
    go("#page-previous")
    assert shown() == uuids[::-1][3:6]
    # sorted by priority (then creation), across pages
    page.goto(web.url + "/jobs?limit=3&sort=priority")
    seen = shown()
    while page.locator("#page-next").count():
        go("#page-next")
        seen += shown()
    assert seen == [uuids[i] for i in sorted(range(7), key=lambda i: (i % 3, i))]
    clean(page)


def test_read_a_failed_job_and_requeue_it(web, page):
    with web.db.session() as session:
        failed = webjobs.explode.delay(session, "res.partner", "the disk is full")
    burst(web.db)
    page.goto(web.url + "/jobs?state=failed")
    page.click(f"#jobs tr[data-uuid='{failed}'] a")
    expect(page.locator("h1")).to_contain_text(failed)
    expect(page.locator("#traceback")).to_contain_text("Traceback (most recent call last)")
    expect(page.locator("#traceback")).to_contain_text("ValueError: the disk is full")
    expect(page.locator("#job-state")).to_have_text("failed")
    expect(page.locator("#tries")).to_contain_text("1 of 5")
    expect(page.locator("#call")).to_have_text(
        "tests.web.webjobs.explode('res.partner', 'the disk is full')")
    expect(page.locator("#timeline li")).to_have_count(4)

    page.click("#action-requeue")
    expect(page.locator("#flash")).to_contain_text(f"Requeued job {failed}")
    expect(page.locator("#job-state")).to_have_text("pending")
    stored = row(web.db, failed)
    assert (stored["state"], stored["retry"]) == ("pending", 0)
    # the message shows once
    page.reload()
    expect(page.locator("#flash")).to_have_count(0)
    clean(page)


def test_cancel_a_filtered_selection(web, page):
    with web.db.session() as session:
        partners = [webjobs.echo.delay(session, "res.partner", f"p{i}") for i in range(5)]
        orders = [webjobs.echo.delay(session, "sale.order", f"o{i}") for i in range(3)]
    page.goto(web.url + "/jobs?model=res.partner")
    page.click("#bulk-cancel")
    expect(page.locator("#confirm-count")).to_have_text("5")
    expect(page.locator("#confirm-text")).to_contain_text("model res.partner")
    # a job arriving after the confirmation was shown is not part of what it counted
    with web.db.session() as session:
        newcomer = webjobs.echo.delay(session, "res.partner", "late")
    page.click("#confirm-button")
    expect(page.locator("#flash")).to_contain_text("Cancelled 5 job(s) matching")
    for job_uuid in partners:
        stored = row(web.db, job_uuid)
        assert (stored["state"], stored["result"]) == ("cancelled", "Cancelled by dashboard")
    assert {row(web.db, job_uuid)["state"] for job_uuid in [*orders, newcomer]} == {"pending"}
    # the page after the action shows the filter's jobs as they are now
    expect(page.locator("#jobs tbody tr[data-uuid]")).to_have_count(1)
    clean(page)


def _runs(path: Path) -> list[tuple[float, float]]:
    if not path.exists():
        return []
    return [tuple(map(float, line.split())) for line in path.read_text().splitlines()]


def test_channel_capacity_edit_is_honoured_by_a_running_worker(web, page, tmp_path):
    db = web.db

    def run_batch(path: Path) -> list[tuple[float, float]]:
        with db.session() as session:
            uuids = [webjobs.slow.delay(session, None, str(path), 0.25) for _ in range(4)]
        wait_until(lambda: all(row(db, job_uuid)["state"] == "done" for job_uuid in uuids),
                   timeout=30, message="the batch to run")
        return _runs(path)

    with ThreadWorker(db, channels="root:4", modules=MODULES):
        # the worker's own capacity lets the jobs of root.web run side by side
        assert max_overlap(run_batch(tmp_path / "before")) > 1
        page.goto(web.url + "/channels")
        channel = page.locator("tr[data-channel='root.web']")
        channel.locator("input[name=capacity]").fill("1")
        channel.get_by_role("button", name="Save").click()
        expect(page.locator("#flash")).to_contain_text("Channel root.web: capacity 1")
        expect(page.locator("tr[data-channel='root.web'] input[name=capacity]")).to_have_value(
            "1")
        assert [row["capacity"] for row in operations.channels(db)
                if row["name"] == "root.web"] == [1]
        # the same worker, not restarted, now runs them one at a time
        assert max_overlap(run_batch(tmp_path / "after")) == 1
    clean(page)


def test_pause_and_resume_a_channel(web, page):
    with web.db.session() as session:
        webjobs.slow.delay(session, None, "/dev/null")
    page.goto(web.url + "/channels")
    channel = page.locator("tr[data-channel='root.web']")
    channel.get_by_role("button", name="Pause").click()
    expect(page.locator("#flash")).to_contain_text("Channel root.web paused")
    expect(page.locator("tr[data-channel='root.web'] .badge")).to_have_text("paused")
    assert [row["paused"] for row in operations.channels(web.db)
            if row["name"] == "root.web"] == [True]
    page.locator("tr[data-channel='root.web']").get_by_role("button", name="Resume").click()
    expect(page.locator("#flash")).to_contain_text("Channel root.web resumed")
    assert [row["paused"] for row in operations.channels(web.db)
            if row["name"] == "root.web"] == [False]
    # a bad channel name is refused with a message, nothing stored
    page.fill("#new-channel input[name=name]", "root.no spaces")
    page.click("#new-channel button")
    expect(page.locator("#flash")).to_contain_text("bad channel name")
    clean(page)


def test_edit_a_function_channel_and_retry_pattern(web, page):
    name = "tests.web.webjobs.echo"
    page.goto(web.url + "/functions")
    function = page.locator(f"tr[data-function='{name}']")
    function.locator("input[name=channel]").fill("root.echoes")
    function.locator("input[name=retry_pattern]").fill("1: 5, 3: 60")
    function.get_by_role("button", name="Save").click()
    expect(page.locator("#flash")).to_contain_text(f"Function {name}: updated")
    stored = next(row for row in operations.functions(web.db) if row["name"] == name)
    assert (stored["channel"], stored["retry_pattern"]) == ("root.echoes", {1: 5.0, 3: 60.0})
    with web.db.session() as session:
        job_uuid = webjobs.echo.delay(session, None, "routed")
    assert row(web.db, job_uuid)["channel"] == "root.echoes"

    page.locator(f"tr[data-function='{name}']").get_by_role("button", name="Reset").click()
    expect(page.locator("#flash")).to_contain_text("back to its decorator's")
    stored = next(row for row in operations.functions(web.db) if row["name"] == name)
    assert (stored["channel_overridden"], stored["retry_pattern_overridden"]) == (False, False)
    clean(page)


def test_related_action_is_a_link_only_for_web_urls(web, page):
    with web.db.session() as session:
        linked = webjobs.open_partner.delay(session, "res.partner", 42)
        sneaky = webjobs.sneaky_action.delay(session, None)
        described = webjobs.described.delay(session, "res.partner", 7)
    page.goto(f"{web.url}/jobs/{linked}")
    expect(page.locator("#related-link")).to_have_attribute(
        "href", "https://erp.example.com/partner/42")
    page.goto(f"{web.url}/jobs/{sneaky}")
    expect(page.locator("#related-link")).to_have_count(0)
    expect(page.locator("#related")).to_contain_text("javascript:window.__xss=1")
    page.goto(f"{web.url}/jobs/{described}")
    expect(page.locator("#related")).to_contain_text("'model': 'res.partner'")
    assert page.evaluate("window.__xss") is None
    clean(page)


def test_workers_page_shows_what_each_runs(web, page, tmp_path):
    with ThreadWorker(web.db, channels="root:2", modules=MODULES) as worker:
        with web.db.session() as session:
            job_uuid = webjobs.slow.delay(session, None, str(tmp_path / "log"), 1.5)
        wait_until(lambda: row(web.db, job_uuid)["state"] == "started", message="a start")
        page.goto(web.url + "/workers")
        me = page.locator(f"tr[data-worker='{worker.worker.id}']")
        expect(me.locator(".badge")).to_have_text("alive")
        expect(page.locator(".running-job")).to_contain_text("tests.web.webjobs.slow")
        expect(page.locator(f".running-job a[href$='{job_uuid}']")).to_have_count(1)
    clean(page)


def test_overview_refreshes_itself(fast_web, page):
    page.goto(fast_web.url + "/")
    pending = page.locator("#states .card[data-state=pending] .count")
    expect(pending).to_have_text("0")
    with fast_web.db.session() as session:
        for index in range(3):
            webjobs.echo.delay(session, None, f"new {index}")
    expect(pending).to_have_text("3")
    expect(page.locator("#queue-depth")).to_have_text("3")
    # refreshed in place: still the first navigation of the page
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
    assert int(page.locator("#live").get_attribute("data-refreshes")) >= 1
    clean(page)


def test_the_channel_filter_offers_a_channel_created_on_the_dashboard(web, page):
    with web.db.session() as session:
        webjobs.slow.delay(session, None, "/dev/null")
    page.goto(web.url + "/jobs")
    options = page.locator("#f-channel option")
    expect(options.filter(has_text="root.web")).to_have_count(1)
    expect(options.filter(has_text="root.reports")).to_have_count(0)
    # the suggestions are kept a few seconds; a change made here is offered at once
    page.goto(web.url + "/channels")
    page.fill("#new-channel input[name=name]", "root.reports")
    page.fill("#new-channel input[name=capacity]", "2")
    page.click("#new-channel button")
    expect(page.locator("#flash")).to_contain_text("root.reports")
    page.goto(web.url + "/jobs")
    expect(options.filter(has_text="root.reports")).to_have_count(1)
    clean(page)
