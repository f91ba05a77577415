"""Packaging that fits the ecosystem: the core install carries what the library, the
worker and the command line need on SQLite; each extra carries the rest, and a feature
whose extra is missing says in one line which extra to install."""

from __future__ import annotations

import subprocess
import sys
import tomllib

from tests.helpers import ROOT

WEB = ("starlette", "jinja2", "uvicorn", "prometheus_client", "multipart")
POSTGRES = ("psycopg", "psycopg_pool")
DJANGO = ("django", "django_tasks")


def without(modules: tuple[str, ...], code: str, tmp_path) -> subprocess.CompletedProcess:
    """Run ``code`` in a Python where ``modules`` cannot be imported (as when their extra
    is not installed)."""
    prelude = "import sys\n" + "".join(f"sys.modules[{name!r}] = None\n" for name in modules)
    return subprocess.run([sys.executable, "-c", prelude + code], cwd=ROOT, text=True,
                          capture_output=True, timeout=120, check=False,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin",
                               "HOME": str(tmp_path)})


def test_the_core_install_needs_no_web_server_nor_database_driver():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {requirement.split(">")[0].split("[")[0].split("=")[0].strip().lower()
            for requirement in project["dependencies"]}
    assert core == {"click", "rich", "croniter"}
    extras = project["optional-dependencies"]
    assert {"postgres", "web", "django"} <= set(extras)
    assert any(req.startswith("psycopg") for req in extras["postgres"])
    assert any(req.startswith("starlette") for req in extras["web"])


def test_an_application_runs_jobs_on_sqlite_with_the_core_install_alone(tmp_path):
    code = f"""
import queuejob
from tests import jobs
db = queuejob.open("sqlite:///{tmp_path}/jobs.db")
with db.session() as session:
    uuid = jobs.add.delay(session, "m", 2, 3)
queuejob.Worker(db, channels="root:2", modules=["tests.jobs"]).run(burst=True)
print(db.wait(uuid, timeout=10).result)
"""
    done = without(WEB + POSTGRES + DJANGO, code, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "5"


def test_the_demo_and_the_worker_command_run_with_the_core_install_alone(tmp_path):
    code = f"""
from queuejob.cli import main
import sys
sys.argv = ["queuejob", "demo", "--jobs", "20", "--workers", "1",
            "--db", "sqlite:///{tmp_path}/demo.db"]
main()
"""
    done = without(WEB + POSTGRES + DJANGO, code, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "jobs finished" in done.stdout


def run_cli_without(modules: tuple[str, ...], tmp_path, *args: str) -> str:
    code = f"from queuejob.cli import main\nimport sys\nsys.argv = ['queuejob', *{args!r}]\nmain()"
    done = without(modules, code, tmp_path)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    return lines[0]


def test_a_command_whose_extra_is_missing_says_which_to_install(tmp_path):
    url = f"sqlite:///{tmp_path}/jobs.db"
    assert run_cli_without(WEB, tmp_path, "web", "--db", url).endswith(
        "pip install 'queuejob[web]'")
    assert run_cli_without(WEB, tmp_path, "metrics", "--db", url).endswith(
        "pip install 'queuejob[web]'")
    for args in (["stats", "--db", "postgresql://u@127.0.0.1:1/x"],
                 ["worker", "--db", "postgresql://u@127.0.0.1:1/x", "--module", "tests.jobs"]):
        line = run_cli_without(POSTGRES, tmp_path, *args)
        assert line == ("queuejob: error: PostgreSQL needs the package 'psycopg': "
                        "pip install 'queuejob[postgres]'"), line


def test_the_library_says_which_extra_a_url_or_an_integration_needs(tmp_path):
    code = """
import queuejob
try:
    queuejob.open("postgresql://u@127.0.0.1:1/x")
except queuejob.ConfigurationError as exc:
    print(exc)
try:
    import queuejob.contrib.django
except ImportError as exc:
    print(exc)
"""
    done = without(POSTGRES + DJANGO, code, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "PostgreSQL needs the package 'psycopg': pip install 'queuejob[postgres]'",
        "queuejob.contrib.django needs the package 'django': pip install 'queuejob[django]'"]
