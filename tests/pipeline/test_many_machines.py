"""The many-machines shape on one host: PostgreSQL by URL, and agents that cannot read the
coordinator's disk, fetching models over HTTP with a bearer token from the coordinator."""

from __future__ import annotations

import json

import pytest

from tests.pipeline.farm import Farm
from tests.pipeline.test_pipeline import A12, submit
from tests.services.common import free_port

pytestmark = [pytest.mark.slow]


# Farm.at starts the agent's Celery workers in the test body
@pytest.mark.celery
def test_postgres_and_http_artifacts(tmp_path, redis_url, pg_url, samples):
    home = tmp_path / "coordinator-home"
    home.mkdir()
    port = free_port()
    farm = Farm(
        home=home, broker_url=redis_url, database_url=pg_url,
        extra_env={"ANEFARM_ARTIFACT_TOKEN": "t0ken", "ANEFARM_ARTIFACT_URL": f"http://127.0.0.1:{port}",
                   # The agent's cache lives elsewhere: nothing is shared on disk but by HTTP.
                   "ANEFARM_AGENT_CACHE_DIR": str(tmp_path / "agent-cache")},
    )  # fmt: skip
    try:
        farm.cli("db", "upgrade")
        farm.start_coordinator("--serve-artifacts", f"127.0.0.1:{port}")
        farm.start_agent(f"{A12}=1", wait_for=1)
        job = submit(farm, samples["conv10x10.mlpackage"], samples["conv10x10_dilated4.mlpackage"])
        report = farm.wait_job(job)
        verdicts = {row["model"]: row["verdict"] for row in report["rows"]}
        assert verdicts["conv10x10.mlpackage"] == "FULL"
        assert verdicts["conv10x10_dilated4.mlpackage"] != "FULL"
        assert list((tmp_path / "agent-cache" / "blobs").rglob("*")), (
            "the agent downloaded the models"
        )
        assert json.loads(farm.cli("report", job, "--json").stdout) == report
    finally:
        farm.kill()  # nothing is asserted after: no warm shutdown to wait for
