"""A job graph on the job page (its drawing, nodes coloured by state, and its table) and
the schedules page, in a real headless browser on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from playwright.sync_api import expect

import queuejob
from queuejob import chain, group, operations
from queuejob.web import graphs
from queuejob.worker.startup import import_job_modules
from tests.web import webjobs
from tests.web.conftest import _serve

MODULES = ["tests.web.webjobs"]


def burst(db: queuejob.Database) -> None:
    queuejob.Worker(db, channels="root:4", modules=MODULES).run(burst=True)


def clean(page) -> None:
    assert page.watch.dialogs == []
    assert page.watch.errors == []
    assert page.watch.console == []


def make_graph(db: queuejob.Database) -> dict[str, str]:
    """group(chain(a, b), chain(c, x), later).on_done(chain(d, e)), run by a worker: a and
    b are done, c failed, later is due in an hour, x, d and e wait for their parents."""
    with db.session() as session:
        a = webjobs.echo.delayable(session, None, "a", description="Fetch the orders")
        b = webjobs.echo.delayable(session, None, "b", description="Check the orders")
        c = webjobs.explode.delayable(session, None, "no rates today",
                                      description="Fetch the rates")
        x = webjobs.echo.delayable(session, None, "x", description="Convert the prices")
        later = webjobs.echo.delayable(session, None, "later", eta=3600,
                                       description="Wait for the bank")
        d = webjobs.echo.delayable(session, None, "d", description="Export to the ERP")
        e = webjobs.echo.delayable(session, None, "e", description="Send the report")
        group(chain(a, b), chain(c, x), later).on_done(chain(d, e)).delay()
    burst(db)
    return {"a": a.uuid, "b": b.uuid, "c": c.uuid, "x": x.uuid, "later": later.uuid,
            "d": d.uuid, "e": e.uuid}


EXPECTED = {"a": "done", "b": "done", "c": "failed", "x": "wait_dependencies",
            "later": "pending", "d": "wait_dependencies", "e": "wait_dependencies"}
EDGES = {("a", "b"), ("c", "x"), ("b", "d"), ("x", "d"), ("later", "d"), ("d", "e")}


def box(page, uuid: str) -> dict[str, float]:
    rect = page.locator(f"#graph a.node[data-uuid='{uuid}'] rect")
    return {key: float(rect.get_attribute(key)) for key in ("x", "y", "width", "height")}


def test_the_job_page_draws_the_graph_coloured_by_state(web, page):
    jobs = make_graph(web.db)
    states = {name: operations.load_job(web.db, uuid)["state"] for name, uuid in jobs.items()}
    assert states == EXPECTED
    page.goto(f"{web.url}/jobs/{jobs['d']}")
    nodes = page.locator("#graph a.node")
    expect(nodes).to_have_count(len(jobs))
    for name, uuid in jobs.items():
        node = page.locator(f"#graph a.node[data-uuid='{uuid}']")
        expect(node).to_have_count(1)
        expect(node).to_have_class(re.compile(rf"(^|\s)state-{EXPECTED[name]}(\s|$)"))
        expect(node).to_have_attribute("href", f"/jobs/{uuid}")
        expect(node.locator("text.sublabel")).to_have_text(f"{EXPECTED[name]} · {uuid[:8]}")
    # the job of the page stands out, and only it
    expect(page.locator("#graph a.node.current")).to_have_count(1)
    expect(page.locator("#graph a.node.current")).to_have_attribute("data-uuid", jobs["d"])
    # one line per dependency, each job below the jobs it waits for
    lines = page.locator("#graph path.edge")
    expect(lines).to_have_count(len(EDGES))
    drawn = set(zip(lines.evaluate_all("paths => paths.map(p => p.dataset.parent)"),
                    lines.evaluate_all("paths => paths.map(p => p.dataset.child)"), strict=True))
    assert drawn == {(jobs[parent], jobs[child]) for parent, child in EDGES}
    for parent, child in EDGES:
        above, below = box(page, jobs[parent]), box(page, jobs[child])
        assert below["y"] >= above["y"] + above["height"], (parent, child)
    # the stylesheet colours the boxes (no inline style: the CSP would block it)
    fills = {name: page.locator(f"#graph a.node[data-uuid='{uuid}'] rect").evaluate(
        "rect => getComputedStyle(rect).fill") for name, uuid in jobs.items()}
    assert fills["a"] == fills["b"]
    assert len({fills["a"], fills["c"], fills["later"], fills["d"]}) == 4, fills
    # the table lists every job of the graph, parents first
    rows = page.locator("#graph-jobs tbody tr")
    expect(rows).to_have_count(len(jobs))
    listed = rows.evaluate_all("rows => rows.map(row => row.dataset.uuid)")
    assert set(listed) == set(jobs.values())
    assert listed.index(jobs["a"]) < listed.index(jobs["b"]) < listed.index(jobs["d"]) \
        < listed.index(jobs["e"])
    failed_row = page.locator(f"#graph-jobs tr[data-uuid='{jobs['c']}']")
    expect(failed_row).to_have_class(re.compile(r"state-failed"))
    expect(failed_row).to_contain_text("tests.web.webjobs.explode")
    expect(failed_row).to_contain_text("Fetch the rates")
    expect(page.locator(f"#graph-jobs tr[data-uuid='{jobs['d']}']")).to_contain_text(
        "(this job)")
    expect(page.locator("#graph-summary")).to_contain_text("7 jobs")
    expect(page.locator("#graph-summary")).to_contain_text("3 wait_dependencies")
    # a node is a link to its job's page, where that job is the highlighted one
    page.locator(f"#graph a.node[data-uuid='{jobs['c']}']").click()
    expect(page).to_have_url(f"{web.url}/jobs/{jobs['c']}")
    expect(page.locator("h1")).to_contain_text(jobs["c"])
    expect(page.locator("#job-state")).to_have_text("failed")
    expect(page.locator("#graph a.node.current")).to_have_attribute("data-uuid", jobs["c"])
    # cancel it from its page
    page.click("#action-cancel")
    expect(page.locator("#flash")).to_contain_text("Cancelled")
    # cancelling it cancelled x, which waited for it alone; d keeps waiting, as in the
    # successor, because its other parents are not cancelled: the drawing shows it
    for name, state in (("c", "cancelled"), ("x", "cancelled"), ("d", "wait_dependencies"),
                        ("e", "wait_dependencies"), ("later", "pending")):
        expect(page.locator(f"#graph a.node[data-uuid='{jobs[name]}']")).to_have_attribute(
            "data-state", state)
    clean(page)


def test_a_job_outside_any_graph_has_no_graph(web, page):
    with web.db.session() as session:
        alone = webjobs.echo.delay(session, None, "alone")
    page.goto(f"{web.url}/jobs/{alone}")
    expect(page.locator("#fields")).to_be_visible()
    expect(page.locator("#graph-section")).to_have_count(0)
    clean(page)


def test_a_big_graph_is_listed_not_drawn(web, page):
    count = graphs.MAX_DRAWN + 1
    with web.db.session() as session:
        first = webjobs.echo.delayable(session, None, "first")
        rest = [webjobs.echo.delayable(session, None, f"job {index}")
                for index in range(count - 1)]
        first.on_done(group(*rest)).delay()
    page.goto(f"{web.url}/jobs/{rest[0].uuid}")
    expect(page.locator("#graph-note")).to_contain_text(f"{count} jobs")
    expect(page.locator("#graph")).to_have_count(0)
    expect(page.locator("#graph-jobs tbody tr")).to_have_count(count)
    expect(page.locator("#graph-jobs tbody tr").first).to_have_attribute("data-uuid",
                                                                         first.uuid)
    clean(page)


@pytest.fixture
def cron_web(db):
    """The dashboard of a process that imported tests.cron_jobs (queuejob web --module)."""
    import_job_modules(["tests.cron_jobs"])
    yield from _serve(db)


def test_the_schedules_page_shows_the_next_runs(cron_web, page):
    web = cron_web
    slot = dt.datetime(2026, 1, 2, 3, 4, 6, tzinfo=dt.UTC)
    web.db.run(lambda conn: web.db.store.start_schedule(conn, "daily-report", slot))
    page.goto(web.url + "/")
    page.click("header nav a:text('Schedules')")
    expect(page).to_have_url(web.url + "/schedules")
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    page.reload()
    after = dt.datetime.now(dt.UTC)
    rows = page.locator("#schedules tbody tr[data-schedule]")
    names = rows.evaluate_all("rows => rows.map(row => row.dataset.schedule)")
    assert {"daily-report", "tests.cron_jobs.every_two_seconds"} <= set(names)
    expected = {"daily-report": ("tests.cron_jobs.report", "* * * * * */3", 3),
                "tests.cron_jobs.every_two_seconds": ("tests.cron_jobs.every_two_seconds",
                                                      "* * * * * */2", 2)}
    for name, (function, cron, period) in expected.items():
        row = page.locator(f"#schedules tr[data-schedule='{name}']")
        cells = row.locator("td")
        expect(cells.nth(1)).to_have_text(function)
        expect(cells.nth(2)).to_have_text(cron)
        expect(cells.nth(5)).to_have_text("no")
        next_run = dt.datetime.fromisoformat(row.locator(".next-run").get_attribute(
            "data-when"))
        # the first slot after the page was asked for: in the future then
        assert before < next_run <= after + dt.timedelta(seconds=period), next_run
        assert next_run.second % period == 0
        expect(row.locator(".next-run")).to_contain_text(
            next_run.strftime("%Y-%m-%d %H:%M:%S"))
    expect(page.locator("#schedules tr[data-schedule='daily-report'] .last-slot")).to_have_text(
        "2026-01-02 03:04:06")
    # the function links to its jobs
    page.click("#schedules tr[data-schedule='daily-report'] a")
    expect(page).to_have_url(re.compile(r"/jobs\?function=tests\.cron_jobs\.report"))
    clean(page)


def test_a_job_that_stood_in_for_a_keyed_job_is_shown_outside_the_graph(web, page):
    with web.db.session() as session:
        holder = webjobs.echo.delay(session, None, "first", identity_key="export-42")
        keyed = webjobs.echo.delayable(session, None, "again", identity_key="export-42")
        # a key not held yet: the graph is stored (it is skipped when every key is held)
        child = webjobs.echo.delayable(session, None, "after", identity_key="mail-42",
                                       description="After the export")
        chain(keyed, child).delay()
    assert keyed.uuid == holder  # the existing job stands in for it
    page.goto(f"{web.url}/jobs/{child.uuid}")
    expect(page.locator("#graph a.node")).to_have_count(2)
    outside = page.locator(f"#graph a.node[data-uuid='{holder}']")
    expect(outside).to_have_class(re.compile(r"(^|\s)external(\s|$)"))
    expect(outside).to_have_class(re.compile(r"state-pending"))
    expect(page.locator(f"#graph a.node[data-uuid='{child.uuid}']")).to_have_class(
        re.compile(r"state-wait_dependencies"))
    expect(page.locator(f"#graph path.edge[data-parent='{holder}']")).to_have_attribute(
        "data-child", child.uuid)
    expect(page.locator(f"#graph-jobs tr[data-uuid='{holder}']")).to_contain_text(
        "(outside this graph)")
    # the job that stood in belongs to no graph: its own page has none
    outside.click()
    expect(page).to_have_url(f"{web.url}/jobs/{holder}")
    expect(page.locator("#graph-section")).to_have_count(0)
    clean(page)
