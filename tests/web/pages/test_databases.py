"""Every page on SQLite and on PostgreSQL (the ``db_url`` fixture): the queries the pages
add (grouped counts, the last night of each sweep, a series' nights) must hold on both."""

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
from orchestrator.web.app import create_app
from tests.web.pages import synthetic
from tests.web.pages.test_pages import crawl


@pytest.fixture
def site(tmp_path: Path, db_url: str) -> Iterator[tuple[TestClient, str, str, list[str]]]:
    upgrade(db_url)
    engine = make_engine(db_url)
    sessions = session_factory(engine)
    with sessions() as session:
        job = synthetic.big_job(session, models=3, classes=2)
        night = synthetic.sweep(session, nights=9).nights[-1]
        runs = [str(r) for r in session.scalars(select(db.Run.id).where(db.Run.job_id == job))]
    settings = load_settings(home=tmp_path, database_url=db_url, open_reads=True)
    with TestClient(create_app(settings, sessions=sessions, bound_host="127.0.0.1")) as client:
        yield client, str(job), str(night), runs
    engine.dispose()


def test_every_page_answers_on_both_databases(site):
    client, job, night, runs = site
    pages = ["/", "/jobs", f"/jobs/{job}", f"/jobs/{job}/live", f"/runs/{runs[0]}",
             f"/compare?a={runs[0]}&b={runs[1]}", f"/compare?a={job}&b={night}", "/compat",
             "/devices", "/sweeps", "/sweeps/nightly", "/series/nightly/conv/iPhone16,1",
             "/alerts", "/alerts?status=all"]  # fmt: skip
    for path in pages:
        response = client.get(path)
        assert response.status_code == 200, (path, response.text[:500])
    overview = client.get("/").text
    jobs = re.search(r'<table id="jobs">(.*?)</table>', overview, re.S)
    assert jobs and jobs.group(1).count('<span class="badge sim"') == 10  # newest 10, all SIMULATED
    grid = client.get(f"/jobs/{job}").text
    assert grid.count('<td class="cell') == 6


def test_every_link_of_the_sweep_pages_resolves(site):
    client = site[0]
    seen = crawl(client, "/sweeps")
    assert any(p.startswith("/series/nightly/conv/") for p in seen)
    assert any(p.startswith("/alerts") for p in seen)
    assert len([p for p in seen if p.startswith("/runs/")]) >= 36  # every cell of the grid
