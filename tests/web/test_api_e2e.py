"""The issue's acceptance, end to end on a simulated farm: a coordinator serving the web
app (``anefarm coordinator --serve``), an agent that can read nothing of the coordinator's
disk and fetches models from the app with the artifact token, and a client with curl's
view of the API: no token 401, ``read`` 403, ``submit`` 201 and a job id; the finished
job's report over HTTP is ``anefarm report --json``."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.pipeline.farm import Farm
from tests.services.common import free_port
from tests.web.test_api_submit import package_tar

pytestmark = [pytest.mark.slow]
A12 = "iPhone11,8"


def wait_until_serving(farm: Farm, url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/api/v1/openapi.json", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        farm._check()
        time.sleep(0.2)
    raise AssertionError(f"the coordinator's web app did not answer at {url}\n{farm.logs()}")


@pytest.mark.celery  # the agent's Celery workers start in the test body
def test_submit_over_http_agents_fetch_from_the_app_report_is_the_clis(
    tmp_path, redis_url, samples
):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    farm = Farm.at(tmp_path, redis_url)
    farm.extra_env.update(
        {
            "ANEFARM_ARTIFACT_TOKEN": "agent-t0ken",
            "ANEFARM_ARTIFACT_URL": url,
            # The agent's cache is elsewhere: the models reach it only over HTTP.
            "ANEFARM_AGENT_CACHE_DIR": str(tmp_path / "agent-cache"),
        }
    )
    try:
        farm.cli("db", "upgrade")
        submit_token = farm.cli("tokens", "create", "--role", "submit", "--name", "ci").stdout
        read_token = farm.cli("tokens", "create", "--role", "read", "--name", "viewer").stdout
        farm.start_coordinator("--serve", f"127.0.0.1:{port}")
        wait_until_serving(farm, url)
        farm.start_agent(f"{A12}=1", wait_for=1)

        package, nn = samples["conv10x10_dilated4.mlpackage"], samples["conv10x10_nn.mlmodel"]
        files = [
            ("models", (f"{package.name}.tar", package_tar(package))),
            ("models", (nn.name, nn.read_bytes())),
        ]
        # No bisection: a job that is done stays as it is (probe runs would come after the
        # user runs are final), so the three reads below see one report.
        form = {"devices": A12, "iterations": "10", "warmup": "1", "bisect": "never"}

        def post(token: str | None) -> httpx.Response:
            headers = {"Authorization": f"Bearer {token.strip()}"} if token else {}
            return httpx.post(
                url + "/api/v1/jobs", files=files, data=form, headers=headers, timeout=120
            )

        assert post(None).status_code == 401
        assert post(read_token).status_code == 403
        made = post(submit_token)
        assert made.status_code == 201, made.text
        job = made.json()["job"]

        report = farm.wait_job(job, timeout=180)
        assert {r["model"] for r in report["rows"]} == {package.name, nn.name}
        assert all(r["status"] == "succeeded" for r in report["rows"])
        over_http = httpx.get(
            f"{url}/api/v1/jobs/{job}/report",
            headers={"Authorization": f"Bearer {read_token.strip()}"},
            timeout=30,
        )
        assert over_http.status_code == 200
        from_cli = json.loads(farm.cli("report", job, "--json").stdout)
        assert over_http.json() == from_cli == report
        cached = [p for p in (tmp_path / "agent-cache").rglob("*") if p.is_file()]
        assert cached, "the agent downloaded the models from the app"
    finally:
        farm.kill()  # nothing is asserted after: no warm shutdown to wait for
