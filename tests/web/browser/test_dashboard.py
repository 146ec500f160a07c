"""The dashboard in a real browser (chromium under Playwright) against a real uvicorn
server: every page loads with no console error and no failed request, the matrix and the
charts render, the live job page follows a job as its runs finish, and a triage action
made through the page changes the alert. Screenshots of the main pages are written to
build/screenshots/."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from orchestrator.store import models as db
from tests.web.browser.conftest import Site, Watched

pytestmark = pytest.mark.slow


def _first_run(site: Site, device_class: str) -> str:
    with site.finished.sessions() as session:
        run = (
            session.scalars(
                select(db.Run).where(
                    db.Run.job_id == site.finished.job_id,
                    db.Run.purpose == "user",
                    db.Run.device_class == device_class,
                    db.Run.attempts == 2,
                )
            ).first()
            or session.scalars(
                select(db.Run).where(
                    db.Run.job_id == site.finished.job_id,
                    db.Run.purpose == "user",
                    db.Run.device_class == device_class,
                )
            ).first()
        )
        assert run is not None
        return str(run.id)


def test_every_page_loads_clean_and_renders(page: Watched, site: Site):
    xr = _first_run(site, "iPhone11,8")
    pro = _first_run(site, "iPhone16,1")
    pages = {
        "overview": "/",
        "jobs": "/jobs",
        "job": f"/jobs/{site.finished.job_id}",
        "run-bisected": f"/runs/{xr}",
        "run-plan": f"/runs/{pro}",
        "compare": f"/compare?a={xr}&b={pro}",
        "compat": "/compat",
        "devices": "/devices",
        "sweeps": "/sweeps",
        "sweep": "/sweeps/nightly",
        "series": "/series/nightly/conv/iPhone11,8?units=all",
        "alerts": "/alerts",
    }
    for name, path in pages.items():
        page.goto(site.url + path)
        page.screenshot(name)
        # Every page links every other through the nav.
        assert page.page.locator("nav.top a").count() == 9, name  # brand, 7 pages, sign in
    assert page.problems == []

    page.goto(f"{site.url}/jobs/{site.finished.job_id}")
    cells = page.page.locator("table.matrix td.cell")
    assert cells.count() == 6
    coloured = page.page.locator("td.cell.v-full, td.cell.v-partial, td.cell.v-none")
    assert coloured.count() == 6  # every cell has its verdict's colour
    assert page.page.locator("td.cell.v-full").count() >= 2  # conv10x10 on both
    assert page.page.locator("td.cell.v-none, td.cell.v-partial").count() >= 2  # the LSTM
    assert page.page.locator(".badge.sim").count() >= 1

    page.goto(f"{site.url}/runs/{xr}")
    chart = page.page.locator("#latency-chart svg")
    assert chart.count() == 1
    box = chart.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 100
    assert page.page.locator("#latency-chart svg rect.bin").count() > 4
    assert page.page.locator("#latency-chart svg g.box").count() == 4
    assert page.page.locator("#sample-trace svg polyline.trace").count() == 4

    page.goto(f"{site.url}/series/nightly/conv/iPhone11,8?units=all")
    series = page.page.locator("#series-chart svg")
    assert series.count() == 1 and series.locator("circle.point").count() == 10
    assert series.locator("polygon.band").count() >= 1
    assert page.problems == []


def test_the_job_page_updates_itself_as_runs_finish(page: Watched, site: Site):
    page.goto(f"{site.url}/jobs/{site.running_job}")
    progress = page.page.locator("p.progress-line")
    assert "0 of 2 run(s) finished" in progress.inner_text()
    page.page.evaluate("window.notReloaded = true")  # gone if the page were loaded again
    # The first batch crashes (retried, no run finished), the second one finishes.
    site.running.finish_one()
    site.running.finish_one()
    page.page.wait_for_function(
        "document.querySelector('p.progress-line').innerText.includes('1 of 2 run(s) finished')",
        timeout=8000,
    )
    assert page.page.locator("td.cell.v-full").count() == 1
    site.running.finish_all()
    page.page.wait_for_function(
        "document.getElementById('live').dataset.live === '0'", timeout=8000
    )
    assert "2 of 2 run(s) finished" in progress.inner_text()
    assert page.page.evaluate("window.notReloaded") is True
    page.screenshot("job-live-finished")
    assert page.problems == []


def test_a_triage_action_through_the_page_changes_the_alert(page: Watched, site: Site):
    from orchestrator.web import tokens

    token = tokens.create(site.finished.sessions, name="browser-triager", role=tokens.Role.SUBMIT)
    page.goto(f"{site.url}/alerts")
    page.page.fill("#sign-in input[name=token]", token)
    page.page.click("#sign-in button")
    page.page.wait_for_url(f"{site.url}/alerts")
    alert = page.page.locator(f"#alert-{site.sweep.alert_id}")
    assert alert.locator(".status").inner_text() == "untriaged"
    alert.locator("input[name=note]").fill("checking the OS upgrade")
    alert.locator("button[value=ack]").click()
    page.page.wait_for_load_state("networkidle")
    moved = page.page.locator(f"#alert-{site.sweep.alert_id}")
    assert moved.locator(".status").inner_text() == "acknowledged"
    page.screenshot("alerts-after-triage")
    with site.finished.sessions() as session:
        summary = session.get(db.AlertSummary, site.sweep.alert_id)
        assert summary is not None and summary.status == db.AlertStatus.ACKNOWLEDGED
        entry = session.scalars(
            select(db.AlertTriage).where(db.AlertTriage.summary_id == site.sweep.alert_id)
        ).one()
        assert (entry.by, entry.note) == ("browser-triager", "checking the OS upgrade")
    assert page.problems == []
