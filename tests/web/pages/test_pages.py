"""The dashboard's pages under FastAPI's TestClient, on a real finished simulated job (a
bisected XR on iOS 16 whose first device crashes once, an iPhone 15 Pro with a compute
plan): every page answers, every link resolves, SIMULATED is said wherever simulated data
shows, and each page says what the report says."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape
from sqlalchemy import select

from orchestrator.render.details import model_lines
from orchestrator.report import build_report
from orchestrator.report_rows import Report
from orchestrator.store import models as db
from tests.web.pages.conftest import client_for
from tests.web.pages.simjob import SimulatedJob

SIM_BADGE = '<span class="badge sim"'


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"a": "href", "link": "href", "script": "src", "form": "action"}.get(tag)
        if tag == "form" and (dict(attrs).get("method") or "get").lower() != "get":
            return  # a write: not followed by a crawl
        for name, value in attrs:
            if name == wanted and value:
                self.links.append(value)


def links_of(html: str) -> list[str]:
    parser = Links()
    parser.feed(html)
    return parser.links


@pytest.fixture(scope="module")
def client(finished: SimulatedJob):
    with client_for(finished) as c:
        yield c


@pytest.fixture(scope="module")
def report(finished: SimulatedJob):
    with finished.sessions() as session:
        return build_report(session, str(finished.job_id))


def crawl(client: TestClient, start: str = "/") -> dict[str, int]:
    """Every page reachable from ``start`` through links (GET forms included): each must
    answer 200 and link nowhere but this site (pages work offline)."""
    seen: dict[str, int] = {}
    queue = [start]
    while queue:
        path = queue.pop()
        if path in seen:
            continue
        response = client.get(path)
        seen[path] = response.status_code
        assert response.status_code == 200, (path, response.text[:500])
        if "text/html" not in response.headers["content-type"]:
            continue
        for link in links_of(response.text):
            target = urlsplit(urljoin("http://testserver" + path, link))
            if target.scheme == "data":  # inline (the empty favicon): nothing is fetched
                continue
            if target.netloc != "testserver":
                pytest.fail(f"{path} links outside the site: {link}")
            queue.append(target.path + (f"?{target.query}" if target.query else ""))
    return seen


def test_every_page_reachable_from_the_overview_answers_and_every_link_resolves(client):
    seen = crawl(client)
    # The crawl reached every kind of page through the links alone.
    for kind in (
        "/jobs",
        "/jobs/",
        "/runs/",
        "/compat",
        "/devices",
        "/compare",
        "/sweeps",
        "/alerts",
    ):
        assert any(p == kind or p.startswith(kind) for p in seen), (kind, sorted(seen))
    assert len([p for p in seen if p.startswith("/runs/")]) >= 6


def test_the_job_page_shows_the_reports_matrix_coloured_per_verdict(client, finished, report):
    html = client.get(f"/jobs/{finished.job_id}").text
    cells = re.findall(
        r'<td class="cell (v-[a-z-]+)" data-verdict="([A-Z]*)"[^>]*><a href="/runs/([0-9a-f-]+)">([^<]+)<',
        html,
    )
    assert len(cells) == len(report["rows"]) == 6
    by_run = {run: (css, label.strip()) for css, _, run, label in cells}
    for row in report["rows"]:
        css, label = by_run[row["run"]]
        cell = next(m["cells"][row["device_class"]] for m in report["matrix"]["models"]
                    if m["sha256"] == row["sha256"])  # fmt: skip
        assert label == cell["label"]
        assert (
            css
            == {
                "FULL": "v-full",
                "PARTIAL": "v-partial",
                "NONE": "v-none",
                "INCONCLUSIVE": "v-inconclusive",
            }[row["verdict"]]
        )
    assert SIM_BADGE in html and "every run of this job ran on the simulated farm" in html
    assert "6 of 6 run(s) finished" in html and 'data-live="0"' in html
    # The causes, as `anefarm report` words them (reason, fix, where and how found).
    rows = Report.model_validate(report).rows
    said = 0
    for name in {r.model for r in rows}:
        for entry in model_lines([r for r in rows if r.model == name]):
            for line in entry:
                assert str(escape(line)) in html, line
                said += 1
    assert said >= 3  # the LSTM and the dilated convolution at least
    assert "dilated (atrous) convolution" in html


def test_a_run_page_shows_the_evidence_of_a_bisected_and_retried_run(client, finished):
    with finished.sessions() as session:
        run = session.scalars(
            select(db.Run).where(
                db.Run.job_id == finished.job_id, db.Run.purpose == "user", db.Run.attempts == 2
            )
        ).one()
        probes = session.scalars(select(db.Run).where(db.Run.parent_run_id == run.id)).all()
    html = client.get(f"/runs/{run.id}").text
    assert SIM_BADGE in html
    # The latency chart: one box plot per measured compute-units setting.
    chart = re.search(r'<div id="latency-chart">(.*?)</div>', html, re.S)
    assert chart and chart.group(1).count('<g class="box">') == 4
    assert all(s in html for s in ("cpuAndNeuralEngine", "cpuAndGPU", "cpuOnly"))
    trace = re.search(r'<div id="sample-trace">(.*?)</div>', html, re.S)
    assert trace and trace.group(1).count('<polyline class="trace"') == 4
    # Attempts: the crash on the first device, with its crash report, then the retry.
    attempts = re.search(r'<table id="attempts">(.*?)</table>', html, re.S)
    assert (
        attempts and "runner_crash" in attempts.group(1) and "SIM-iPhone11-8-0" in attempts.group(1)
    )
    assert "Attempt 1: crash report" in html and "Attempt 1: log lines" in html
    assert ('<table id="timing">' in html and "indistinguishable" in html) or "faster" in html
    if probes:  # a bisected model: the probes and what they placed
        assert '<table id="bisection">' in html
        for probe in probes:
            assert f'href="/runs/{probe.id}"' in html


def test_a_run_with_a_compute_plan_lists_it_per_op(client, finished):
    with finished.sessions() as session:
        run = session.scalars(
            select(db.Run).where(
                db.Run.job_id == finished.job_id,
                db.Run.purpose == "user",
                db.Run.device_class == "iPhone16,1",
            )
        ).first()
        ops = session.scalars(select(db.OpPlacement).where(db.OpPlacement.run_id == run.id,
                                                           db.OpPlacement.source == "plan")).all()  # fmt: skip
    assert ops
    html = client.get(f"/runs/{run.id}").text
    plan = re.search(r'<table id="plan">(.*?)</table>', html, re.S)
    assert plan and plan.group(1).count("<tr>") == len(ops) + 1
    assert all(op.name in plan.group(1) for op in ops)


def test_a_real_run_carries_no_simulated_label(finished, tmp_path):
    """The label follows the data: the same run stored as real shows no badge."""
    with finished.sessions() as session:
        run = session.scalars(select(db.Run).where(db.Run.job_id == finished.job_id,
                                                   db.Run.purpose == "user")).first()  # fmt: skip
        run_id = run.id
    with client_for(finished) as c:
        assert SIM_BADGE in c.get(f"/runs/{run_id}").text
        with finished.sessions() as session:
            session.get(db.Run, run_id).simulated = False
            session.commit()
        try:
            assert SIM_BADGE not in c.get(f"/runs/{run_id}").text
        finally:
            with finished.sessions() as session:
                session.get(db.Run, run_id).simulated = True
                session.commit()


def test_pages_that_show_simulated_data_say_so(client, finished):
    for path in ("/", "/jobs", "/devices", "/compat", f"/jobs/{finished.job_id}"):
        assert SIM_BADGE in client.get(path).text, path


def test_compare_colours_what_moved(client, finished):
    with finished.sessions() as session:
        a, b = session.scalars(
            select(db.Run.id).where(db.Run.job_id == finished.job_id, db.Run.purpose == "user")
            .order_by(db.Run.device_class)
        ).all()[:2]  # fmt: skip
    html = client.get(f"/compare?a={a}&b={b}&threshold=0.0").text
    table = re.search(r'<table id="compare">(.*?)</table>', html, re.S)
    assert table and "diff" in table.group(1)
    same = client.get(f"/compare?a={a}&b={a}").text
    assert 'class="num diff' not in same
    jobs = client.get(f"/compare?a={finished.job_id}&b={finished.job_id}").text
    assert "0 of 6 pair(s) differ" in jobs
    mixed = client.get(f"/compare?a={a}&b={finished.job_id}")
    assert mixed.status_code == 400


def test_compat_filters(client):
    every = client.get("/compat").text
    assert '<table class="matrix" id="compat">' in every and "A12" in every
    assert "No cell matches" in client.get("/compat?chip=A17%20Pro&kind=real").text
    a12 = client.get("/compat?chip=A12&op=conv").text
    assert "conv" in a12 and "lstm" not in a12.split('id="compat"')[1]


def test_devices_show_utilisation_and_the_crash(client):
    html = client.get("/devices").text
    row = re.search(r'<tr data-udid="SIM-iPhone11-8-0">(.*?)</tr>', html, re.S)
    assert row and "runner_crash" in row.group(1)
    busy = re.findall(r"(\d+) attempt\(s\)", html)
    assert sum(int(n) for n in busy) >= 14  # every attempt of the job, probes included


def test_devices_show_the_live_state_from_redis(client, finished):
    from orchestrator.protocol import livestate

    redis = livestate.connect(finished.settings.broker_url)
    try:
        status = livestate.DeviceStatus(
            udid="SIM-iPhone16-1-0", product_type="iPhone16,1", chip="A17 Pro",
            os_version="26.1", os_build="23B80sim", name="iPhone 15 Pro #0 (SIMULATED)",
            simulated=True, agent="sim-agent", state="not_ready",
            reasons=["battery 12 % (below 20 %)", "thermal state serious"],
        )  # fmt: skip
        livestate.put_device(redis, status, ttl_s=60)
        livestate.beat_agent(redis, "sim-agent", host="mac-1", simulated=True, ttl_s=60)
        livestate.quarantine(redis, "SIM-iPhone16-1-0", "3 infra failures in a row")
        html = client.get("/devices").text
    finally:
        redis.flushdb()
        redis.close()
    row = re.search(r'<tr data-udid="SIM-iPhone16-1-0">(.*?)</tr>', html, re.S)
    assert row and "quarantined" in row.group(1) and "battery 12 %" in row.group(1)
    assert "anefarm devices release SIM-iPhone16-1-0" in row.group(1)
    assert "no live heartbeat" not in row.group(1)
    agents = re.search(r'<table id="agents">(.*?)</table>', html, re.S)
    assert agents and "mac-1" in agents.group(1)
    # The XRs send no heartbeat: offline, as the database last saw them.
    offline = re.search(r'<tr data-udid="SIM-iPhone11-8-1">(.*?)</tr>', html, re.S)
    assert offline and "no live heartbeat" in offline.group(1)


def test_the_live_fragment_follows_a_running_job(sim, samples, tmp_path):
    from tests.web.pages.conftest import pick_models

    job = sim.submit(pick_models(samples, tmp_path / "m", ("conv10x10.mlpackage",)))
    with client_for(sim) as c:
        first = c.get(f"/jobs/{job}/live")
        assert first.headers["X-Live"] == "1" and "0 of 2 run(s) finished" in first.text
        # Nothing happened: the poll's revalidation is answered without a body.
        tag = {"If-None-Match": first.headers["ETag"]}
        assert c.get(f"/jobs/{job}/live", headers=tag).status_code == 304
        # The XR's first attempt crashes (retried): a batch ends without a run finishing,
        # but the fragment changed (a new attempt), so the poll gets it.
        sim.finish_one()
        changed = c.get(f"/jobs/{job}/live", headers=tag)
        assert changed.status_code == 200 and "0 of 2 run(s) finished" in changed.text
        sim.finish_one()
        assert "1 of 2 run(s) finished" in c.get(f"/jobs/{job}/live").text
        sim.finish_all()
        last = c.get(f"/jobs/{job}/live")
        assert last.headers["X-Live"] == "0" and "2 of 2 run(s) finished" in last.text


def test_unknown_ids_are_404(client):
    assert client.get("/jobs/00000000-0000-0000-0000-000000000000").status_code == 404
    assert client.get("/runs/not-a-run").status_code == 404


def test_pages_need_a_token_unless_reads_are_open(finished):
    settings = finished.settings.model_copy(update={"open_reads": False})
    from orchestrator.web.app import create_app

    with TestClient(create_app(settings, sessions=finished.sessions, bound_host="127.0.0.1")) as c:
        assert c.get("/").status_code == 401
        assert c.get("/static/style.css").status_code == 200  # assets are not data
