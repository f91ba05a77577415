"""The channels page says where each rule comes from: stored, or declared by live
workers' ``--channels`` (and which workers disagree), in a real headless browser on
SQLite and PostgreSQL."""

from __future__ import annotations

from playwright.sync_api import expect

from queuejob import operations
from tests.helpers import ThreadWorker, wait_until


def _declared_by(db, name: str) -> list[str]:
    return next((row["declared_by"] for row in operations.channels(db) if row["name"] == name),
                [])


def test_the_channels_page_shows_each_rules_source_and_who_disagrees(web, page):
    db = web.db
    with ThreadWorker(db, channels="root.export:2", name="wide"), \
            ThreadWorker(db, channels="root.export:1:paused", name="narrow"):
        wait_until(lambda: len(_declared_by(db, "root.export")) == 2)
        page.goto(f"{web.url}/channels")
        row = page.locator("#channels tr[data-channel='root.export']")
        expect(row.locator("td.source")).to_contain_text("--channels of 2 worker(s)")
        expect(row.locator(".disagreeing")).to_have_text("differs: wide")
        expect(row.locator("input[name=capacity]")).to_have_value("1")
        expect(row).to_have_class("paused")
        # declared rules are not stored: nothing to remove
        expect(row.get_by_role("button", name="Remove configuration")).to_have_count(0)
        # saving stores the rules, which then win over the workers' (both now differ)
        row.locator("input[name=capacity]").fill("3")
        row.get_by_role("button", name="Save").click()
        expect(page.locator("#flash")).to_contain_text("capacity 3")
        row = page.locator("#channels tr[data-channel='root.export']")
        expect(row.locator("td.source")).to_contain_text("stored")
        expect(row.locator(".disagreeing")).to_have_text("differs: narrow, wide")
        expect(row.get_by_role("button", name="Remove configuration")).to_have_count(1)
    assert page.watch.errors == [] and page.watch.console == []
