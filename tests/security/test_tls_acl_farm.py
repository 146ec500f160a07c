"""A job end to end through a TLS-only Redis (rediss://, a CA made by the test) with the
users of deploy/redis/users.acl.in: the coordinator host as the ``coordinator`` user with
the database, an agent host as the ``agent`` user with no database credential at all."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from tests.security.conftest import SecureRedis
from tests.security.topology import Host, run_job, wait_devices

pytestmark = [pytest.mark.slow, pytest.mark.celery]

A12 = "iPhone11,8"


def _hosts(tmp_path: Path, server: SecureRedis, database_url: str) -> tuple[Host, Host]:
    coordinator = Host("coordinator-host", tmp_path / "coordinator-home", {
        "ANEFARM_BROKER_URL": server.url("coordinator"),
        "ANEFARM_DATABASE_URL": database_url,
        "ANEFARM_HEARTBEAT_TTL_S": "6",
    })  # fmt: skip
    agent = Host("agent-host", tmp_path / "agent-home", {
        "ANEFARM_BROKER_URL": server.url("agent"),
        # Models by content from the coordinator's store (a shared mount here).
        "ANEFARM_ARTIFACT_URL": (coordinator.home / "artifacts").as_uri(),
        "ANEFARM_HEARTBEAT_TTL_S": "6",
    })  # fmt: skip
    return coordinator, agent


def test_a_job_runs_over_tls_with_an_agent_that_holds_no_database_credential(
    tmp_path, tls_redis, samples
):
    database = tmp_path / "coordinator-home" / "anefarm.db"
    coordinator, agent = _hosts(tmp_path, tls_redis, f"sqlite:///{database}")
    assert "ANEFARM_DATABASE_URL" not in agent.env
    try:
        coordinator.spawn("coordinator", "coordinator", "--loglevel", "INFO")
        agent.spawn("agent", "agent", "--simulate", f"{A12}=1", "--name", "mac-1")
        wait_devices(tls_redis.url("coordinator"), 1, [coordinator, agent])
        report = run_job(coordinator, samples["conv10x10.mlpackage"], A12, [coordinator, agent])
        assert [row["status"] for row in report["rows"]] == ["succeeded"], report
        assert report["rows"][0]["simulated"] is True
    finally:
        agent.stop()
        coordinator.stop()
    # The agent host never opened a database: none in its home, no URL in its settings.
    assert not list(agent.home.rglob("*.db")), list(agent.home.rglob("*"))
    assert database.exists()
    # TLS really was the only way in: a plain-text client is refused at the socket.
    with pytest.raises(redis.exceptions.ConnectionError):
        redis.Redis(port=tls_redis.port, socket_timeout=2).ping()


def test_the_agent_user_cannot_flush_read_other_keys_or_reconfigure(secure_redis):
    admin = secure_redis.client("coordinator")
    admin.set("anefarm-web:session:1", "someone's session")
    agent = secure_redis.client("agent")
    assert agent.ping()
    agent.set("anefarm:device:SIM-1", "{}")  # its own live state: allowed
    agent.lpush("results", "x")  # the results queue: allowed
    refused = {
        "FLUSHALL": agent.flushall,
        "FLUSHDB": agent.flushdb,
        "GET another key": lambda: agent.get("anefarm-web:session:1"),
        "KEYS": lambda: agent.keys("*"),
        "CONFIG SET": lambda: agent.config_set("appendonly", "no"),
        "ACL LIST": agent.acl_list,
        "SHUTDOWN": agent.shutdown,
    }
    for name, call in refused.items():
        with pytest.raises(redis.exceptions.NoPermissionError):
            call()
            pytest.fail(f"the agent user may {name}")
    assert admin.get("anefarm-web:session:1") == "someone's session"
    assert admin.config_get("appendonly") == {"appendonly": "yes"}  # deploy's AOF is on


def test_no_user_and_no_password_gets_nothing(secure_redis):
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(port=secure_redis.port, socket_timeout=2).ping()
    bad = redis.Redis.from_url(secure_redis.url("agent", password="not-the-password"))
    with pytest.raises(redis.exceptions.AuthenticationError):
        bad.ping()
