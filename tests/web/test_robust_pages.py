"""What a stored row holds and what a person types is data: a bad value costs that one
row, never the page. Rows written by hand (invalid UTF-8, NUL, control characters, huge
texts, BLOBs and wrong types in SQLite) leave every page and /metrics answering 200, the
row shown escaped; list pages read and render bounded texts; bad query and form values
are a 400 naming the value; every answer, an unexpected 500 included, carries the
security headers; related-action URLs never link another host; ``queuejob web`` takes its
credentials from a file and closes connections that never finish their request head."""

from __future__ import annotations

import html
import http.client
import logging
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markupsafe import Markup, escape
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

import queuejob
from queuejob import job, operations, related_action
from queuejob.cli.app import cli
from queuejob.core import limits
from queuejob.store.reads import LISTED_READ
from queuejob.web import create_app, display, security, views
from queuejob.web.app import make_templates
from tests.helpers import ROOT, stop_process, wait_until
from tests.reliability.common import sql
from tests.web import webjobs

PAGES = ["/", "/?range=day", "/jobs", "/jobs?all=1&limit=500", "/channels", "/functions",
         "/workers", "/schedules", "/metrics"]
ORIGIN = "http://127.0.0.1"


def link_of_url_argument(session, job):
    return job.args[1]  # after the model name, as in the original


@job
@related_action(action=link_of_url_argument)
def linked(session, model_name, url):
    """A job whose related action returns its url argument."""


@pytest.fixture
def client(db) -> Iterator[TestClient]:
    """The dashboard of the test's database, in process (loopback, no credentials)."""
    with TestClient(create_app(db), base_url=ORIGIN) as test_client:
        yield test_client


def _pending(db: queuejob.Database, **options: Any) -> str:
    with db.session() as session:
        return webjobs.echo.delay(session, "res.partner", "hello", **options)


def _set(db: queuejob.Database, job_uuid: str, column: str, value: Any) -> None:
    """Write one column of a job row as another tool might: bytes as invalid UTF-8
    text (SQLite keeps them, and hands them back with lone surrogates)."""
    if isinstance(value, bytes) and db.dialect == "sqlite":
        sql(db, f"UPDATE queue_job SET {column} = CAST(? AS TEXT) WHERE uuid = ?",
            (value, job_uuid))
    else:
        sql(db, f"UPDATE queue_job SET {column} = ? WHERE uuid = ?", (value, job_uuid))


def _blob(db: queuejob.Database, job_uuid: str, column: str, value: bytes) -> None:
    """A BLOB where text belongs (SQLite only)."""
    sql(db, f"UPDATE queue_job SET {column} = ? WHERE uuid = ?", (value, job_uuid))


def _assert_pages(client: TestClient, *job_uuids: str) -> dict[str, str]:
    """Every page, the jobs' own pages and /metrics answer 200; their bodies by path."""
    bodies = {}
    for path in [*PAGES, *(f"/jobs/{one}" for one in job_uuids)]:
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
        assert response.headers["content-security-policy"] == security.CONTENT_SECURITY_POLICY
        bodies[path] = response.text
    list(text_string_to_metric_families(bodies["/metrics"]))  # parses
    return bodies


# -- stored rows ------------------------------------------------------------------------------
#: a text of every kind of bad character: invalid UTF-8 (SQLite only), NUL (SQLite only:
#: PostgreSQL refuses it), terminal escapes, a bidirectional override, markup
BAD_UTF8 = b"caf\xe9\xff \x00 \x1b[2J \xe2\x80\xae <b>bold</b>"
BAD_TEXT = "caf\u00e9 \x1b[2J \u202e <b>bold</b> \x07"


def _bad_value(db: queuejob.Database) -> tuple[Any, list[str]]:
    """The bad value stored, and escaped forms of it the pages must show."""
    if db.dialect == "sqlite":
        return BAD_UTF8, ["caf\\udce9\\udcff", "\\x00", "\\x1b[2J", "\\u202e",
                          "&lt;b&gt;bold&lt;/b&gt;"]
    return BAD_TEXT, ["café", "\\x1b[2J", "\\u202e", "&lt;b&gt;bold&lt;/b&gt;", "\\x07"]


@pytest.mark.parametrize("column", ["description", "channel", "func_name", "model_name",
                                    "state", "worker_id", "identity_key", "context", "result",
                                    "exc_info", "args", "kwargs"])
def test_bad_text_in_a_column_costs_nothing(db, client, column):
    value, escaped = _bad_value(db)
    other = _pending(db, description="an ordinary job")
    job_uuid = _pending(db, description="the bad one")
    if column in ("worker_id", "exc_info"):
        _set(db, job_uuid, "state", "started" if column == "worker_id" else "failed")
        db.run(lambda conn: db.store.register_worker(conn, "w1", "host", 1, "root:1"))
    _set(db, job_uuid, column, value)
    if column == "worker_id":  # the worker of that name runs it
        cast = "CAST(? AS TEXT)" if db.dialect == "sqlite" else "?"
        sql(db, f"UPDATE queue_worker SET id = {cast}", (value,))
    bodies = _assert_pages(client, job_uuid, other)
    # the row is listed, the other one too, and the bad text shows escaped where shown
    listing = bodies["/jobs?all=1&limit=500"]
    assert f'data-uuid="{job_uuid}"' in listing and f'data-uuid="{other}"' in listing
    shown = {"description": listing, "channel": listing, "func_name": listing,
             "model_name": listing, "state": listing, "exc_info": listing,
             "worker_id": bodies["/workers"]}.get(column, bodies[f"/jobs/{job_uuid}"])
    for form in escaped:
        assert form in shown, (column, form)
    for body in bodies.values():
        assert "\x00" not in body and "\x1b" not in body and "\u202e" not in body


def test_wrong_types_in_sqlite_columns(db, client):
    job_uuid = _pending(db)
    if db.dialect != "sqlite":
        # PostgreSQL's columns are typed: such values are refused where they are written
        with pytest.raises(psycopg.Error):
            sql(db, "UPDATE queue_job SET priority = ? WHERE uuid = ?", ("urgent", job_uuid))
        return
    wrong = {"priority": "urgent", "max_retries": 2.5, "retry": b"\x01", "attempt": "x",
             "worker_deaths": b"", "user_id": "admin", "eta": "soon", "date_created": b"\xff",
             "date_started": 1e300, "date_done": "never", "timeout": "long",
             "has_dependents": "yes", "graph_uuid": "not-a-uuid"}
    for column, value in wrong.items():
        sql(db, f"UPDATE queue_job SET {column} = ? WHERE uuid = ?", (value, job_uuid))
    for column in ("description", "channel", "func_name", "model_name", "context", "result",
                   "args"):
        _blob(db, job_uuid, column, b"\xde\xad" + column.encode())
    sql(db, "UPDATE queue_job SET kwargs = 7 WHERE uuid = ?", (job_uuid,))
    bodies = _assert_pages(client, job_uuid)
    listing = bodies["/jobs?all=1&limit=500"]
    assert f'data-uuid="{job_uuid}"' in listing
    # each value shown as what it is
    page = bodies[f"/jobs/{job_uuid}"]
    assert "urgent" in listing and "soon" in page and "never" in page and "admin" in page
    assert str(escape(repr(b"\xde\xaddescription"))) in listing
    assert "Cannot decode the arguments here" in page
    # sorted by eta or priority, a text among the numbers pages nothing out
    for sort in ("eta", "-eta", "priority", "-priority", "done", "started"):
        response = client.get(f"/jobs?all=1&sort={sort}")
        assert response.status_code == 200, sort
        assert f'data-uuid="{job_uuid}"' in response.text, sort


def test_a_stored_uuid_that_is_not_one_is_listed_unlinked(db, client):
    job_uuid = _pending(db)
    if db.dialect != "sqlite":
        # PostgreSQL's uuid column holds uuids: refused where it is written
        with pytest.raises(psycopg.Error):
            sql(db, "UPDATE queue_job SET uuid = ? WHERE uuid = ?", ("../x", job_uuid))
        return
    sql(db, "UPDATE queue_job SET uuid = CAST(? AS TEXT) WHERE uuid = ?",
        (b"../../channels/delete\xff" + b"x" * 5000, job_uuid))
    listing = _assert_pages(client)["/jobs?all=1&limit=500"]
    assert "../../channels/delete\\udcff" in listing
    assert 'href="/jobs/../' not in listing
    assert len(listing) < 50_000  # its 5,000 characters are cut


def test_bad_configuration_rows_cost_their_row(db, client):
    _pending(db)
    placeholder_text = BAD_UTF8 if db.dialect == "sqlite" else BAD_TEXT.encode()
    cast = "CAST(? AS TEXT)" if db.dialect == "sqlite" else "?"
    text_value: Any = placeholder_text if db.dialect == "sqlite" else BAD_TEXT
    operations.set_channel(db, "root.good", 2)
    sql(db, "INSERT INTO queue_channel (name, capacity, sequential, throttle, paused) "
        f"VALUES ({cast}, 2, ?, 0, ?)", (text_value, False, False))
    sql(db, "INSERT INTO queue_channel (name, capacity, sequential, throttle, paused) "
        "VALUES (?, 2, ?, 0, ?)", ("root.fine name", False, False))
    sql(db, "INSERT INTO queue_job_function (name, channel, retry_pattern) "
        f"VALUES ({cast}, {cast}, ?)", (text_value, text_value, "not json"))
    sql(db, "INSERT INTO queue_job_function (name, channel, retry_pattern) "
        "VALUES (?, ?, ?)", ("tests.web.webjobs.echo", "root.echoes", '{"1": "soon"}'))
    db.run(lambda conn: db.store.register_worker(conn, "w1", "host", 1, "root:1"))
    sql(db, f"UPDATE queue_worker SET hostname = {cast}, channels = {cast}",
        (text_value, text_value))
    if db.dialect == "sqlite":
        sql(db, "UPDATE queue_channel SET capacity = 'many', throttle = x'00' "
            "WHERE name = 'root.fine name'")
        sql(db, "UPDATE queue_worker SET pid = 'x', heartbeat = 'now'")
    bodies = _assert_pages(client)
    channels = bodies["/channels"]
    assert 'data-channel="root.good"' in channels
    assert "not a channel name" in channels and "root.fine name" in channels
    functions = bodies["/functions"]
    assert "stored retry pattern" in functions and "not used" in functions
    assert 'data-function="tests.web.webjobs.echo"' in functions
    assert "café" in bodies["/workers"] or "caf\\udce9" in bodies["/workers"]
    samples = {(sample.name, tuple(sorted(sample.labels.items())))
               for family in text_string_to_metric_families(bodies["/metrics"])
               for sample in family.samples}
    assert ("queuejob_channel_capacity", (("channel", "root.good"),)) in samples


def test_labels_are_displayable_and_merged(db):
    job_uuids = [_pending(db) for _ in range(3)]
    long_name = "root." + "a" * 5000
    value, _ = _bad_value(db)
    _set(db, job_uuids[0], "channel", value)
    _set(db, job_uuids[1], "channel", long_name + "1")
    _set(db, job_uuids[2], "channel", long_name + "2")
    text = queuejob.metrics.render(db).decode("utf-8")  # encodes: no surrogate left
    pending = [sample for family in text_string_to_metric_families(text)
               for sample in family.samples
               if sample.name == "queuejob_jobs" and sample.labels["state"] == "pending"]
    channels = {sample.labels["channel"]: sample.value for sample in pending}
    # the two long names end up the same label: their jobs are summed, not repeated
    assert channels[display_label(long_name)] == 2
    assert all(len(channel) <= queuejob.metrics.MAX_LABEL for channel in channels)
    assert len(channels) == 2


def display_label(name: str) -> str:
    return queuejob.metrics.label(name)


def test_every_rendered_value_is_text_a_page_can_hold():
    env = make_templates()
    template = env.from_string("{{ value }}|{{ markup }}|{{ number }}")
    rendered = template.render(value="a\udcff\x00\x1b<", markup=Markup("<b>ok</b>"),
                               number=5)
    assert rendered == "a\\udcff\\x00\\x1b&lt;|<b>ok</b>|5"
    rendered.encode("utf-8")
    huge = env.from_string("{{ value }}").render(value="x" * (display.MAX_RENDERED + 10))
    assert len(huge) < display.MAX_RENDERED + 100 and huge.endswith("characters in all]")
    assert env.from_string("{{ value }}").render(value=b"\xff") == "b&#39;\\xff&#39;"


# -- bounded list pages -----------------------------------------------------------------------
def test_huge_texts_are_read_and_shown_bounded(db, client):
    huge = 1_000_000
    with db.session() as session:
        uuids = [webjobs.echo.delay(session, "res.partner", "x", description=f"d{index}")
                 for index in range(30)]
    # written as a tool that knows no limit would (delay refuses them)
    sql(db, "UPDATE queue_job SET description = ?, model_name = ?", ("é" * huge, "m" * huge))
    sql(db, "UPDATE queue_job SET state = 'failed', exc_info = ? WHERE uuid = ?",
        ("Traceback\n" + "x" * huge + "\nValueError: the last line", uuids[0]))
    sql(db, "UPDATE queue_job SET state = 'started', worker_id = 'w1', result = ? "
        "WHERE uuid = ?", ("r" * huge, uuids[1]))
    db.run(lambda conn: db.store.register_worker(conn, "w1", "host", 1, "root:1"))
    # the query reads a bounded prefix of each text, the exception's end
    page = operations.find_jobs(db, operations.JobFilter(show_all=True), limit=50)
    assert len(page.rows) == 30
    for row in page.rows:
        assert len(row["description"]) <= 4 * LISTED_READ
        assert len(row["model_name"]) <= 4 * LISTED_READ
        assert row["exc_info"] is None or len(row["exc_info"]) <= 16 * LISTED_READ
    assert all(len(row["description"]) <= 4 * LISTED_READ
               for row in operations.running_jobs(db))
    response = client.get("/jobs?all=1")
    assert response.status_code == 200
    assert len(response.content) < 30 * 4 * limits.LISTED * 8 + 50_000
    assert response.text.count("[... truncated]") >= 60
    assert "ValueError: the last line" in response.text
    workers = client.get("/workers")
    assert workers.status_code == 200 and len(workers.content) < 20_000
    # the job's own page clips its texts too
    one = client.get(f"/jobs/{uuids[1]}")
    assert one.status_code == 200
    assert len(one.content) < 8 * views.MAX_TEXT
    assert f"[... truncated: {huge} characters in all]" in one.text


# -- arguments ----------------------------------------------------------------------------------
@pytest.mark.parametrize("depth", [350, 480, 5000])
def test_deeply_nested_arguments_show_their_stored_text(db, client, depth):
    job_uuid = _pending(db)
    args = "[" * depth + "1" + "]" * depth
    kwargs = '{"a": ' * depth + "1" + "}" * depth
    sql(db, "UPDATE queue_job SET args = ?, kwargs = ? WHERE uuid = ?",
        (args, kwargs, job_uuid))
    response = client.get(f"/jobs/{job_uuid}")
    assert response.status_code == 200
    reason = re.search(r'<p class="bad" id="args-error">(.*?)</p>', response.text).group(1)
    assert "nested too deeply" in reason and "\n" not in reason
    shown = re.search(r'<pre id="args">(.*?)</pre>', response.text, re.S).group(1)
    assert shown == str(escape(display.text(args, views.MAX_TEXT)))
    assert shown.startswith("[[[[")


def test_arguments_of_any_stored_text_show_with_a_reason(db, client):
    cases = ["[1, 2", '{"__type__": "nope"}', '["\\ud800"]', "[" + "1," * 200_000 + "1]",
             '{"a": NaN}']
    for args in cases:
        job_uuid = _pending(db)
        sql(db, "UPDATE queue_job SET args = ? WHERE uuid = ?", (args, job_uuid))
        response = client.get(f"/jobs/{job_uuid}")
        assert response.status_code == 200, args[:40]
        assert len(response.content) < 6 * views.MAX_TEXT, args[:40]


# -- what people type ---------------------------------------------------------------------------
BAD_QUERIES = [
    ("/jobs?user=--5", "user"), ("/jobs?user=%C2%B2", "user"),
    ("/jobs?user=99999999999999999999", "user"), ("/jobs?user=-9223372036854775809", "user"),
    ("/jobs?limit=99999999999999999999", "limit"), ("/jobs?limit=1e3", "limit"),
    ("/jobs?q=" + "x" * 50_000, "q"), ("/jobs?sort=bogus", "sort"), ("/jobs?sort=--id", "sort"),
    ("/?range=week", "range"), ("/jobs?state=nope", "state"),
    ("/jobs?channel=no%20spaces", "channel"), ("/jobs?channel=root..x", "channel"),
    ("/jobs?channel=" + "a" * 5000, "channel"), ("/jobs?model=a%00b", "model"),
    ("/jobs?function=" + "f" * 5000, "function"), ("/jobs?after=abc", "cursor"),
    ("/jobs?after=1~99999999999999999999", "cursor"),
    ("/jobs?before=99999999999999999999~1", "cursor"), ("/jobs?sort=eta&after=nan~1", "cursor"),
    ("/jobs?sort=eta&after=inf~1", "cursor"), ("/jobs?sort=priority&after=~", "cursor"),
    ("/jobs?after=" + "1" * 5000, "after"), ("/jobs/confirm?action=cancel&user=--5", "user"),
    ("/jobs/confirm?action=bogus", "action"),
    ("/jobs/confirm?action=cancel&channel=%00", "channel"),
]


@pytest.mark.parametrize(("path", "named"), BAD_QUERIES)
def test_bad_query_values_are_a_400_that_says_which(db, client, path, named):
    _pending(db)
    response = client.get(path)
    assert response.status_code == 400, (path[:80], response.status_code)
    assert response.headers["content-security-policy"] == security.CONTENT_SECURITY_POLICY
    message = re.search(r'<p class="error" id="error">(.*?)</p>', response.text, re.S)
    assert message is not None and named in message.group(1), message
    assert len(response.content) < 20_000


def test_cursors_of_real_pages_work_on_either_backend(db, client):
    for index in range(5):
        _pending(db, priority=index, eta=index * 60)
    for sort in ("-created", "created", "priority", "-priority", "eta", "-eta"):
        first = client.get(f"/jobs?limit=2&sort={sort}")
        assert first.status_code == 200
        link = re.search(r'id="page-next" href="\?([^"]+)"', first.text).group(1)
        second = client.get("/jobs?" + html.unescape(link))
        assert second.status_code == 200, sort
        assert 'id="page-previous"' in second.text


def _token(client: TestClient, path: str = "/channels") -> str:
    response = client.get(path)
    assert response.status_code == 200
    return re.search(r'name="csrf_token" value="([0-9a-f]+)"', response.text).group(1)


BAD_FORMS = [
    ("/channels/set", {"name": "root.web", "capacity": "abc"}, "capacity"),
    ("/channels/set", {"name": "root.web", "capacity": "99999999999999999999"}, "capacity"),
    ("/channels/set", {"name": "root.web", "capacity": "2147483648"}, "capacity"),
    ("/channels/set", {"name": "root.web", "capacity": "0"}, "capacity"),
    ("/channels/set", {"name": "root.web", "throttle": "inf"}, "throttle"),
    ("/channels/set", {"name": "root.web", "throttle": "nan"}, "throttle"),
    ("/channels/set", {"name": "root.web", "throttle": "-1"}, "throttle"),
    ("/channels/set", {"name": "root.web", "throttle": "1e999"}, "throttle"),
    ("/channels/set", {"name": "root.web", "removal_interval": "-3"}, "removal_interval"),
    ("/channels/set", {"name": "root.web", "removal_interval": "infinity"},
     "removal_interval"),
    ("/channels/set", {"name": "root.w\x00eb"}, "name"),
    ("/channels/pause", {"name": "r" * 5000}, "name"),
    ("/functions/set", {"name": "tests.web.webjobs.echo", "retry_pattern": "1: inf"},
     "retry pattern"),
    ("/functions/set", {"name": "tests.web.webjobs.echo", "retry_pattern": "soon"},
     "retry pattern"),
    ("/functions/set", {"name": "tests.web.webjobs.echo", "retry_pattern": "1: -5"},
     "retry pattern"),
    ("/functions/set", {"name": "tests.web.webjobs.echo",
                        "retry_pattern": "{" * 5000 + "}" * 5000}, "retry_pattern"),
    ("/functions/set", {"name": "tests.web.webjobs.echo",
                        "retry_pattern": "99999999999999999999: 5"}, "retry pattern"),
    ("/functions/set", {"name": ""}, "name"),
    ("/jobs/bulk", {"action": "cancel", "upto": "99999999999999999999"}, "upto"),
    ("/jobs/bulk", {"action": "cancel", "upto": "-1"}, "upto"),
    ("/jobs/bulk", {"action": "cancel", "upto": "5", "user": "--5"}, "user"),
    ("/jobs/bulk", {"action": "explode", "upto": "5"}, "action"),
]


@pytest.mark.parametrize(("path", "form", "named"), BAD_FORMS)
def test_bad_form_values_are_a_400_that_says_which(db, client, path, form, named):
    job_uuid = _pending(db)
    before = operations.channels(db), operations.functions(db)
    token = _token(client)
    response = client.post(path, data={**form, "csrf_token": token},
                           headers={"Origin": ORIGIN}, follow_redirects=False)
    assert response.status_code == 400, (path, form, response.status_code)
    assert response.headers["x-frame-options"] == "DENY"
    message = re.search(r'<p class="error" id="error">(.*?)</p>', response.text, re.S)
    assert message is not None and named in message.group(1)
    # nothing changed
    assert (operations.channels(db), operations.functions(db)) == before
    assert queuejob.operations.load_job(db, job_uuid)["state"] == "pending"


def test_good_form_values_still_act(db, client):
    token = _token(client)
    response = client.post("/channels/set", data={
        "name": "root.web", "capacity": "3", "throttle": "1.5", "removal_interval": "7",
        "csrf_token": token}, headers={"Origin": ORIGIN}, follow_redirects=False)
    assert response.status_code == 303
    [entry] = [entry for entry in operations.channels(db) if entry["name"] == "root.web"]
    assert (entry["capacity"], entry["throttle"], entry["removal_interval"]) == (3, 1.5, 7.0)
    # a form without the removal interval keeps it
    client.post("/channels/set", data={"name": "root.web", "capacity": "", "csrf_token": token},
                headers={"Origin": ORIGIN}, follow_redirects=False)
    [entry] = [entry for entry in operations.channels(db) if entry["name"] == "root.web"]
    assert (entry["capacity"], entry["removal_interval"]) == (None, 7.0)
    response = client.post("/functions/set", data={
        "name": "tests.web.webjobs.echo", "retry_pattern": '{"1": 5, "3": 60}',
        "csrf_token": token}, headers={"Origin": ORIGIN}, follow_redirects=False)
    assert response.status_code == 303
    [echo] = [row for row in operations.functions(db)
              if row["name"] == "tests.web.webjobs.echo"]
    assert echo["retry_pattern"] == {1: 5.0, 3: 60.0}


# -- headers on every answer -----------------------------------------------------------------
def test_an_unexpected_error_is_a_plain_500_with_the_headers_and_a_logged_traceback(
        db, client, monkeypatch, caplog):
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(operations, "channels", broken)
    with caplog.at_level(logging.ERROR, logger="queuejob.web"):
        response = client.get("/channels")
    assert response.status_code == 500
    assert response.text == "Internal Server Error"
    for name, value in security.SECURITY_HEADERS.items():
        assert response.headers[name] == value
    [record] = [record for record in caplog.records if record.name == "queuejob.web"]
    assert "GET /channels" in record.getMessage()
    assert record.exc_info is not None and "the database went away" in str(record.exc_info[1])
    # the other pages are unaffected, error pages carry the headers too
    for path, status in (("/jobs", 200), ("/no/such/page", 404), ("/jobs?user=x", 400),
                         ("/channels/set", 405)):
        answer = client.get(path)
        assert answer.status_code == status, path
        assert answer.headers["content-security-policy"] == security.CONTENT_SECURITY_POLICY


# -- related actions ------------------------------------------------------------------------------
NOT_LINKS = ["/\\evil.example", "/\\\\evil.example", "\\/evil.example", "\\\\evil.example",
             "//evil.example", "/\t/evil.example", "/\n/evil.example", " /\\evil.example",
             "https://good.example\\@evil.example", "http://", "http://:80/x",
             "http://[::1", "javascript:alert(1)", "JaVaScRiPt:alert(1)", "data:text/html,x",
             "evil.example", "ftp://evil.example/", "/ok\x00"]
LINKS = ["https://erp.example.com/partner/5", "HTTP://erp.example.com", "/jobs?state=failed",
         " /channels ", "/a/b#c"]


@pytest.mark.parametrize("url", NOT_LINKS)
def test_related_urls_to_other_hosts_are_text(url):
    assert views.related_link(url) is None


@pytest.mark.parametrize("url", LINKS)
def test_related_urls_of_this_site_or_http_are_links(url):
    assert views.related_link(url) == url.strip()


@pytest.mark.parametrize("url", ["/\\evil.example", "/\\\\evil.example", "\\/evil.example",
                                 "https://erp.example.com/x"])
def test_the_job_page_links_only_safe_related_urls(db, client, url):
    with db.session() as session:
        job_uuid = linked.delay(session, None, url)
    response = client.get(f"/jobs/{job_uuid}")
    assert response.status_code == 200
    link = re.search(r'<a href="([^"]*)" rel="noopener noreferrer" id="related-link">',
                     response.text)
    if url.startswith("https://"):
        assert link is not None and html.unescape(link.group(1)) == url
    else:
        assert link is None
        assert str(escape(url)) in response.text


# -- credentials from a file --------------------------------------------------------------------
def test_auth_file_gives_the_credentials(tmp_path, monkeypatch):
    served: dict[str, Any] = {}

    def fake_serve(db: Any, **options: Any) -> None:
        served.update(options)

    monkeypatch.setattr("queuejob.web.serve", fake_serve)
    monkeypatch.delenv(security.ENV_AUTH, raising=False)
    url = f"sqlite:///{tmp_path}/jobs.db"
    queuejob.open(url).close()
    secret = tmp_path / "auth"
    secret.write_text("admin:s3cret: pass\nignored second line\n")
    result = CliRunner().invoke(cli, ["web", "--db", url, "--host", "0.0.0.0",
                                      "--auth-file", str(secret)])
    assert result.exit_code == 0, result.output
    assert served["credentials"] == security.Credentials("admin", "s3cret: pass")
    assert "--auth-file" in CliRunner().invoke(cli, ["web", "--help"]).output
    assert "ps" in " ".join(CliRunner().invoke(cli, ["web", "--help"]).output.split())


@pytest.mark.parametrize("content", [None, "", "admin\n", ":pw\n", "admin:\n", b"\xff:\xfe\n",
                                     "dir"])
def test_a_bad_auth_file_is_a_one_line_error(tmp_path, monkeypatch, content):
    monkeypatch.setattr("queuejob.web.serve", lambda *args, **kwargs: pytest.fail("served"))
    path = tmp_path / "auth"
    if content == "dir":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    result = CliRunner().invoke(cli, ["web", "--db", f"sqlite:///{tmp_path}/jobs.db",
                                      "--auth-file", str(path)])
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("queuejob: error:"), result.output
    assert "auth" in lines[0] or "credentials" in lines[0]
    assert not (tmp_path / "jobs.db").exists()  # refused before the database is opened


def test_auth_and_auth_file_together_are_refused(tmp_path):
    path = tmp_path / "auth"
    path.write_text("admin:pw\n")
    result = CliRunner().invoke(cli, ["web", "--db", f"sqlite:///{tmp_path}/jobs.db",
                                      "--auth", "a:b", "--auth-file", str(path)])
    assert result.exit_code != 0 and "not both" in result.output


# -- slow clients -------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(port: int, path: str, headers: dict[str, str] | None = None) -> int | None:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request("GET", path, headers=headers or {})
            return conn.getresponse().status
        finally:
            conn.close()
    except OSError:
        return None


def _closed_within(sock: socket.socket, timeout: float) -> float:
    """Seconds until the server closes ``sock`` (fails after ``timeout``)."""
    started = time.monotonic()
    sock.settimeout(timeout)
    while True:
        try:
            data = sock.recv(65536)
        except TimeoutError:
            raise AssertionError(f"the connection is still open after {timeout} s") from None
        except ConnectionResetError:
            return time.monotonic() - started
        if not data:
            return time.monotonic() - started


def test_a_connection_that_never_finishes_its_head_is_closed(db_url, tmp_path):
    from queuejob.web.server import HEAD_TIMEOUT
    queuejob.open(db_url).close()  # migrated before the dashboard reads it
    port = _free_port()
    secret = tmp_path / "auth"
    secret.write_text("admin:pw\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop(security.ENV_AUTH, None)
    log = (tmp_path / "web.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "queuejob", "web", "--db", db_url, "--port", str(port),
         "--auth-file", str(secret), "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
    try:
        wait_until(lambda: _get(port, "/healthz") == 200 or process.poll() is not None,
                   timeout=30, message="queuejob web to answer")
        assert process.poll() is None, (tmp_path / "web.log").read_text()
        # the credentials come from the file
        assert _get(port, "/") == 401
        token = security.base64.b64encode(b"admin:pw").decode()
        assert _get(port, "/", {"Authorization": f"Basic {token}"}) == 200
        # half a request line, and a complete request followed by half of the next
        slow = socket.create_connection(("127.0.0.1", port))
        slow.sendall(b"GET /healthz HT")
        kept = socket.create_connection(("127.0.0.1", port))
        kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        kept.settimeout(10)
        assert kept.recv(65536).startswith(b"HTTP/1.1 200")
        kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: 1")
        try:
            waited = _closed_within(slow, HEAD_TIMEOUT + 15)
            assert waited >= HEAD_TIMEOUT * 0.5
            _closed_within(kept, HEAD_TIMEOUT + 15)
        finally:
            slow.close()
            kept.close()
        # the server still serves
        assert _get(port, "/healthz") == 200
    finally:
        stop_process(process)
        log.close()


# -- any stored row ------------------------------------------------------------------------------
_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
_PG_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",),
                                          blacklist_characters="\x00"), max_size=40)
_HUGE = st.sampled_from(["x" * 100_000, "\x1b[2J" * 20_000, "é\u202e" * 50_000])
TEXT_COLUMNS = ("state", "func_name", "model_name", "args", "kwargs", "description",
                "channel", "identity_key", "context", "result", "exc_info", "worker_id")
PG_INDEXED = {"channel", "state", "worker_id", "identity_key", "func_name"}
NOT_NULL = {"state", "func_name", "args", "kwargs", "channel", "priority", "max_retries",
            "retry", "attempt", "worker_deaths", "date_created", "has_dependents"}
OTHER_COLUMNS = ("priority", "max_retries", "retry", "attempt", "worker_deaths", "user_id",
                 "eta", "date_created", "date_enqueued", "date_started", "date_done",
                 "date_failed", "timeout", "graph_uuid", "has_dependents")


def _sqlite_value(column: str) -> st.SearchStrategy[Any]:
    """Anything SQLite stores: text, text that is not UTF-8, BLOBs, numbers, NULL."""
    choices = [_TEXT, _HUGE, st.binary(max_size=40).map(lambda data: ("utf8", data)),
               st.binary(max_size=40), st.integers(-(2**63), 2**63 - 1),
               st.floats(allow_nan=False), st.sampled_from(["pending", "failed", "started",
                                                            "done", "w1", "root.x"])]
    if column not in NOT_NULL:
        choices.append(st.none())
    return st.one_of(*choices)


@st.composite
def _row_values(draw: st.DrawFn, dialect: str) -> dict[str, Any]:
    if dialect == "sqlite":
        columns = draw(st.sets(st.sampled_from(TEXT_COLUMNS + OTHER_COLUMNS), max_size=8))
        return {column: draw(_sqlite_value(column)) for column in sorted(columns)}
    columns = draw(st.sets(st.sampled_from(TEXT_COLUMNS), max_size=6))
    values = {}
    for column in sorted(columns):
        # PostgreSQL indexes channel, state, worker_id and identity_key: a value of more
        # than about 2,700 bytes cannot be stored there
        huge = [_HUGE] if column not in PG_INDEXED else []
        values[column] = draw(st.one_of(_PG_TEXT, *huge, st.sampled_from(
            ["pending", "failed", "started", "w1", "root.x", "[]", "{}"])))
    return values


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_stored_row_leaves_every_page_answering(db, client, data):
    db.run(lambda conn: db.store.register_worker(conn, "w1", "host", 1, "root:1"))
    values = data.draw(_row_values(db.dialect), label="values")
    job_uuid = _pending(db)
    try:
        for column, value in values.items():
            if isinstance(value, tuple):  # bytes stored as text that is not UTF-8
                sql(db, f"UPDATE queue_job SET {column} = CAST(? AS TEXT) WHERE uuid = ?",
                    (value[1], job_uuid))
            else:
                sql(db, f"UPDATE queue_job SET {column} = ? WHERE uuid = ?",
                    (value, job_uuid))
        bodies = _assert_pages(client, job_uuid)
        assert f'data-uuid="{job_uuid}"' in bodies["/jobs?all=1&limit=500"]
        assert job_uuid in bodies[f"/jobs/{job_uuid}"]
        for path, body in bodies.items():
            assert len(body) < 2_000_000, path
    finally:
        sql(db, "DELETE FROM queue_job WHERE uuid = ?", (job_uuid,))


def test_following_page_links_over_rows_of_any_type(db, client):
    """Page cursors made of whatever a row stores are followed, or refused (400), never
    a 500; the rows of good types are all reached."""
    uuids = [_pending(db, priority=index, eta=index * 60) for index in range(6)]
    if db.dialect == "sqlite":
        _set(db, uuids[1], "eta", b"\xff")
        _blob(db, uuids[2], "priority", b"\x00")
        sql(db, "UPDATE queue_job SET priority = 2.5, eta = 1e300 WHERE uuid = ?",
            (uuids[3],))
    for sort in ("eta", "-eta", "priority", "-priority", "created"):
        seen: set[str] = set()
        path = f"/jobs?limit=1&sort={sort}"
        for _ in range(10):
            response = client.get(path)
            assert response.status_code in (200, 400), (sort, path)
            if response.status_code == 400:
                assert "cursor" in response.text
                break
            seen.update(re.findall(r'data-uuid="([^"]+)"', response.text))
            link = re.search(r'id="page-next" href="\?([^"]+)"', response.text)
            if link is None:
                break
            path = "/jobs?" + html.unescape(link.group(1))
        if db.dialect == "postgresql":
            assert seen == set(uuids), sort
