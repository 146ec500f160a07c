"""The read API on a real job (``anefarm profile`` on a simulated farm, into SQLite and
into PostgreSQL): a ``read`` token gets the report JSON of the job, identical to
``anefarm report --json``; jobs, status, runs, devices and compat answer; errors are
JSON with a message."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import anefarm
from tests.web.conftest import Web, make_web

pytestmark = [pytest.mark.slow]
A12 = "iPhone11,8"


def cli(web: Web, *args: str, timeout: float = 240) -> str:
    out = anefarm(
        *args, home=web.home, timeout=timeout, ANEFARM_DATABASE_URL=web.settings.database_url or ""
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def _database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'anefarm.db'}"
    # A database of its own on the session's PostgreSQL (as the pg_url fixture makes one,
    # which is per test: this job is made once per module and database).
    import psycopg

    server = str(request.getfixturevalue("pg_server"))
    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(
        server.replace("postgresql+psycopg://", "postgresql://"), autocommit=True
    ) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def profiled(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, samples
) -> Iterator[tuple[Web, dict[str, Any]]]:
    """A finished job of two models on a simulated A12, bisected: made once per database."""
    tmp_path = tmp_path_factory.mktemp("profiled")
    for web in make_web(tmp_path, _database(request, tmp_path)):
        models = [str(samples["conv10x10.mlpackage"]), str(samples["conv10x10_dilated4.mlpackage"])]
        # --bisect: probe runs too, so the report has every part (rows, matrix, probes).
        report = json.loads(
            cli(
                web,
                "profile",
                *models,
                "--simulate",
                f"{A12}=1",
                "--iterations",
                "8",
                "--warmup",
                "1",
                "--bisect",
                "--json",
            )
        )
        yield web, report


def test_a_read_token_gets_the_report_json_identical_to_the_cli(profiled):
    web, report = profiled
    job = report["job"]
    answer = web.client().get(f"/api/v1/jobs/{job}/report", headers=web.auth("read"))
    assert answer.status_code == 200, answer.text
    from_cli = json.loads(cli(web, "report", job, "--json"))
    assert answer.json() == from_cli
    # The same keys in the same order, not only the same mapping.
    assert json.dumps(answer.json()) == json.dumps(from_cli)
    assert from_cli["rows"] and from_cli["probes"], "a job with rows and bisection probes"
    # A unique prefix works as in the CLI.
    by_prefix = web.client().get(f"/api/v1/jobs/{job[:8]}/report", headers=web.auth("submit"))
    assert by_prefix.json() == from_cli


def test_jobs_status_and_runs(profiled):
    web, report = profiled
    client, headers = web.client(), web.auth("read")
    job = report["job"]

    listed = client.get("/api/v1/jobs", headers=headers).json()
    assert listed == json.loads(cli(web, "jobs", "--json"))
    assert [j["job"] for j in listed["jobs"]] == [job]

    status = client.get(f"/api/v1/jobs/{job}", headers=headers).json()
    assert status == json.loads(cli(web, "status", job, "--json"))
    assert status["done"] is True

    row = next(r for r in report["rows"] if r["model"] == "conv10x10_dilated4.mlpackage")
    run = client.get(f"/api/v1/runs/{row['run']}", headers=headers).json()
    assert run["row"] == row  # the run's row is the report's row
    assert run["job"] == job and run["purpose"] == "user"
    assert run["attempts"] and run["attempts"][0]["outcome"] == "ok"
    assert set(run["samples_ms"]) == set(row["latency_ms"])
    assert all(len(s) == 8 for s in run["samples_ms"].values())


def test_compat_is_the_cli_json(profiled):
    web, _ = profiled
    client, headers = web.client(), web.auth("read")
    cells = client.get("/api/v1/compat", headers=headers).json()
    assert cells == json.loads(cli(web, "compat", "--json"))
    assert cells["cells"] and all(c["simulated"] for c in cells["cells"])
    only = client.get("/api/v1/compat", params={"chip": "A12", "op": "conv"}, headers=headers)
    assert only.json() == json.loads(cli(web, "compat", "--chip", "A12", "--op", "conv", "--json"))
    unknown = client.get("/api/v1/compat", params={"chip": "Z9"}, headers=headers)
    assert unknown.status_code == 400 and unknown.json()["error"]["kind"] == "usage"


def test_errors_are_json_with_a_message(web: Web):
    client, headers = web.client(), web.auth("read")
    missing = client.get("/api/v1/jobs/0123456789/report", headers=headers)
    assert missing.status_code == 404
    error = missing.json()["error"]
    assert error["kind"] == "not_found" and "no job '0123456789'" in error["message"]
    assert error["hint"]
    no_run = client.get("/api/v1/runs/not-a-uuid", headers=headers)
    assert no_run.status_code == 404 and "no run" in no_run.json()["error"]["message"]
    bad_limit = client.get("/api/v1/jobs", params={"limit": 0}, headers=headers)
    assert bad_limit.status_code == 422 and "limit" in bad_limit.json()["error"]["message"]
    assert client.get("/api/v1/nothing-here", headers=headers).status_code == 404


def test_devices_without_a_broker_are_the_known_ones(web: Web):
    answer = web.client().get("/api/v1/devices", headers=web.auth("read"))
    assert answer.status_code == 200
    assert answer.json() == {"broker": False, "live": [], "agents": [], "known": []}


def test_openapi_is_served_and_no_page_loads_from_a_cdn(web_sqlite: Web):
    client = web_sqlite.client()
    spec = client.get("/api/v1/openapi.json").json()
    paths = set(spec["paths"])
    assert {"/api/v1/jobs", "/api/v1/jobs/{job}/report", "/api/v1/runs/{run}"} <= paths
    assert "multipart/form-data" in spec["paths"]["/api/v1/jobs"]["post"]["requestBody"]["content"]
    # FastAPI's /docs page pulls swagger-ui from a CDN: it is off, offline is the rule.
    assert client.get("/docs").status_code in (401, 404)
    # Each route says the role it needs: the bearer scheme, the role as its scope.
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert spec["paths"]["/api/v1/jobs"]["post"]["security"] == [{"HTTPBearer": ["submit"]}]
    assert spec["paths"]["/api/v1/jobs"]["get"]["security"] == [{"HTTPBearer": ["read"]}]
    # ...and our own HTML page of it, with no script and nothing fetched from elsewhere.
    page = client.get("/api/v1/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<code>/api/v1/jobs/{job}/report</code>" in page.text
    assert "needs a <b>submit</b> token" in page.text
    assert "<script" not in page.text and "http" not in page.text.replace("HTTP API", "")
