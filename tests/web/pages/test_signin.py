"""A browser without a token: page requests get an HTML sign-in page (401) or error page
(404) instead of the API's JSON, ``/signin`` is open, and signing in through the form
lets the pages in (``signin.install`` on the real app; the API keeps its JSON errors)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from orchestrator.settings import load_settings
from orchestrator.store.engine import make_engine, session_factory
from orchestrator.store.migrate import upgrade
from orchestrator.web import tokens
from orchestrator.web.app import create_app
from orchestrator.web.pages import signin

HTML = {"Accept": "text/html,application/xhtml+xml"}


@pytest.fixture
def closed(tmp_path: Path) -> Iterator[tuple[TestClient, object]]:
    url = f"sqlite:///{tmp_path / 'anefarm.db'}"
    upgrade(url)
    engine = make_engine(url)
    sessions = session_factory(engine)
    app = create_app(load_settings(home=tmp_path, database_url=url), sessions=sessions,
                     bound_host="0.0.0.0")  # fmt: skip
    signin.install(app)  # create_app has done it: a second call changes nothing
    with TestClient(app) as client:
        yield client, sessions
    engine.dispose()


def test_a_page_without_a_token_offers_the_sign_in_form(closed):
    client, _ = closed
    page = client.get("/jobs?x=1", headers=HTML)
    assert page.status_code == 401 and "text/html" in page.headers["content-type"]
    assert 'id="sign-in"' in page.text and 'name="next" value="/jobs?x=1"' in page.text
    # A script (or the API) still gets JSON.
    assert client.get("/jobs").json()["error"]["kind"] == "unauthorized"
    assert client.get("/api/v1/jobs", headers=HTML).json()["error"]["kind"] == "unauthorized"
    assert client.get("/signin?next=//evil.example/", headers=HTML).status_code == 200
    assert 'name="next" value="/"' in client.get("/signin?next=//evil.example/").text


def test_signing_in_through_the_form_opens_the_pages(closed):
    client, sessions = closed
    token = tokens.create(sessions, name="viewer", role=tokens.Role.READ)
    signed = client.post("/api/v1/session", data={"token": token, "next": "/jobs"},
                         follow_redirects=False)  # fmt: skip
    assert signed.status_code == 303 and signed.headers["location"] == "/jobs"
    assert client.get("/jobs", headers=HTML).status_code == 200  # the cookie
    missing = client.get("/runs/00000000-0000-0000-0000-000000000000", headers=HTML)
    assert missing.status_code == 404 and 'id="error"' in missing.text
