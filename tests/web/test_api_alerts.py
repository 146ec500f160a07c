"""Alerts over HTTP, on a sweep of 7 quiet nights and one with a slowed class and a model
that stops compiling: the list and one alert are ``anefarm alerts list/show --json``;
triage needs a submit token, is recorded under the token's name, follows the CLI's moves,
and answers an HTML form with a redirect."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.alerts.nightfarm import CLASSES, Point
from tests.alerts.nightfarm import alerted as alerted_sweep
from tests.cli.conftest import anefarm
from tests.web.conftest import Web, make_web

SLOW = CLASSES[1]


@pytest.fixture
def alerted(tmp_path: Path, sqlite_url: str) -> Iterator[Web]:
    for web in make_web(tmp_path, sqlite_url):
        alerted_sweep(web.sessions, web.home, slow_median=20.0)
        yield web


def cli_json(web: Web, *args: str) -> object:
    out = anefarm(
        *args, "--json", home=web.home, ANEFARM_DATABASE_URL=web.settings.database_url or ""
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_list_and_show_are_the_cli_json(alerted: Web):
    client, headers = alerted.client(), alerted.auth("read")
    listed = client.get("/api/v1/alerts", params={"sweep": "nightly"}, headers=headers).json()
    assert listed == cli_json(alerted, "alerts", "list", "--sweep", "nightly")
    assert {a["kind"] for a in listed["alerts"]} == {"regression", "failure"}
    first = listed["alerts"][0]["id"]
    shown = client.get(f"/api/v1/alerts/{first}", headers=headers).json()
    assert shown == cli_json(alerted, "alerts", "show", str(first))
    bogus = client.get("/api/v1/alerts", params={"status": "bogus"}, headers=headers)
    assert bogus.status_code == 400 and "unknown alert status" in bogus.text
    assert client.get("/api/v1/alerts/999", headers=headers).status_code == 404


def test_triage_needs_submit_follows_the_moves_and_names_the_token(alerted: Web):
    client = alerted.client()
    listed = client.get("/api/v1/alerts", headers=alerted.auth("read")).json()["alerts"]
    slowed = next(a for a in listed if a["kind"] == "regression")["id"]
    url = f"/api/v1/alerts/{slowed}/status"
    assert client.post(url, data={"status": "ack"}).status_code == 401
    assert client.post(url, data={"status": "ack"}, headers=alerted.auth("read")).status_code == 403

    token = alerted.token("submit", name="ana")
    headers = {"Authorization": f"Bearer {token}"}
    moved = client.post(url, data={"status": "ack", "note": "looking"}, headers=headers)
    assert moved.status_code == 200, moved.text
    assert moved.json() == {"alert": slowed, "from": "untriaged", "to": "acknowledged",
                            "by": "token:ana"}  # fmt: skip
    again = client.post(url, data={"status": "acknowledged"}, headers=headers)
    assert again.status_code == 400 and "already acknowledged" in again.json()["error"]["message"]
    unknown = client.post(url, data={"status": "maybe"}, headers=headers)
    assert unknown.status_code == 400

    # A form of the dashboard: a redirect back to the page, never to another site.
    form = client.post(url, data={"status": "fix", "next": "/alerts"}, headers=headers,
                       follow_redirects=False)  # fmt: skip
    assert form.status_code == 303 and form.headers["location"] == "/alerts"
    shown = client.get(f"/api/v1/alerts/{slowed}", headers=headers).json()
    assert [(t["from"], t["to"], t["by"], t["note"]) for t in shown["triage"]] == [
        ("untriaged", "acknowledged", "token:ana", "looking"),
        ("acknowledged", "fixed", "token:ana", None),
    ]


def test_a_recovered_alert_is_closed_on_the_page_in_the_api_and_the_cli(web_sqlite: Web):
    """Back to normal after the bad night: each alert closes itself once all its series
    are SAME for 3 nights, and the page, the API and the CLI show it recovered."""
    sweep = alerted_sweep(web_sqlite.sessions, web_sqlite.home, slow_median=20.0)
    recovered: dict[int, str] = {}
    for n in range(9, 17):
        sweep.add_night(lambda s, c: Point())
        for alert in sweep.analyse().recovered:
            recovered[alert] = f"2026-03-{n:02d}"
    client, headers = web_sqlite.client(), web_sqlite.auth("read")
    listed = client.get("/api/v1/alerts", params={"status": "recovered"}, headers=headers).json()
    assert listed == cli_json(web_sqlite, "alerts", "list", "--status", "recovered")
    assert {a["id"]: a["recovered_night"] for a in listed["alerts"]} == recovered
    assert {a["kind"] for a in listed["alerts"]} == {"regression", "failure"}
    assert client.get("/api/v1/alerts", params={"status": "open"}, headers=headers).json() == {
        "alerts": []
    }
    page = client.get("/alerts", params={"status": "recovered"}, headers=headers)
    assert page.status_code == 200
    for alert, night in recovered.items():
        assert f'id="alert-{alert}" data-status="recovered"' in page.text
        assert f"recovered on night {night}" in page.text
    text = anefarm("alerts", "list", "--status", "recovered", home=web_sqlite.home,
                   ANEFARM_DATABASE_URL=web_sqlite.settings.database_url or "")  # fmt: skip
    assert text.returncode == 0 and text.stdout.count(" recovered ") == len(recovered)
