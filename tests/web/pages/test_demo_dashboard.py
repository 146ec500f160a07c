"""The demo's last lines name the dashboard URL of its job, and ``DEMO_SERVE=1`` serves
it: the page answers on loopback without a token (the demo's own data, reads open)."""

from __future__ import annotations

import io
import shlex

import httpx
from rich.console import Console

from orchestrator.demo import dashboard_lines, serve_dashboard
from orchestrator.settings import load_settings
from orchestrator.store.migrate import upgrade


def test_the_demo_ends_with_the_dashboard_url_of_its_job(tmp_path):
    settings = load_settings(home=tmp_path / "demo-home")
    how, url = dashboard_lines(settings, "1234")
    assert url == "http://127.0.0.1:8480/jobs/1234"
    serve = shlex.split(how.split("`")[1])
    assert serve[0] == f"ANEFARM_HOME={tmp_path / 'demo-home'}"
    assert serve[1] == "ANEFARM_OPEN_READS=1" and serve[-1] == "serve"


def test_demo_serve_answers_the_jobs_page_without_a_token(tmp_path):
    settings = load_settings(home=tmp_path)
    upgrade(settings.resolved_database_url)
    out = io.StringIO()
    server = serve_dashboard(settings, "missing-job", Console(file=out), port=0).start()
    try:
        url = out.getvalue().strip().splitlines()[-1]
        assert url == f"{server.url}/jobs/missing-job"
        assert httpx.get(f"{server.url}/jobs").status_code == 200  # no token: reads open
        assert httpx.get(url).status_code == 404  # a job this database does not have
    finally:
        server.stop()
