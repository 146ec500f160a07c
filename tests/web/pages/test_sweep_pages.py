"""Sweeps, series and alerts pages on sweep rows written straight into SQLite
(``synthetic.sweep``: 10 nights, two series on two classes, the first series 40 % slower
from night 8 after an iOS upgrade, one untriaged alert)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from orchestrator.settings import load_settings
from orchestrator.store import models as db
from orchestrator.store.engine import make_engine, session_factory
from orchestrator.store.migrate import upgrade
from orchestrator.web import tokens
from orchestrator.web.app import create_app
from tests.web.pages import synthetic

SIM_BADGE = '<span class="badge sim"'


@pytest.fixture
def farm(tmp_path: Path) -> Iterator[tuple[TestClient, object, synthetic.SweepRows]]:
    url = f"sqlite:///{tmp_path / 'anefarm.db'}"
    upgrade(url)
    engine = make_engine(url)
    sessions = session_factory(engine)
    with sessions() as session:
        rows = synthetic.sweep(session)
        session.expunge_all()
    settings = load_settings(home=tmp_path, database_url=url, open_reads=True)
    with TestClient(create_app(settings, sessions=sessions, bound_host="127.0.0.1")) as client:
        yield client, sessions, rows
    engine.dispose()


def test_the_overview_and_sweeps_list_show_the_last_night(farm):
    client, _, rows = farm
    for path in ("/", "/sweeps"):
        html = client.get(path).text
        table = re.search(r'<table id="sweeps">(.*?)</table>', html, re.S)
        assert table and 'href="/sweeps/nightly"' in table.group(1), path
        assert f'href="/jobs/{rows.nights[-1]}"' in table.group(1)  # the newest night
        assert SIM_BADGE in table.group(1)
    overview = client.get("/").text
    assert "iOS 18.2 (22C152sim): conv 40 % slower" in overview  # the untriaged alert


def test_the_sweep_grid_colours_each_night_by_its_worst_check(farm):
    client, _, rows = farm
    html = client.get("/sweeps/nightly").text
    grid = re.search(r'<table class="matrix" id="grid">(.*?)</table>', html, re.S)
    assert grid
    lines = re.findall(r"<tr><th class=\"model\">(.*?)</tr>", grid.group(1), re.S)
    assert len(lines) == 4  # 2 series × 2 classes
    conv = [line for line in lines if ">conv<" in line]
    for line in conv:
        statuses = re.findall(r'<td class="cell (v-[a-z-]+)"', line)
        assert statuses == ["v-same"] * 7 + ["v-none"] * 3  # REGRESSION from night 8
    lstm = [line for line in lines if ">lstm<" in line]
    assert all("REGRESSION" not in line for line in lstm)
    assert f"/compare?a={rows.nights[-2]}&amp;b={rows.nights[-1]}" in html
    night = client.get(f"/jobs/{rows.nights[-1]}").text
    assert 'a night of sweep <a href="/sweeps/nightly">nightly</a>' in night


def test_a_series_page_draws_its_medians_band_and_what_changed(farm):
    client, _, _ = farm
    html = client.get("/series/nightly/conv/iPhone11,8?units=all").text
    chart = re.search(r'<div id="series-chart">(.*?)</div>', html, re.S)
    assert chart
    svg = chart.group(1)
    assert svg.count('class="point ') == 10
    assert svg.count('class="point regression"') == 3
    assert 'class="band"' in svg
    assert "OS build 22B83sim → 22C152sim" in svg  # the change marker, on night 8
    assert 'class="marker alert"' in svg
    assert SIM_BADGE in html
    timeline = re.search(r'<table class="matrix" id="timeline">(.*?)</table>', html, re.S)
    assert timeline and timeline.group(1).count("PARTIAL") == 3
    assert "p50 1.46 ms vs 1.00 ms" in html  # the check's own words, per night
    run = re.search(r'<td><a href="/runs/([0-9a-f-]+)">2026-01-10</a>', html)
    assert run
    evidence = client.get(f"/runs/{run.group(1)}").text
    assert 'series <a href="/series/nightly/conv/iPhone11,8?units=all">conv</a>' in evidence
    assert client.get("/series/nightly/nope/iPhone11,8").status_code == 404
    assert client.get("/series/nightly/conv/iPhone11,8?units=bogus").status_code == 400


def test_alerts_are_listed_with_the_clis_actions_and_a_triage_needs_a_submit_token(farm):
    client, sessions, rows = farm
    html = client.get("/alerts").text
    section = re.search(
        rf'<section class="card alert" id="alert-{rows.alert_id}"[^>]*>(.*?)</section>', html, re.S
    )
    assert section
    buttons = re.findall(r'name="action" value="(\w+)"', section.group(1))
    assert buttons == ["ack", "fix", "wontfix", "invalid", "infra", "accept"]
    assert SIM_BADGE in section.group(1) and 'id="sign-in"' in html
    assert re.findall(r'<h2 class="kind">(\w+)', html) == ["regression"]  # grouped by kind
    form = {"action": "ack", "note": "looking"}
    assert client.post(f"/alerts/{rows.alert_id}/triage", data=form).status_code == 401
    reader = tokens.create(sessions, name="r", role=tokens.Role.READ)
    denied = client.post(f"/alerts/{rows.alert_id}/triage", data=form,
                         headers={"Authorization": f"Bearer {reader}"})  # fmt: skip
    assert denied.status_code == 403
    writer = tokens.create(sessions, name="triager", role=tokens.Role.SUBMIT)
    moved = client.post(f"/alerts/{rows.alert_id}/triage", data=form, follow_redirects=False,
                        headers={"Authorization": f"Bearer {writer}"})  # fmt: skip
    assert moved.status_code == 303
    with sessions() as session:
        summary = session.get(db.AlertSummary, rows.alert_id)
        assert summary.status == db.AlertStatus.ACKNOWLEDGED
        entry = session.scalars(select(db.AlertTriage)).one()
        assert (entry.by, entry.note) == ("triager", "looking")
    after = client.get("/alerts?status=all").text
    assert "triager moved it untriaged → acknowledged: looking" in after
    # An illegal move is refused with the CLI's words: acknowledged cannot go back.
    again = client.post(f"/alerts/{rows.alert_id}/triage", data=form,
                        headers={"Authorization": f"Bearer {writer}"})  # fmt: skip
    assert again.status_code == 400 and "already acknowledged" in again.text
