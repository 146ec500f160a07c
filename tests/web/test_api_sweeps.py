"""Sweeps over HTTP: the list and one sweep are the JSON of ``anefarm sweep list/show
--json``; a night runs now with a submit token (read: 403), and the same night twice is
409; against a real Redis, SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import anefarm
from tests.sweeps.test_nights import write_sweep
from tests.web.conftest import Web, make_web

A12 = "iPhone11,8"
NIGHT = "2026-11-25T01:00:00+00:00"


@pytest.fixture
def swept(tmp_path: Path, db_url: str, redis_url: str, samples) -> Iterator[Web]:
    for web in make_web(tmp_path, db_url, broker_url=redis_url):
        # A named class with no device live: the night's runs wait for one.
        path = write_sweep(tmp_path / "sweep", samples, devices=f'"{A12}"')
        out = cli(web, "sweep", "add", str(path))
        assert "vision-nightly" in out
        yield web


def cli(web: Web, *args: str) -> str:
    env = {"ANEFARM_DATABASE_URL": web.settings.database_url or "",
           "ANEFARM_BROKER_URL": web.settings.broker_url or ""}  # fmt: skip
    out = anefarm(*args, home=web.home, timeout=120, **env)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_list_and_show_are_the_cli_json(swept: Web):
    client, headers = swept.client(), swept.auth("read")
    listed = client.get("/api/v1/sweeps", headers=headers)
    assert listed.status_code == 200
    assert listed.json() == json.loads(cli(swept, "sweep", "list", "--json"))
    shown = client.get("/api/v1/sweeps/vision-nightly", headers=headers)
    assert shown.json() == json.loads(cli(swept, "sweep", "show", "vision-nightly", "--json"))
    missing = client.get("/api/v1/sweeps/nope", headers=headers)
    assert missing.status_code == 404 and missing.json()["error"]["kind"] == "not_found"


def test_run_now_needs_submit_and_a_night_runs_once(swept: Web):
    client = swept.client()
    url = "/api/v1/sweeps/vision-nightly/run"
    assert client.post(url, params={"at": NIGHT}).status_code == 401
    assert client.post(url, params={"at": NIGHT}, headers=swept.auth("read")).status_code == 403
    submit = swept.auth("submit")
    started = client.post(url, params={"at": NIGHT}, headers=submit)
    assert started.status_code == 201, started.text
    night = started.json()
    assert night["sweep"] == "vision-nightly" and night["scheduled_for"].startswith("2026-11-25")
    # Three series on one class: run, or recorded missing (no device of it is live).
    assert night["runs"] + night["missing"] == 3 and night["trigger"] == "manual"
    shown = client.get("/api/v1/sweeps/vision-nightly", headers=submit).json()
    assert [n["job"] for n in shown["nights"]] == [night["job"]]
    again = client.post(url, params={"at": NIGHT}, headers=submit)
    assert again.status_code == 409
    assert "already has its night" in again.json()["error"]["message"]
    naive = client.post(url, params={"at": "2026-11-26T01:00:00"}, headers=submit)
    assert naive.status_code == 400
