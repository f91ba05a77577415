"""The dashboard's security rules over plain HTTP: credentials on every route but the
health check, POST-only mutations with a CSRF token and an exact same-origin check,
the Content-Security-Policy, the Host check on loopback, and where it may listen."""

from __future__ import annotations

import re
import urllib.parse

import pytest
from click.testing import CliRunner
from starlette.routing import Mount, Route

import queuejob
from queuejob.cli.app import cli
from queuejob.core.errors import ConfigurationError
from queuejob.web import security
from queuejob.web.app import make_templates
from tests.helpers import row
from tests.web import webjobs
from tests.web.conftest import PASSWORD, USER

MUTATIONS = {"/jobs/bulk", "/jobs/{uuid}/{action}", "/channels/set", "/channels/pause",
             "/channels/resume", "/channels/delete", "/functions/set"}


def _pending_job(db) -> str:
    with db.session() as session:
        return webjobs.echo.delay(session, "res.partner", "hello")


def _batch(db) -> str:
    with db.session() as session, queuejob.batch(session, "security") as batch:
        webjobs.echo.delay(session, "res.partner", "hello")
    return batch.uuid


def _concrete(path: str, job_uuid: str) -> str:
    """A URL of the route (the confirmation page needs its action)."""
    url = path.replace("{uuid}", job_uuid).replace("{action}", "cancel")
    return url + "?action=cancel" if path == "/jobs/confirm" else url


def _routes(app) -> list[tuple[str, set[str]]]:
    """Every registered route: (path with its parameters' names, methods)."""
    out = []
    for route in app.routes:
        if isinstance(route, Route):
            out.append((re.sub(r"\{(\w+)(:\w+)?\}", r"{\1}", route.path), set(route.methods)))
        elif isinstance(route, Mount):
            out.append((route.path + "/dashboard.css", {"GET", "HEAD"}))
    return out


def test_every_route_but_the_health_check_needs_credentials(secured_web):
    web = secured_web
    job_uuid, batch_uuid = _pending_job(web.db), _batch(web.db)
    routes = _routes(web.app)
    # the walk covers every page, every action and the static files
    assert {path for path, _ in routes} >= {"/", "/jobs", "/jobs/{uuid}", "/channels",
                                            "/workers", "/functions", "/metrics",
                                            "/healthz", "/static/dashboard.css"} | MUTATIONS
    wrong = {"Authorization": "Basic " + security.base64.b64encode(
        f"{USER}:{PASSWORD}x".encode()).decode()}
    for path, methods in routes:
        url = _concrete(path, batch_uuid if path.startswith("/batches/") else job_uuid)
        method = "POST" if path in MUTATIONS else "GET"
        assert method in methods, path
        body = "" if method == "POST" else None
        if path == "/healthz":
            assert web.request("GET", url, auth=False)[0] == 200
            continue
        status, headers, _ = web.request(method, url, body=body, auth=False)
        assert status == 401, (path, status)
        assert headers["www-authenticate"].startswith("Basic ")
        assert web.request(method, url, body=body, headers=wrong, auth=False)[0] == 401, path
        if method == "GET":
            assert web.request("GET", url)[0] == 200, path
        else:
            # with credentials, a GET on a mutation is 405, and a POST without a token 403
            assert web.request("GET", url)[0] == 405, path
            assert web.request("HEAD", url)[0] == 405, path
            assert web.request("POST", url, body="", headers={
                "Origin": web.url})[0] == 403, path
    assert row(web.db, job_uuid)["state"] == "pending"


def test_gets_on_mutations_are_405_without_credentials_too(web):
    job_uuid = _pending_job(web.db)
    for path in MUTATIONS:
        status, headers, _ = web.request("GET", _concrete(path, job_uuid))
        assert status == 405, path
        assert "POST" in headers["allow"]


def _token(web, path: str = "/channels") -> tuple[str, str]:
    """A page's CSRF cookie and the token of its forms."""
    status, headers, body = web.request("GET", path)
    assert status == 200
    cookie = headers["set-cookie"].split(";")[0]
    assert cookie.startswith(security.CSRF_COOKIE + "=")
    assert "HttpOnly" in headers["set-cookie"]
    assert "SameSite=strict" in headers["set-cookie"]
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', body).group(1)
    return cookie, token


def test_actions_need_a_csrf_token_and_the_same_origin(web):
    job_uuid = _pending_job(web.db)
    cookie, token = _token(web, f"/jobs/{job_uuid}")
    other_cookie, other_token = _token(web)
    path = f"/jobs/{job_uuid}/cancel"
    good = {"Cookie": cookie, "Origin": web.url}
    refused = [
        ({"Cookie": cookie}, f"csrf_token={token}"),  # no Origin nor Referer
        ({**good, "Origin": "http://evil.example"}, f"csrf_token={token}"),
        ({**good, "Origin": web.url + ".evil.example"}, f"csrf_token={token}"),
        ({**good, "Origin": web.url.replace("http:", "https:")}, f"csrf_token={token}"),
        ({**good, "Origin": "null"}, f"csrf_token={token}"),
        ({"Cookie": cookie, "Referer": "http://evil.example/jobs"}, f"csrf_token={token}"),
        (good, ""),  # no token
        (good, "csrf_token=" + "0" * 64),  # a made-up token
        (good, f"csrf_token={other_token}"),  # another browser's token
        ({**good, "Cookie": other_cookie}, f"csrf_token={token}"),
        ({"Origin": web.url}, f"csrf_token={token}"),  # no cookie
    ]
    for headers, body in refused:
        status, _, text = web.request("POST", path, body=body, headers=headers)
        assert status == 403, (headers, body, text)
        assert row(web.db, job_uuid)["state"] == "pending"
    # the Referer stands in for a missing Origin, matched exactly
    status, headers, _ = web.request("POST", path, body=f"csrf_token={token}", headers={
        "Cookie": cookie, "Referer": f"{web.url}/jobs/{job_uuid}"})
    assert status == 303
    assert headers["location"] == f"/jobs/{job_uuid}"
    assert row(web.db, job_uuid)["state"] == "cancelled"


def test_bulk_actions_check_origin_and_token_too(web):
    job_uuid = _pending_job(web.db)
    cookie, token = _token(web)
    form = urllib.parse.urlencode({"action": "cancel", "upto": "1000000", "model": "res.partner"})
    status, _, _ = web.request("POST", "/jobs/bulk", body=f"{form}&csrf_token={token}",
                               headers={"Cookie": cookie, "Origin": "http://evil.example"})
    assert status == 403
    status, _, _ = web.request("POST", "/jobs/bulk", body=form,
                               headers={"Cookie": cookie, "Origin": web.url})
    assert status == 403
    assert row(web.db, job_uuid)["state"] == "pending"
    status, _, _ = web.request("POST", "/jobs/bulk", body=f"{form}&csrf_token={token}",
                               headers={"Cookie": cookie, "Origin": web.url})
    assert status == 303
    assert row(web.db, job_uuid)["state"] == "cancelled"


def test_content_security_policy_and_no_inline_code(web):
    job_uuid = _pending_job(web.db)
    for path in ["/", "/jobs", f"/jobs/{job_uuid}", "/jobs/confirm?action=requeue",
                 "/channels", "/workers", "/functions", "/metrics", "/healthz",
                 "/static/dashboard.js", "/no/such/page"]:
        status, headers, body = web.request("GET", path)
        assert status == (404 if path == "/no/such/page" else 200), path
        policy = headers["content-security-policy"]
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
        directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
        assert directives["default-src"] == "'none'"
        assert directives["script-src"] == "'self'"
        assert directives["style-src"] == "'self'"
        assert directives["frame-ancestors"] == "'none'"
        assert headers["x-content-type-options"] == "nosniff"
        if headers["content-type"].startswith("text/html"):
            # nothing the policy would have to allow inline
            assert not re.search(r"<script(?![^>]*\bsrc=)", body), path
            assert not re.search(r"\sstyle=", body), path
            assert not re.search(r"<style", body), path
            assert not re.search(r"\son[a-z]+=", body), path


def test_templates_autoescape():
    env = make_templates()
    assert env.autoescape is True
    assert env.from_string("{{ value }}").render(value="<b>&") == "&lt;b&gt;&amp;"


def test_loopback_dashboard_answers_to_loopback_names_only(web):
    assert web.request("GET", "/", headers={"Host": f"localhost:{web.server.port}"})[0] == 200
    assert web.request("GET", "/", headers={"Host": f"[::1]:{web.server.port}"})[0] == 200
    # a page of evil.example whose name was rebound to 127.0.0.1 gets nothing
    status, _, body = web.request("GET", "/", headers={"Host": f"evil.example:{web.server.port}"})
    assert status == 400
    assert "loopback" in body


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::", "jobs.example.com"])
def test_refuses_to_listen_beyond_loopback_without_credentials(host, monkeypatch, tmp_path):
    monkeypatch.delenv(security.ENV_AUTH, raising=False)
    with pytest.raises(ConfigurationError, match="without credentials"):
        security.check_bind(host, None)
    result = CliRunner().invoke(cli, ["web", "--db", f"sqlite:///{tmp_path}/jobs.db",
                                      "--host", host])
    assert result.exit_code == 1
    assert "refusing to listen" in result.output
    # refused before the database is opened (or created)
    assert not (tmp_path / "jobs.db").exists()
    # with credentials, from the option or the environment, the address is accepted
    security.check_bind(host, security.credentials_from("admin:pw"))
    monkeypatch.setenv(security.ENV_AUTH, "admin:pw")
    assert security.credentials_from(None) == security.Credentials("admin", "pw")
    security.check_bind(host, security.credentials_from(None))


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_needs_no_credentials(host):
    security.check_bind(host, None)


def test_credentials_parsing_and_check():
    credentials = security.Credentials.parse("admin:pa:ss")
    assert credentials == security.Credentials("admin", "pa:ss")
    for bad in ["admin", ":pw", "admin:", ""]:
        with pytest.raises(ConfigurationError):
            security.Credentials.parse(bad)

    def header(text: str) -> str:
        return "Basic " + security.base64.b64encode(text.encode()).decode()

    assert credentials.check(header("admin:pa:ss"))
    assert credentials.check("basic " + header("admin:pa:ss")[6:])
    for wrong in [header("admin:pa:s"), header("Admin:pa:ss"), header("admin"), "Basic !!",
                  "Bearer abc", None, ""]:
        assert not credentials.check(wrong)


def test_health_check(web):
    status, _, body = web.request("GET", "/healthz")
    assert (status, body) == (200, "ok")
