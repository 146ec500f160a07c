"""``anefarm doctor`` flags each misconfiguration a deployment can have, one line each,
and exits 1 when something must be fixed; a healthy deployment passes. Real Redis
(deploy/'s users) and real databases; the misconfigurations are introduced one at a time."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator.ops.doctor import MAX_CLOCK_SKEW_S, Finding, Level, diagnose, must_fix
from orchestrator.protocol.livestate import AGENT_KEY
from orchestrator.settings import load_settings
from orchestrator.store.migrate import head_revision, upgrade
from tests.cli.conftest import anefarm
from tests.security.conftest import SecureRedis

REMOTE = "192.0.2.10"  # TEST-NET-1: never routed


@pytest.fixture
def migrated(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'home' / 'anefarm.db'}"
    (tmp_path / "home").mkdir(exist_ok=True)
    upgrade(url)
    return url


def _beat(server: SecureRedis, name: str, *, offset_s: float, ttl_s: int = 30) -> None:
    """An agent heartbeat as agents write it, from a clock ``offset_s`` off ours."""
    client = server.client("agent")
    body = {"name": name, "host": "mac", "simulated": True, "last_seen": time.time() + offset_s}
    client.set(AGENT_KEY.format(name=name), json.dumps(body), ex=ttl_s)
    client.close()


def _by_check(findings: list[Finding]) -> dict[str, list[Finding]]:
    out: dict[str, list[Finding]] = {}
    for finding in findings:
        out.setdefault(finding.check, []).append(finding)
    return out


def _fixes(findings: list[Finding]) -> set[str]:
    return {f.check for f in findings if f.level is Level.FIX}


def _diagnose(tmp_path: Path, **settings: Any) -> list[Finding]:
    return diagnose(load_settings(home=tmp_path / "home", **settings))


def test_a_healthy_deployment_has_nothing_to_fix(tmp_path, secure_redis, migrated):
    _beat(secure_redis, "mac-1", offset_s=0.2)
    findings = _diagnose(tmp_path, broker_url=secure_redis.url(), database_url=migrated)
    assert not must_fix(findings), [f.line() for f in findings]
    checks = _by_check(findings)
    for check in ("broker-auth", "broker-reachable", "database-reachable", "database-migrated",
                  "clock-skew", "disk"):  # fmt: skip
        assert checks[check][0].level is Level.OK, checks[check]
    assert "broker-persistence" not in checks  # deploy/redis/anefarm.conf turns AOF on


def test_the_cli_prints_one_line_per_finding_and_exits_0_or_1(tmp_path, secure_redis, migrated):
    _beat(secure_redis, "mac-1", offset_s=0)
    home = tmp_path / "home"
    ok = anefarm("doctor", home=home, ANEFARM_BROKER_URL=secure_redis.url(),
                 ANEFARM_DATABASE_URL=migrated)  # fmt: skip
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert all(line.split()[0] in {"ok", "warn"} for line in ok.stdout.splitlines()), ok.stdout
    bad = anefarm("doctor", "--json", home=home,
                  ANEFARM_BROKER_URL=secure_redis.url(password="not-it-" + "x" * 12),
                  ANEFARM_DATABASE_URL=migrated)  # fmt: skip
    assert bad.returncode == 1, bad.stdout + bad.stderr
    body = json.loads(bad.stdout)
    assert body["ok"] is False
    wrong = [f for f in body["findings"] if f["check"] == "broker-reachable"]
    assert wrong[0]["level"] == "fix" and "refused the password" in wrong[0]["message"]
    assert "not-it-" not in bad.stdout + bad.stderr
    assert "Traceback" not in bad.stderr


def test_a_remote_broker_without_password_or_tls(tmp_path, migrated):
    findings = _diagnose(tmp_path, broker_url=f"redis://{REMOTE}:6379/0", database_url=migrated)
    assert {"broker-auth", "broker-tls", "broker-reachable"} <= _fixes(findings)
    auth = _by_check(findings)["broker-auth"][0]
    assert "no password" in auth.message and "ANEFARM_BROKER_URL" in (auth.hint or "")


def test_a_remote_broker_with_a_password_but_no_tls(tmp_path, migrated):
    url = f"redis://agent:pw-{'z' * 16}@{REMOTE}:6379/0"
    findings = _diagnose(tmp_path, broker_url=url, database_url=migrated)
    assert "broker-tls" in _fixes(findings) and "broker-auth" not in _fixes(findings)
    assert all("z" * 16 not in f.line() for f in findings)  # the password is masked


def test_a_broker_without_an_append_only_file_is_a_warning(tmp_path, redis_url, migrated):
    findings = _diagnose(tmp_path, broker_url=redis_url, database_url=migrated)
    persistence = _by_check(findings)["broker-persistence"][0]
    assert persistence.level is Level.WARN and "appendonly yes" in persistence.message


def test_a_database_that_was_never_migrated(tmp_path, secure_redis):
    (tmp_path / "home").mkdir()
    path = tmp_path / "home" / "empty.db"
    sqlite3.connect(path).close()
    findings = _diagnose(tmp_path, broker_url=secure_redis.url(), database_url=f"sqlite:///{path}")
    migrated = _by_check(findings)["database-migrated"][0]
    assert migrated.level is Level.FIX and "no anefarm tables" in migrated.message
    assert "anefarm db upgrade" in (migrated.hint or "")


def test_a_database_behind_this_release(tmp_path, secure_redis):
    (tmp_path / "home").mkdir()
    url = f"sqlite:///{tmp_path / 'home' / 'old.db'}"
    upgrade(url, revision="0001")
    findings = _diagnose(tmp_path, broker_url=secure_redis.url(), database_url=url)
    migrated = _by_check(findings)["database-migrated"][0]
    assert migrated.level is Level.FIX
    assert "revision 0001" in migrated.message and head_revision() in migrated.message


def test_no_database_file_at_all(tmp_path, secure_redis):
    url = f"sqlite:///{tmp_path / 'home' / 'missing.db'}"
    findings = _diagnose(tmp_path, broker_url=secure_redis.url(), database_url=url)
    assert "database-migrated" in _fixes(findings)
    assert not (tmp_path / "home" / "missing.db").exists()  # doctor looked, created nothing


def test_a_remote_postgres_without_password_or_sslmode(tmp_path):
    url = f"postgresql+psycopg://anefarm@{REMOTE}:5432/anefarm"
    findings = _diagnose(tmp_path, database_url=url)
    assert {"database-auth", "database-tls"} <= _fixes(findings)
    ok_url = f"postgresql+psycopg://anefarm:pw-{'y' * 16}@{REMOTE}:5432/anefarm?sslmode=verify-full"
    static = {f.check for f in _diagnose(tmp_path, database_url=ok_url) if f.level is Level.FIX}
    assert not {"database-auth", "database-tls"} & static


@pytest.mark.parametrize("offset_s", [-120.0, 90.0])
def test_an_agent_clock_off_the_coordinator_s(tmp_path, secure_redis, migrated, offset_s):
    _beat(secure_redis, "mac-ok", offset_s=0.0)
    _beat(secure_redis, "mac-skewed", offset_s=offset_s)
    findings = _diagnose(tmp_path, broker_url=secure_redis.url(), database_url=migrated)
    skewed = [f for f in _by_check(findings)["clock-skew"] if f.level is Level.FIX]
    assert len(skewed) == 1 and "mac-skewed" in skewed[0].message, skewed
    side = "behind" if offset_s < 0 else "ahead of"
    assert f"{abs(offset_s):.0f} s {side}" in skewed[0].message
    assert abs(offset_s) > MAX_CLOCK_SKEW_S


def test_too_little_disk_for_the_artifact_store(tmp_path, secure_redis, migrated):
    findings = _diagnose(tmp_path, broker_url=secure_redis.url(), database_url=migrated,
                         max_model_bytes=10**18)  # fmt: skip
    disk = _by_check(findings)["disk"][0]
    assert disk.level is Level.FIX and "less than one model" in disk.message


def test_artifacts_over_http_without_a_token(tmp_path, secure_redis, migrated):
    findings = _diagnose(tmp_path, broker_url=secure_redis.url(), database_url=migrated,
                         artifact_url=f"http://{REMOTE}:8480")  # fmt: skip
    assert "artifact-token" in _fixes(findings)
    assert _by_check(findings)["artifact-tls"][0].level is Level.WARN


def test_a_results_backlog_and_quarantined_devices_are_warnings(tmp_path, secure_redis, migrated):
    from orchestrator.ops.doctor import RESULTS_BACKLOG_WARN
    from orchestrator.protocol import livestate

    admin = secure_redis.client("coordinator")
    calm = _diagnose(tmp_path, broker_url=secure_redis.url(), database_url=migrated)
    assert not {"results-backlog", "quarantine"} & set(_by_check(calm))
    admin.lpush("results", *(["{}"] * (RESULTS_BACKLOG_WARN + 1)))
    livestate.quarantine(admin, "SIM-iPhone11-8-0", "3 infra failures in a row")
    admin.close()
    findings = _diagnose(tmp_path, broker_url=secure_redis.url(), database_url=migrated)
    backlog = _by_check(findings)["results-backlog"][0]
    assert backlog.level is Level.WARN and f"{RESULTS_BACKLOG_WARN + 1} results" in backlog.message
    quarantine = _by_check(findings)["quarantine"][0]
    assert quarantine.level is Level.WARN and "SIM-iPhone11-8-0" in quarantine.message
