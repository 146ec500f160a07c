"""``anefarm doctor`` when the broker is wrong: it says what it could not check (it used
to leave those lines out, so the "ok" lines below read as if the agents were fine), a
URL without a password for a Redis that wants one is named as such (it used to say
"refused the password" with Redis's HELLO message), and a URL that does not parse is a
finding, not an error."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import REDIS_PASSWORD, anefarm


def _findings(out) -> dict[str, dict[str, str]]:
    body = json.loads(out.stdout)
    return {finding["check"]: finding for finding in body["findings"]}


def test_unreachable_broker_names_its_url_and_what_was_not_checked(
    home: Path, closed_port: int
) -> None:
    url = f"redis://127.0.0.1:{closed_port}/0"
    out = anefarm("doctor", "--json", home=home, ANEFARM_BROKER_URL=url)
    assert out.returncode == 1, (out.stdout, out.stderr)
    findings = _findings(out)
    assert findings["broker-reachable"]["level"] == "fix"
    assert url in findings["broker-reachable"]["message"]
    skipped = findings["broker-checks"]
    assert skipped["level"] == "warn"
    assert "clocks" in skipped["message"] and "backlog" in skipped["message"]
    assert "clock-skew" not in findings  # not claimed either way
    text = anefarm("doctor", home=home, ANEFARM_BROKER_URL=url)
    assert any(
        line.startswith("warn broker-checks: not checked") for line in text.stdout.splitlines()
    )


def test_a_url_without_password_for_a_redis_that_wants_one(home: Path, password_redis: str) -> None:
    out = anefarm("doctor", "--json", home=home, ANEFARM_BROKER_URL=f"redis://{password_redis}/0")
    finding = _findings(out)["broker-reachable"]
    assert finding["level"] == "fix"
    assert "wants a password" in finding["message"] and "HELLO" not in finding["message"]
    assert "ANEFARM_BROKER_URL" in finding["hint"]


def test_a_wrong_password_is_still_called_refused(home: Path, password_redis: str) -> None:
    url = f"redis://:not-{REDIS_PASSWORD}@{password_redis}/0"
    out = anefarm("doctor", "--json", home=home, ANEFARM_BROKER_URL=url)
    finding = _findings(out)["broker-reachable"]
    assert "refused the password" in finding["message"]
    assert f"not-{REDIS_PASSWORD}" not in out.stdout + out.stderr


def test_a_broker_url_that_does_not_parse_is_a_finding(home: Path) -> None:
    out = anefarm("doctor", "--json", home=home, ANEFARM_BROKER_URL="redis://127.0.0.1:nope/0")
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    finding = _findings(out)["broker-url"]
    assert finding["level"] == "fix" and "not a Redis URL" in finding["message"]
