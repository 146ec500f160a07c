"""deploy/systemd: the coordinator's units verified by ``systemd-analyze verify`` (with
the programs they start stubbed at temporary paths), and their hardening read from the
files; the Redis drop-in and config snippets checked for what they must say."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SYSTEMD = REPO / "deploy" / "systemd"
UNITS = ["anefarm-coordinator.service", "anefarm-db-upgrade.service"]
PROGRAMS = ["/usr/local/lib/anefarm/with-secrets", "/opt/anefarm/.venv/bin/anefarm"]
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "RestrictSUIDSGID": "yes",
    "CapabilityBoundingSet": "",
}


def _unit(path: Path) -> configparser.RawConfigParser:
    # systemd allows a key more than once (LoadCredential=, Environment=): keep the last.
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text())
    return parser


def _verify(directory: Path, units: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", "verify", *(str(directory / u) for u in units)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def _staged(tmp_path: Path, rewrite: dict[str, str] | None = None) -> Path:
    """The units with the programs they start stubbed under tmp_path (verify checks that
    each ExecStart= program exists and is executable)."""
    stage = tmp_path / "units"
    stage.mkdir()
    for program in PROGRAMS:
        stub = tmp_path / "root" / program.lstrip("/")
        stub.parent.mkdir(parents=True, exist_ok=True)
        stub.write_text("#!/bin/sh\n")
        stub.chmod(0o755)
    for unit in UNITS:
        text = (SYSTEMD / unit).read_text()
        for program in PROGRAMS:
            text = text.replace(program, str(tmp_path / "root" / program.lstrip("/")))
        for old, new in (rewrite or {}).items():
            text = text.replace(old, new)
        (stage / unit).write_text(text)
    return stage


needs_systemd = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed"
)


@needs_systemd
def test_systemd_analyze_verifies_the_units(tmp_path):
    out = _verify(_staged(tmp_path), UNITS)
    assert out.returncode == 0 and out.stderr.strip() == "", out.stderr


@needs_systemd
def test_verify_would_catch_a_broken_unit(tmp_path):
    stage = _staged(tmp_path, {"ProtectSystem=strict": "ProtectSystem=bogus\nNoSuchKey=1"})
    out = _verify(stage, UNITS)
    assert "NoSuchKey" in out.stderr and "protect system" in out.stderr.lower(), out.stderr


@pytest.mark.parametrize("unit", UNITS)
def test_units_are_hardened_and_run_as_a_dedicated_user(unit):
    service = _unit(SYSTEMD / unit)["Service"]
    assert service["User"] == service["Group"] == "anefarm"
    for key, value in HARDENING.items():
        assert service.get(key) == value, f"{unit}: {key}={service.get(key)!r}"
    assert service["ExecStart"].startswith("/usr/local/lib/anefarm/with-secrets ")
    text = (SYSTEMD / unit).read_text()
    assert "LoadCredential=" in text
    assert not re.search(r"://[^/\s:]*:[^@\s/]+@", text), "a URL with a password in a unit"


def test_the_coordinator_serves_the_dashboard_after_migrations():
    unit = _unit(SYSTEMD / "anefarm-coordinator.service")
    assert unit["Service"]["ExecStart"].endswith("anefarm coordinator --serve 0.0.0.0:8480")
    assert "anefarm-db-upgrade.service" in unit["Unit"]["Requires"]
    assert "anefarm-db-upgrade.service" in unit["Unit"]["After"]
    upgrade = _unit(SYSTEMD / "anefarm-db-upgrade.service")["Service"]
    assert upgrade["Type"] == "oneshot" and upgrade["ExecStart"].endswith("anefarm db upgrade")


def test_the_redis_drop_in_renders_the_acl_from_credentials():
    drop_in = _unit(SYSTEMD / "redis-server.service.d" / "anefarm.conf")["Service"]
    assert "render-acl.sh" in drop_in["ExecStartPre"]
    assert drop_in["RuntimeDirectory"] == "anefarm-redis"
    assert drop_in["ProtectSystem"] == "strict" and drop_in["NoNewPrivileges"] == "yes"
    host = (SYSTEMD / "redis-anefarm-host.conf").read_text()
    assert "bind 127.0.0.1" in host  # plain text stays on loopback


def test_postgres_snippets_want_scram_and_tls_off_host():
    conf = (REPO / "deploy" / "postgresql" / "anefarm.conf").read_text()
    assert "password_encryption = scram-sha-256" in conf and "ssl = on" in conf
    hba = [line.split() for line in (REPO / "deploy" / "postgresql" / "pg_hba-anefarm.conf")
           .read_text().splitlines() if line and not line.startswith("#")]  # fmt: skip
    assert all(row[-1] in {"scram-sha-256", "reject"} for row in hba), hba
    remote = [row for row in hba if row[0].startswith("host") and row[3] == "0.0.0.0/0"]
    assert {row[0] for row in remote} == {"hostssl", "hostnossl"}
    assert all(row[-1] == "reject" for row in remote if row[0] == "hostnossl")


def test_sysusers_makes_a_user_without_a_shell():
    line = (SYSTEMD / "anefarm.sysusers.conf").read_text().strip().splitlines()[-1].split()
    assert line[:2] == ["u", "anefarm"] and line[-1] == "/usr/sbin/nologin"
