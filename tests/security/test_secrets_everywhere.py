"""No secret of a deployment in any log, ``ps`` line, report or error message.

The whole topology with real processes and four secrets: the coordinator's and the
agent's Redis passwords (TLS, deploy/'s ACL users), the database password (PostgreSQL
with SCRAM) and the artifact token (the agent fetches models from the coordinator's web
app with it). A job runs end to end at log level INFO; then every log file of both hosts
and of Redis, every process's full arguments, the report in each form, ``doctor`` and the
one-line errors of wrong credentials are searched for each secret."""

from __future__ import annotations

import secrets
import subprocess

import httpx
import pytest

from tests.security.topology import (
    Host,
    agent_host,
    coordinator_host,
    run_job,
    scram_database,
    wait_devices,
)
from tests.services.common import free_port

pytestmark = [pytest.mark.slow, pytest.mark.celery, pytest.mark.postgres]

A12 = "iPhone11,8"


def _leaks(texts: dict[str, str], secret_values: dict[str, str]) -> list[str]:
    return [f"{what} in {where}" for where, text in texts.items()
            for what, value in secret_values.items() if value in text]  # fmt: skip


def test_no_secret_in_logs_ps_reports_or_errors(tmp_path, tls_redis, scram_postgres, samples):
    pg_port, pg_password = scram_postgres
    token = "tok-" + secrets.token_urlsafe(24)
    secret_values = {
        "the coordinator's Redis password": tls_redis.passwords["coordinator"],
        "the agent's Redis password": tls_redis.passwords["agent"],
        "the database password": pg_password,
        "the artifact token": token,
    }
    web_port = free_port()
    coordinator = coordinator_host(
        tmp_path / "coordinator-home", tls_redis.url("coordinator"),
        scram_database(pg_port, pg_password, "secrets"), token,
        ANEFARM_OPEN_READS="1",  # /metrics on loopback without a token
    )  # fmt: skip
    agent = agent_host("agent-host", tmp_path / "agent-home", tls_redis.url("agent"), web_port,
                       token)  # fmt: skip
    outputs: dict[str, str] = {}
    try:
        coordinator.spawn("coordinator", "coordinator", "--serve", f"127.0.0.1:{web_port}",
                          "--loglevel", "INFO")  # fmt: skip
        agent.spawn("agent", "agent", "--simulate", f"{A12}=2", "--name", "mac-secret",
                    "--loglevel", "INFO")  # fmt: skip
        wait_devices(tls_redis.url("coordinator"), 2, [coordinator, agent])
        report = run_job(coordinator, samples["conv10x10.mlpackage"], A12, [coordinator, agent])
        assert [row["status"] for row in report["rows"]] == ["succeeded"], report
        job = report["job"]["id"] if isinstance(report.get("job"), dict) else report["job"]
        # While everything runs: the full command line of every process on the host.
        ps = subprocess.run(["ps", "-eww", "-o", "pid,args"], capture_output=True, text=True,
                            check=True)  # fmt: skip
        assert "mac-secret" in ps.stdout  # the agent was there to be looked at
        outputs["ps"] = ps.stdout
        for form in ([], ["--json"], ["--csv"]):
            out = coordinator.cli("report", str(job), *form)
            assert out.returncode == 0, out.stderr
            outputs[f"report {' '.join(form)}"] = out.stdout + out.stderr
        # /metrics: the ingest ran in the coordinator's pool child, the web app in its
        # parent; the multiprocess counters carry the figure across.
        scrape = httpx.get(f"http://127.0.0.1:{web_port}/metrics", timeout=10)
        assert scrape.status_code == 200, scrape.text
        assert 'anefarm_ingest_seconds_count{outcome="stored"} 1.0' in scrape.text, scrape.text
        assert 'anefarm_devices{device_class="iPhone11,8",state="ready"} 2.0' in scrape.text
        outputs["metrics"] = scrape.text
        doctor = coordinator.cli("doctor")
        outputs["doctor"] = doctor.stdout + doctor.stderr
        assert "broker-reachable" in doctor.stdout
    finally:
        agent.stop()
        coordinator.stop()
    # Errors that quote the URLs they failed on, each with the real secrets in the
    # environment (so a library quoting the configured value would leak it).
    wrong = Host("wrong", tmp_path / "wrong-home", {
        **coordinator.settings,
        "ANEFARM_BROKER_URL": tls_redis.url("coordinator",
                                            password="x" + tls_redis.passwords["agent"]),
    })  # fmt: skip
    for args in (["devices", "list"], ["agent", "--simulate", f"{A12}=1"], ["doctor"]):
        out = wrong.cli(*args)
        assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
        outputs[f"wrong password: {' '.join(args)}"] = out.stdout + out.stderr
    bad_db = Host("bad-db", tmp_path / "bad-db-home", {
        "ANEFARM_DATABASE_URL": f"postgresql+psycopg://anefarm:{pg_password}@127.0.0.1:"
        f"{free_port()}/x",
    })  # fmt: skip
    out = bad_db.cli("jobs")
    assert out.returncode == 1 and "***" in out.stderr, out.stderr
    outputs["database down: jobs"] = out.stdout + out.stderr

    logs = [*coordinator.home.rglob("*.log"), *agent.home.rglob("*.log"),
            tls_redis.home / "redis.log"]  # fmt: skip
    assert {p.name for p in logs} >= {"coordinator.log", "agent.log", "redis.log"}
    texts = {str(p): p.read_text(errors="replace") for p in logs if p.is_file()}
    # The logs are not empty: INFO start-up lines name the broker, masked.
    assert any("127.0.0.1" in text for text in texts.values())
    texts.update(outputs)
    assert _leaks(texts, secret_values) == []
