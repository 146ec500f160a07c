"""The topology of docs/deploy.md as real processes (issue 20's acceptance): Redis with
the ACL users, AOF and TLS only; PostgreSQL with a password; the coordinator serving the
dashboard, API and models; two agent processes as if on two Macs (SIMULATED devices),
each with only the broker's ``agent`` credential and the artifact token. A job and a
sweep night run through it; ``doctor`` finds nothing to fix."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from tests.security import topology
from tests.services.common import free_port
from tests.sweeps.files import sweep_file

pytestmark = [pytest.mark.slow, pytest.mark.celery, pytest.mark.postgres]

A12, A14 = "iPhone11,8", "iPhone13,2"


def test_a_job_and_a_sweep_night_through_the_secured_topology(
    tmp_path, tls_redis, scram_postgres, samples
):
    pg_port, pg_password = scram_postgres
    token = "tok-" + uuid.uuid4().hex
    web_port = free_port()
    database_url = topology.scram_database(pg_port, pg_password, "topology")
    coordinator = topology.coordinator_host(
        tmp_path / "coordinator", tls_redis.url("coordinator"), database_url, token
    )
    macs = [
        topology.agent_host(
            f"mac-{i}", tmp_path / f"mac-{i}", tls_redis.url("agent"), web_port, token
        )
        for i in (1, 2)
    ]
    hosts = [coordinator, *macs]
    for mac in macs:
        assert not any(key.startswith("ANEFARM_DATABASE") for key in mac.env)
    sweep = sweep_file(
        tmp_path, samples, ["conv10x10.mlpackage"], name="nightly", schedule='"0 2 * * *"',
        devices=f'"{A12},{A14}"', compute_units="[all]", iterations="5", warmup="1",
        bisect="never",
    )  # fmt: skip
    try:
        coordinator.spawn("coordinator", "coordinator", "--serve", f"127.0.0.1:{web_port}")
        macs[0].spawn("agent", "agent", "--simulate", f"{A12}=1", "--name", "mac-1")
        macs[1].spawn("agent", "agent", "--simulate", f"{A14}=1", "--name", "mac-2")
        topology.wait_devices(tls_redis.url("coordinator"), 2, hosts)

        report = topology.run_job(
            coordinator, samples["conv10x10.mlpackage"], f"{A12},{A14}", hosts
        )
        rows = report["rows"]
        assert sorted(r["device_class"] for r in rows) == [A12, A14]
        assert {r["status"] for r in rows} == {"succeeded"}, rows
        # Each class lives on one Mac only: both hosts did work.
        assert len({r["udid"] for r in rows}) == 2

        added = coordinator.cli("sweep", "add", str(sweep))
        assert added.returncode == 0, added.stderr
        night = coordinator.cli("sweep", "run", "nightly", "--at", "2026-11-20T02:00",
                                "--wait", "--json", timeout=240)  # fmt: skip
        assert night.returncode == 0, night.stdout + night.stderr
        history = coordinator.cli("sweep", "history", "nightly", "--json")
        points = json.loads(history.stdout)["points"]
        assert {(p["device_class"], p["status"]) for p in points} == {(A12, "ok"), (A14, "ok")}

        # The dashboard and API answer on the coordinator, behind a token.
        api = coordinator.cli("tokens", "create", "--role", "read", "--name", "ops")
        assert api.returncode == 0, api.stderr
        headers = {"Authorization": f"Bearer {api.stdout.strip().split()[-1]}"}
        base = f"http://127.0.0.1:{web_port}"
        assert httpx.get(f"{base}/api/v1/jobs", timeout=10).status_code == 401
        assert httpx.get(f"{base}/api/v1/jobs", headers=headers, timeout=10).status_code == 200
        page = httpx.get(f"{base}/", headers=headers, timeout=10)
        assert page.status_code == 200, (page.text[:800], coordinator.logs()[-4000:])
        scrape = httpx.get(f"{base}/metrics", headers=headers, timeout=10).text
        assert 'anefarm_runs{status="succeeded"} 4.0' in scrape, scrape

        doctor = coordinator.cli("doctor", "--json")
        findings = json.loads(doctor.stdout)["findings"]
        assert doctor.returncode == 0, [f for f in findings if f["level"] == "fix"]
        skew = [f for f in findings if f["check"] == "clock-skew"]
        assert skew and skew[0]["level"] == "ok" and "2 agent(s)" in skew[0]["message"]
    finally:
        for host in reversed(hosts):
            host.stop()
    for mac in macs:
        assert not list(mac.home.rglob("*.db"))
