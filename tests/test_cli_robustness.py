"""The command line against hostile data: what a stored row holds and what a person types.

Stored data never breaks a command and never acts on the terminal: control characters
(OSC 52 that writes the clipboard, OSC 8 links, cursor moves), rich markup and lone
surrogates are printed as visible escapes, ``--json`` stays ASCII and valid. Commands
that only read never create nor migrate a queue: on a missing file, another
application's database, or a queue of an older or a newer schema they say so in one
line and change nothing. Bad values are stored with raw SQL on the test's own
connection; every database test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

import queuejob
from queuejob import chain
from queuejob.backends import base
from queuejob.cli import output
from queuejob.cli.app import cli
from queuejob.core.errors import ConfigurationError
from queuejob.core.text import printable
from queuejob.database import Database
from tests import jobs
from tests.helpers import row, run_burst
from tests.test_cli import (
    ENV_DB,
    FAR,
    UNKNOWN_UUID,
    delay,
    field,
    line_of,
    one_line_error,
    run_cli,
)

#: what a terminal acts on: C0 controls but newline, DEL, C1 controls, the bidirectional
#: overrides, and lone surrogates (which no terminal encoding can even write)
UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
OSC52 = "\x1b]52;c;aGVsbG8=\x07"
OSC8 = "\x1b]8;;https://evil.example/\x1b\\click here\x1b]8;;\x1b\\"
CURSOR = "\x1b[1A\x1b[2K"


def assert_terminal_safe(text: str, where: Any = "") -> None:
    found = sorted({f"U+{ord(char):04X}" for char in UNSAFE.findall(text)})
    assert not found, f"{where}: {found} written to the terminal:\n{text!r}"


# -- raw SQL on the test's own connection ----------------------------------------------------
def sql(db: Database, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """``statement`` with ``?`` placeholders, in a transaction of its own; its rows."""
    if db.dialect == "postgresql":
        statement = statement.replace("?", "%s")

    def run(conn: Any) -> list[tuple[Any, ...]]:
        cursor = db.connector.execute_sql(conn, statement, params)
        return [tuple(item) for item in cursor.fetchall()] if cursor.description else []
    return db.run(run)


def as_stored(db: Database, text: str | None) -> Any:
    """``text`` as a parameter of ``CAST(? AS TEXT)``: on SQLite its UTF-8 bytes, lone
    surrogates included (what a file written by another program may hold)."""
    if text is None or db.dialect != "sqlite":
        return text
    return text.encode("utf-8", "surrogatepass")


def store_job_texts(db: Database, job_uuid: str, **columns: str | None) -> None:
    assignments = ", ".join(f"{name} = CAST(? AS TEXT)" for name in columns)
    sql(db, f"UPDATE queue_job SET {assignments} WHERE uuid = ?",
        (*(as_stored(db, value) for value in columns.values()), job_uuid))


def now_sql(db: Database) -> str:
    return "now()" if db.dialect == "postgresql" else "CAST(strftime('%s', 'now') AS REAL)"


def add_worker(db: Database, worker_id: str, *, state: str, hostname: str = "host",
               pid: Any = 4242, channels: str = "root:1") -> None:
    now = now_sql(db)
    sql(db, "INSERT INTO queue_worker (id, hostname, pid, channels, state, date_started, "
            f"heartbeat) VALUES (?, ?, ?, ?, ?, {now}, {now})",
        (worker_id, hostname, pid, channels, state))


def applied_versions(db: Database) -> list[int]:
    return [version for (version,) in sql(
        db, "SELECT version FROM queuejob_migration ORDER BY version")]


@pytest.fixture
def env(job_env: dict[str, str]) -> dict[str, str]:
    """Subprocess environment without a database URL of the caller's (as test_cli's)."""
    return {key: value for key, value in job_env.items() if key != ENV_DB}


@pytest.fixture
def plain_console(monkeypatch):
    """Output in the test process through a console that never styles: every escape
    character in what is printed came from the data."""
    monkeypatch.setattr(output, "console", Console(highlight=False, width=250,
                                                   color_system=None))


@pytest.fixture
def invoke(monkeypatch, plain_console):
    """A command run in-process (as test_cli's), on the plain console; asserts its exit
    code and returns click's Result."""
    monkeypatch.delenv(ENV_DB, raising=False)
    runner = CliRunner()

    def run(*args: str, exit_code: int = 0) -> Result:
        result = runner.invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == exit_code, (
            f"exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}")
        return result
    return run


# -- 1. control characters in job data --------------------------------------------------------
def test_control_sequences_in_a_job_are_shown_escaped(db, db_url, invoke):
    uuid = delay(db, jobs.fail, "boom")
    run_burst(db)
    exc_info = ("Traceback (most recent call last):\n  File \"jobs.py\", line 1\n"
                f"{CURSOR}all good, nothing failed\nValueError: boom")
    store_job_texts(db, uuid, description=f"{OSC52}copy me", result=f"see {OSC8}",
                    exc_info=exc_info, channel="root.\x1b[31mred",
                    func_name="tests.jobs.fail\x07", model_name="res.partner\r\x1b[Kspoof",
                    identity_key="key\x9b2J")
    listing = invoke("jobs", "--db", db_url, "--all").output
    shown = invoke("jobs", "--db", db_url, uuid).output
    stats = invoke("stats", "--db", db_url).output
    for name, text in (("jobs", listing), ("jobs UUID", shown), ("stats", stats)):
        assert_terminal_safe(text, name)
    line = line_of(listing, uuid)
    assert "\\x1b]52;c;aGVsbG8=\\x07copy me" in line
    assert "root.\\x1b[31mred" in line and "tests.jobs.fail\\x07" in line
    assert field(shown, "description") == "\\x1b]52;c;aGVsbG8=\\x07copy me"
    assert field(shown, "result") == printable(f"see {OSC8}", one_line=True)
    assert field(shown, "result").startswith("see \\x1b]8;;https://evil.example/\\x1b\\")
    assert field(shown, "model_name") == "res.partner\\x0d\\x1b[Kspoof"
    assert field(shown, "identity_key") == "key\\x9b2J"
    assert field(shown, "channel") == "root.\\x1b[31mred"
    # the traceback keeps its lines; the cursor movement is shown, not made
    lines = shown.splitlines()
    assert "Traceback (most recent call last):" in lines
    assert "\\x1b[1A\\x1b[2Kall good, nothing failed" in lines
    assert lines[-1] == "ValueError: boom"
    assert line_of(stats, "root.\\x1b[31mred").split() == \
        ["root.\\x1b[31mred", "0", "0", "0", "0", "0", "1", "0"]


def test_rich_markup_in_a_job_is_shown_as_text(db, db_url, invoke):
    uuid = delay(db, jobs.noop, eta=FAR)
    markup = "[bold]not bold[/] [link=https://evil.example]x[/link] [/] :warning:"
    store_job_texts(db, uuid, description=markup, result="[/]", channel="root.[red]x[/]",
                    func_name="[blink]f")
    listing = invoke("jobs", "--db", db_url).output
    assert markup in line_of(listing, uuid)
    shown = invoke("jobs", "--db", db_url, uuid).output
    assert field(shown, "description") == markup
    assert field(shown, "result") == "[/]"
    assert field(shown, "func_name") == "[blink]f"
    assert "root.[red]x[/]" in invoke("stats", "--db", db_url).output


def test_a_traceback_block_keeps_its_lines_and_tabs_become_spaces(db, db_url, invoke):
    uuid = delay(db, jobs.fail, "boom")
    run_burst(db)
    store_job_texts(db, uuid, exc_info="Traceback:\n\tframe\x07\nError: x\x1b")
    shown = invoke("jobs", "--db", db_url, uuid).output
    assert_terminal_safe(shown)
    lines = shown.splitlines()
    assert lines[-3:] == ["Traceback:", "        frame\\x07", "Error: x\\x1b"]


def test_a_job_graph_tree_shows_stored_names_escaped(db, db_url, invoke):
    with db.session() as session:
        first = jobs.noop.delayable(session, "m", 1)
        second = jobs.noop.delayable(session, "m", 2)
        chain(first, second).delay()
    store_job_texts(db, first.uuid, func_name=f"evil.{OSC52}")
    store_job_texts(db, second.uuid, func_name="[/]second\x1b[5m", state="[/]x")
    shown = invoke("jobs", "--db", db_url, second.uuid).output
    assert_terminal_safe(shown)
    assert "graph " in shown
    assert f"evil.{printable(OSC52)}" in line_of(shown, first.uuid[:8])
    here = line_of(shown, "◀ this job")
    assert "[/]x" in here and "[/]second\\x1b[5m" in here


# PostgreSQL text is valid UTF-8: only SQLite hands back lone surrogates
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_lone_surrogates_from_sqlite_print_escaped(db, db_url, env, invoke):
    uuid = delay(db, jobs.noop, eta=FAR)
    # bytes that are not UTF-8, as another program may write them
    sql(db, "UPDATE queue_job SET description = CAST(? AS TEXT), "
            "func_name = CAST(? AS TEXT), channel = CAST(? AS TEXT) WHERE uuid = ?",
        (b"caf\xe9 \xff", b"mod.\xe9", b"root.\xff", uuid))
    assert row(db, uuid)["description"] == "caf\udce9 \udcff"
    shown = invoke("jobs", "--db", db_url, uuid).output
    assert field(shown, "description") == "caf\\udce9 \\udcff"
    assert field(shown, "func_name") == "mod.\\udce9"
    assert "root.\\udcff" in invoke("stats", "--db", db_url).output
    # as a real process writing to a pipe: exit 0, no UnicodeEncodeError
    for args, shown_as in ((["jobs"], "mod.\\udce9"), (["jobs", uuid], "caf\\udce9 \\udcff"),
                           (["stats"], "root.\\udcff")):
        proc = run_cli(env, *args, "--db", db_url)
        assert proc.returncode == 0, proc.stderr
        assert "Traceback" not in proc.stderr
        assert shown_as in proc.stdout, (args, proc.stdout)
    data = json.loads(invoke("jobs", "--db", db_url, uuid, "--json").output)
    assert data["description"] == "caf\\udce9 \\udcff"
    listed = invoke("jobs", "--db", db_url, "--json").output
    assert listed.isascii()
    assert json.loads(listed)[0]["func_name"] == "mod.\\udce9"
    stats = invoke("stats", "--db", db_url, "--json").output
    assert json.loads(stats) == {"root.\\udcff": {"pending": 1}}


def test_json_output_is_ascii_and_valid_with_control_characters(db, db_url, invoke):
    uuid = delay(db, jobs.noop, eta=FAR)
    description = f"{OSC52}é\u202e\x00" if db.dialect == "sqlite" else f"{OSC52}é\u202e"
    store_job_texts(db, uuid, description=description, channel="root.\x1b[31mred",
                    result=OSC8)
    add_worker(db, "w-json", state="[/]\x1b]52;c;x\x07", hostname=f"h{OSC52}")
    outputs = {args: invoke(*args, "--db", db_url).output for args in (
        ("jobs", "--json"), ("jobs", uuid, "--json"), ("stats", "--json"),
        ("workers", "--json"))}
    for args, text in outputs.items():
        assert text.isascii(), args
        assert "\x1b" not in text, args
    [listed] = json.loads(outputs["jobs", "--json"])
    assert (listed["description"], listed["channel"]) == (description, "root.\x1b[31mred")
    assert json.loads(outputs["jobs", uuid, "--json"])["result"] == OSC8
    assert json.loads(outputs["stats", "--json"]) == {"root.\x1b[31mred": {"pending": 1}}
    [worker] = json.loads(outputs["workers", "--json"])
    assert (worker["state"], worker["hostname"]) == ("[/]\x1b]52;c;x\x07", f"h{OSC52}")


# -- 2. stored worker rows given to rich -------------------------------------------------------
def test_stored_worker_states_are_never_markup(db, db_url, env):
    states = ["[/]x", "[link=https://evil.example]click[/link]", "[bold red]alive",
              f"dead{OSC52}", "[/"]
    for index, state in enumerate(states):
        add_worker(db, f"w{index}", state=state, hostname=f"host[/]{index}\x1b[2J")
    proc = run_cli(env, "workers", "--db", db_url)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert_terminal_safe(proc.stdout, "workers")
    for index, state in enumerate(states):
        line = line_of(proc.stdout, f"host[/]{index}\\x1b[2J")
        assert printable(state, one_line=True) in line, (state, line)


def test_worker_values_of_the_wrong_type_print(db, db_url, env):
    if db.dialect == "sqlite":
        # SQLite keeps what it is given, whatever the column's type
        add_worker(db, "w-text-pid", state="alive", pid="not-a-pid")
        sql(db, "UPDATE queue_worker SET heartbeat = 'soon', channels = NULL")
        # a heartbeat of minus infinity: an infinite age, which JSON cannot write
        add_worker(db, "w-infinite", state="dead")
        sql(db, "UPDATE queue_worker SET heartbeat = -1e999 WHERE id = 'w-infinite'")
    else:
        add_worker(db, "w-text-pid", state="alive", pid=7)
    proc = run_cli(env, "workers", "--db", db_url)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    line = line_of(proc.stdout, "w-text-pid")
    assert ("not-a-pid" if db.dialect == "sqlite" else " 7 ") in line
    listed = run_cli(env, "workers", "--db", db_url, "--json")
    assert listed.returncode == 0, listed.stderr

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")
    by_id = {item["id"]: item for item in json.loads(listed.stdout, parse_constant=refuse)}
    assert "w-text-pid" in by_id
    if db.dialect == "sqlite":
        assert by_id["w-text-pid"]["pid"] == "not-a-pid"
        assert by_id["w-infinite"]["heartbeat_age"] == "inf"
        assert "infs" in line_of(proc.stdout, "w-infinite")


def test_the_workers_table_prints_whatever_a_row_holds(capsys, plain_console):
    output.workers_table([
        {"id": "w1", "state": None, "hostname": None, "pid": "abc", "heartbeat_age": None,
         "running": None, "channels": None, "date_started": "yesterday"},
        {"id": 7, "state": 3, "hostname": b"h\xff", "pid": 1.5, "heartbeat_age": "x",
         "running": "2", "channels": "[/]", "date_started": 12.5},
    ], as_json=False)
    printed = capsys.readouterr().out
    assert_terminal_safe(printed)
    assert line_of(printed, "w1").split() == ["w1", "abc", "yesterday"]
    assert line_of(printed, "h\\udcff").split() == ["7", "3", "h\\udcff", "1.5", "x", "2", "[/]",
                                                     "12.5"]


# -- messages of the action commands -----------------------------------------------------------
def test_refusal_messages_show_stored_states_escaped(db, db_url, env):
    uuid = delay(db, jobs.noop, eta=FAR)
    store_job_texts(db, uuid, state=f"odd{OSC52}")
    message = one_line_error(run_cli(env, "cancel", uuid, "--db", db_url))
    assert "\x1b" not in message and "\x07" not in message
    assert uuid in message and "odd\\x1b]52;c;aGVsbG8=\\x07" in message
    assert row(db, uuid)["state"] == f"odd{OSC52}"


def test_typed_values_are_echoed_escaped(db, db_url, env):
    name = f"tests.jobs.noop{OSC52}"
    # a function name with control characters is refused where it is typed, in one line
    # that shows it escaped, and nothing is stored
    message = one_line_error(run_cli(env, "functions", "set", name, "--channel", "root.a",
                                     "--db", db_url))
    assert_terminal_safe(message)
    assert printable(name, one_line=True)[:40] in message
    listed = run_cli(env, "functions", "--db", db_url)
    assert listed.returncode == 0, listed.stderr
    assert "root.a" not in listed.stdout
    for args in (["jobs", f"{OSC52}not-a-uuid"], ["jobs", "--channel", f"x{OSC52}"],
                 ["jobs", "--state", f"{CURSOR}failed"], ["cancel", f"\x9b{UNKNOWN_UUID}"]):
        message = one_line_error(run_cli(env, *args, "--db", db_url))
        assert_terminal_safe(message, args)


def test_stored_channel_configuration_never_reaches_the_terminal(db, db_url, env):
    sql(db, "INSERT INTO queue_channel (name, capacity, sequential, throttle, paused) "
            "VALUES (?, 2, FALSE, 0, FALSE)", (f"root.{OSC52}",))
    proc = run_cli(env, "channels", "--db", db_url)
    assert "Traceback" not in proc.stderr
    assert_terminal_safe(proc.stdout + proc.stderr)


# -- the property: any stored text --------------------------------------------------------------
TEXT_COLUMNS = ("description", "result", "exc_info", "func_name", "channel", "model_name",
                "identity_key")
HOSTILE = [OSC52, OSC8, CURSOR, "\x1b[2J", "\x1b[31m", "\x9b31m", "\x9d8;;x\x9c", "\x07",
           "\r", "\x08", "\t", "\n", "\x7f", "\x0c", "\u202e", "\u2066", "[/]",
           "[link=https://evil.example]", "[bold red]", ":warning:", "\\", "é", "漢", "\x00"]


def stored_texts(dialect: str) -> st.SearchStrategy[str]:
    """Text a column may hold: hostile sequences, any characters; lone surrogates on
    SQLite (bytes that are not UTF-8); no NUL on PostgreSQL, which refuses it."""
    pieces = [st.sampled_from(HOSTILE), st.text(max_size=10),
              st.text(alphabet=st.characters(max_codepoint=0xA0), max_size=8)]
    if dialect == "sqlite":
        pieces.append(st.integers(0xD800, 0xDFFF).map(chr))
    texts = st.lists(st.one_of(pieces), max_size=6).map("".join)
    if dialect == "postgresql":
        texts = texts.map(lambda text: text.replace("\x00", ""))
    return texts


@pytest.fixture
def victim(db) -> str:
    """One job whose text columns each example overwrites."""
    return delay(db, jobs.noop, eta=FAR)


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_stored_text_prints_without_control_characters(db, db_url, victim, invoke, data):
    values = {column: data.draw(stored_texts(db.dialect), label=column)
              for column in TEXT_COLUMNS}
    state = data.draw(st.sampled_from(["pending", "failed", "done", "cancelled"]),
                      label="state")
    store_job_texts(db, victim, state=state, **values)
    for args in (["jobs", "--all"], ["jobs", victim], ["stats"]):
        # an exception would propagate here (catch_exceptions=False): no traceback
        result = invoke(*args, "--db", db_url)
        assert result.exit_code == 0
        assert_terminal_safe(result.output, args)
        if args[0] == "jobs":
            assert victim in result.output


# -- 3. read-only commands never create nor migrate ----------------------------------------------
READING = [["jobs"], ["jobs", UNKNOWN_UUID], ["jobs", "--json"], ["stats"], ["stats", "--json"],
           ["channels"], ["workers"], ["workers", "--json"], ["functions"], ["metrics"]]
WRITING = [["requeue", UNKNOWN_UUID], ["done", UNKNOWN_UUID], ["cancel", UNKNOWN_UUID],
           ["cancel", "--state", "failed", "--yes"], ["channels", "set", "root.a", "2"],
           ["channels", "delete", "root.a"],
           ["functions", "set", "tests.jobs.noop", "--channel", "root.a"]]
# the dashboard opens the database as the reading commands do (it would serve forever)
SERVING = [["web", "--port", "0"]]


def test_commands_on_a_missing_sqlite_file_create_nothing(env, tmp_path):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    for args in READING + WRITING + SERVING:
        proc = run_cli(env, *args, "--db", "sqlite:///missing.db", cwd=cwd, timeout=60)
        message = one_line_error(proc)
        assert "'missing.db' does not exist" in message, (args, message)
        assert "queuejob migrate" in message, (args, message)
        assert list(cwd.iterdir()) == [], (args, "a file was created")


def app_database(db_url: str) -> None:
    """Another application's database: one table of its own, one row."""
    if db_url.startswith("sqlite"):
        conn = sqlite3.connect(db_url.removeprefix("sqlite:///"))
        conn.execute("CREATE TABLE invoice (id INTEGER PRIMARY KEY, total REAL)")
        conn.execute("INSERT INTO invoice (total) VALUES (12.5)")
        conn.commit()
        conn.close()
        return
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE invoice (id integer PRIMARY KEY, total real)")
        conn.execute("INSERT INTO invoice VALUES (1, 12.5)")


def fingerprint(db_url: str) -> Any:
    """Everything a command could have changed: the file (SQLite), the tables and the
    application's rows (PostgreSQL)."""
    if db_url.startswith("sqlite"):
        path = Path(db_url.removeprefix("sqlite:///"))
        return path.read_bytes(), sorted(item.name for item in path.parent.iterdir())
    with psycopg.connect(db_url, autocommit=True) as conn:
        tables = conn.execute("SELECT table_name FROM information_schema.tables "
                              "WHERE table_schema = 'public' ORDER BY 1").fetchall()
        return tables, conn.execute("SELECT * FROM invoice").fetchall()


def test_commands_on_another_applications_database_change_nothing(db_url, env):
    app_database(db_url)
    before = fingerprint(db_url)
    for args in READING + WRITING + SERVING:
        message = one_line_error(run_cli(env, *args, "--db", db_url, timeout=60))
        assert "holds no queue" in message and "queuejob migrate" in message, (args, message)
        assert fingerprint(db_url) == before, args
    status = Database(db_url, migrate=False)
    try:
        assert status.schema_status().state == base.NO_QUEUE
    finally:
        status.close()
    assert fingerprint(db_url) == before


def test_migrate_creates_the_queue_then_says_it_is_up_to_date(db_url, env):
    unopened = queuejob.open(db_url, migrate=False)
    latest = unopened.connector.latest_version
    unopened.close()
    every = ", ".join(str(version) for version in range(1, latest + 1))
    created = run_cli(env, "migrate", "--db", db_url)
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip() == \
        f"applied migration(s) {every}: the queue is at schema version {latest}"
    again = run_cli(env, "migrate", "--db", db_url)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == f"up to date: the queue is at schema version {latest}"
    stats = run_cli(env, "stats", "--json", "--db", db_url)
    assert (stats.returncode, json.loads(stats.stdout)) == (0, {})
    listed = run_cli(env, "--help").stdout
    assert re.search(r"^  migrate +Create the queue's tables", listed, re.MULTILINE), listed


def test_migrate_adds_the_queue_beside_an_applications_tables(db_url, env):
    app_database(db_url)
    proc = run_cli(env, "migrate", "--db", db_url)
    assert proc.returncode == 0, proc.stderr
    db = queuejob.open(db_url, migrate=False)
    try:
        assert db.schema_status().state == base.CURRENT
        assert sql(db, "SELECT total FROM invoice") == [(12.5,)]
    finally:
        db.close()


def test_the_worker_still_creates_the_queue(db_url, env):
    proc = run_cli(env, "worker", "--db", db_url, "--module", "tests.jobs", "--burst")
    assert proc.returncode == 0, proc.stderr
    db = queuejob.open(db_url, migrate=False)
    try:
        assert db.schema_status().state == base.CURRENT
    finally:
        db.close()


def test_an_older_queue_is_refused_until_migrate_updates_it(db_url, env):
    old = queuejob.open(db_url, migrate=False)
    try:
        # a queue as the previous queuejob left it: every migration but the last
        old.connector.migrations = old.connector.migrations[:-1]
        old.migrate()
        latest = old.connector.latest_version + 1
        assert applied_versions(old) == list(range(1, latest))
    finally:
        old.close()
    db = queuejob.open(db_url, migrate=False)
    try:
        status = db.schema_status()
        assert (status.state, status.version, status.latest) == \
            (base.OLDER, latest - 1, latest)
        for args in READING + WRITING:
            message = one_line_error(run_cli(env, *args, "--db", db_url))
            assert f"schema version {latest - 1}" in message, (args, message)
            assert "queuejob migrate" in message, (args, message)
            assert applied_versions(db) == list(range(1, latest)), args
        proc = run_cli(env, "migrate", "--db", db_url)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith(f"applied migration(s) {latest}:"), proc.stdout
        assert db.schema_status().state == base.CURRENT
        assert run_cli(env, "stats", "--db", db_url).returncode == 0
    finally:
        db.close()


# -- 4. a queue migrated by a newer queuejob ------------------------------------------------------
def test_a_newer_queue_is_refused_by_open_and_every_command(db, db_url, env):
    pending = delay(db, jobs.noop)
    latest = db.connector.latest_version
    now = now_sql(db)
    sql(db, f"INSERT INTO queuejob_migration (version, name, applied_at) "
            f"VALUES (?, 'from_the_future', {now})", (latest + 1,))
    expected = (f"this database was migrated by a newer queuejob (schema version "
                f"{latest + 1}; this one knows up to {latest}): upgrade queuejob")
    with pytest.raises(ConfigurationError) as refused:
        queuejob.open(db_url)
    assert str(refused.value) == expected
    lazy = queuejob.open(db_url, migrate=False)
    try:
        assert lazy.schema_status().state == base.NEWER
        with pytest.raises(ConfigurationError, match="newer queuejob"):
            lazy.migrate()
    finally:
        lazy.close()
    before = (applied_versions(db), row(db, pending)["state"],
              sql(db, "SELECT count(*) FROM queue_worker"))
    for args in [*READING, *WRITING, ["migrate"],
                 ["worker", "--module", "tests.jobs", "--burst", "--wait-for-db", "0"]]:
        message = one_line_error(run_cli(env, *args, "--db", db_url))
        assert message == f"queuejob: error: {expected}", (args, message)
        assert (applied_versions(db), row(db, pending)["state"],
                sql(db, "SELECT count(*) FROM queue_worker")) == before, args


def test_schema_status_reads_without_creating(tmp_path):
    path = tmp_path / "nothing.db"
    db = Database(f"sqlite:///{path}", migrate=False)
    try:
        status = db.schema_status()
        assert (status.state, status.applied, status.version) == (base.NO_DATABASE, (), 0)
        assert not path.exists()
    finally:
        db.close()
    # applications keep queuejob.open: it creates and migrates, as before
    opened = queuejob.open(f"sqlite:///{path}")
    try:
        status = opened.schema_status()
        assert status.state == base.CURRENT
        assert status.applied == tuple(range(1, status.latest + 1))
    finally:
        opened.close()
