"""API tokens: made, listed and revoked by the CLI, stored only as a hash; 401 (no or
unknown token, with WWW-Authenticate) against 403 (role too low); reads without a token
only on loopback with ANEFARM_OPEN_READS=1; a token never reaches the access log."""

from __future__ import annotations

import hashlib
import re

import httpx
import pytest
from sqlalchemy import select

from orchestrator.settings import load_settings
from orchestrator.store import models as db
from orchestrator.web.deps import COOKIE, is_loopback
from orchestrator.web.server import WebServer
from tests.cli.conftest import anefarm
from tests.web.conftest import Web

READ_ROUTE = "/api/v1/jobs"
TOKEN = re.compile(r"^anefarm_[A-Za-z0-9_-]{40,}$")


def test_cli_creates_a_token_once_lists_it_without_the_secret_and_revokes_it(tmp_path, sqlite_url):
    home = tmp_path / "home"
    env = {"ANEFARM_DATABASE_URL": sqlite_url}
    made = anefarm("tokens", "create", "--role", "submit", "--name", "ci", home=home, **env)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert TOKEN.match(token), made.stdout
    assert token not in made.stderr and "shown once" in made.stderr

    listed = anefarm("tokens", "list", "--json", home=home, **env)
    assert listed.returncode == 0, listed.stderr
    assert token not in listed.stdout
    (row,) = __import__("json").loads(listed.stdout)
    assert (row["name"], row["role"], row["last_used_at"]) == ("ci", "submit", None)

    again = anefarm("tokens", "create", "--role", "read", "--name", "ci", home=home, **env)
    assert again.returncode == 2 and again.stderr.count("\n") == 1, again.stderr
    assert "a token named 'ci' exists already" in again.stderr

    bad_role = anefarm("tokens", "create", "--role", "root", "--name", "x", home=home, **env)
    assert bad_role.returncode == 2 and "unknown role 'root'" in bad_role.stderr

    assert anefarm("tokens", "revoke", "ci", home=home, **env).returncode == 0
    gone = anefarm("tokens", "revoke", "ci", home=home, **env)
    assert gone.returncode == 1 and "no token named 'ci'" in gone.stderr
    assert "Traceback" not in gone.stderr


def test_only_the_hash_is_stored(web: Web):
    token = web.token("read", name="reader")
    with web.sessions() as session:
        row = session.scalars(select(db.ApiToken)).one()
    assert row.token_sha256 == hashlib.sha256(token.encode()).hexdigest()
    assert token not in (row.name, row.token_sha256, str(row.role))


def test_401_without_or_with_an_unknown_token_403_with_a_role_too_low(web: Web):
    client = web.client()
    read, submit = web.auth("read"), web.auth("submit")

    for headers in ({}, {"Authorization": "Bearer anefarm_nope"}, {"Authorization": "Basic x"}):
        answer = client.get(READ_ROUTE, headers=headers)
        assert answer.status_code == 401, (headers, answer.text)
        assert answer.headers["www-authenticate"] == 'Bearer realm="anefarm"'
        assert answer.json()["error"]["kind"] == "unauthorized"

    assert client.get(READ_ROUTE, headers=read).status_code == 200
    assert client.get(READ_ROUTE, headers=submit).status_code == 200  # submit includes read

    # A write: no token 401, a read token 403 (known, but not allowed), submit passes auth.
    cancel = "/api/v1/jobs/00000000-0000-0000-0000-000000000000/cancel"
    assert client.post(cancel).status_code == 401
    forbidden = client.post(cancel, headers=read)
    assert forbidden.status_code == 403, forbidden.text
    assert "www-authenticate" not in forbidden.headers
    assert "has role read; this needs submit" in forbidden.json()["error"]["message"]
    assert client.post(cancel, headers=submit).status_code == 404  # past auth: no such job


def test_a_revoked_token_is_refused(web: Web):
    token = web.token("admin", name="old")
    client = web.client()
    assert client.get(READ_ROUTE, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    from orchestrator.web import tokens

    tokens.revoke(web.sessions, "old")
    assert client.get(READ_ROUTE, headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_use_is_recorded(web_sqlite: Web):
    headers = web_sqlite.auth("read")
    web_sqlite.client().get(READ_ROUTE, headers=headers)
    with web_sqlite.sessions() as session:
        row = session.scalars(select(db.ApiToken)).one()
    assert row.last_used_at is not None


@pytest.mark.parametrize(
    ("bound_host", "open_reads", "expected"),
    [
        ("127.0.0.1", True, 200),
        ("::1", True, 200),
        ("localhost", True, 200),
        ("0.0.0.0", True, 401),  # every interface: not a laptop's own dashboard
        ("192.168.1.20", True, 401),
        (None, True, 401),  # address unknown: not open
        ("127.0.0.1", False, 401),
    ],
)
def test_reads_are_open_only_on_loopback_with_the_setting(
    web_sqlite: Web, bound_host, open_reads, expected
):
    client = web_sqlite.client(bound_host=bound_host, open_reads=open_reads)
    assert client.get(READ_ROUTE).status_code == expected


def test_writes_need_a_token_even_when_reads_are_open(web_sqlite: Web):
    client = web_sqlite.client(bound_host="127.0.0.1", open_reads=True)
    answer = client.post("/api/v1/jobs/00000000-0000-0000-0000-000000000000/cancel")
    assert answer.status_code == 401


def test_the_setting_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("ANEFARM_OPEN_READS", "1")
    assert load_settings().open_reads is True
    assert is_loopback("127.0.0.2") and not is_loopback("example.org")


def test_a_browser_signs_in_with_a_cookie_and_out_again(web_sqlite: Web):
    token = web_sqlite.token("read", name="browser")
    client = web_sqlite.client()
    refused = client.post("/api/v1/session", data={"token": "anefarm_wrong"})
    assert refused.status_code == 401
    answer = client.post(
        "/api/v1/session", data={"token": token, "next": "//evil.example/"}, follow_redirects=False
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/"  # no open redirect
    cookie = answer.headers["set-cookie"]
    assert f"{COOKIE}=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert client.get(READ_ROUTE).status_code == 200  # the client keeps the cookie
    client.delete("/api/v1/session")
    assert client.get(READ_ROUTE).status_code == 401


def test_the_access_log_never_shows_a_token(web_sqlite: Web, capfd):
    token = web_sqlite.token("read", name="logged")
    server = WebServer(web_sqlite.settings, "127.0.0.1", 0, log_requests=True).start()
    try:
        ok = httpx.get(server.url + READ_ROUTE, headers={"Authorization": f"Bearer {token}"})
        bad = httpx.get(server.url + READ_ROUTE, headers={"Authorization": "Bearer anefarm_x1"})
    finally:
        server.stop()
    assert (ok.status_code, bad.status_code) == (200, 401)
    out, err = capfd.readouterr()
    logged = out + err
    assert f'"GET {READ_ROUTE} HTTP/1.1" 200' in logged, logged  # the log is there...
    assert f'"GET {READ_ROUTE} HTTP/1.1" 401' in logged, logged
    assert token not in logged and "anefarm_x1" not in logged  # ...without the tokens
    assert "Bearer" not in logged


def test_an_admin_token_manages_tokens_over_http(web: Web):
    client = web.client()
    admin, submit = web.auth("admin"), web.auth("submit")
    assert client.get("/api/v1/tokens", headers=submit).status_code == 403
    made = client.post("/api/v1/tokens", data={"name": "bot", "role": "read"}, headers=admin)
    assert made.status_code == 201, made.text
    token = made.json()["token"]
    assert TOKEN.match(token) and made.json()["role"] == "read"
    listed = client.get("/api/v1/tokens", headers=admin).json()
    assert "bot" in [t["name"] for t in listed] and token not in str(listed)
    bot = {"Authorization": f"Bearer {token}"}
    assert client.get(READ_ROUTE, headers=bot).status_code == 200
    bad = client.post("/api/v1/tokens", data={"name": "x", "role": "root"}, headers=admin)
    assert bad.status_code == 400
    assert client.delete("/api/v1/tokens/bot", headers=admin).status_code == 204
    assert client.get(READ_ROUTE, headers=bot).status_code == 401
    assert client.delete("/api/v1/tokens/bot", headers=admin).status_code == 404
