"""A broker off this machine needs a password: the coordinator and the agents refuse to
start without one, with one line and before any connection; a wrong one is one line too,
with the password masked."""

from __future__ import annotations

import time

import pytest

from orchestrator.errors import ConfigError
from orchestrator.protocol.transport import create_app
from orchestrator.settings import broker_auth_problem, load_settings
from tests.cli.conftest import anefarm, assert_one_line_error

# TEST-NET-1 (RFC 5737): never routed, so a test that tried to connect would hang, not pass.
REMOTE = "192.0.2.10"


@pytest.mark.parametrize(
    "url",
    [
        f"redis://{REMOTE}:6379/0",
        f"rediss://{REMOTE}:6380/0",
        f"redis://agent@{REMOTE}:6379/0",  # a user but no password
        "redis://broker.example.org:6379/0",
        "redis://[2001:db8::1]:6379/0",
    ],
)
def test_a_remote_broker_without_a_password_is_refused(url):
    assert broker_auth_problem(url) is not None
    with pytest.raises(ConfigError) as info:
        create_app(load_settings(broker_url=url))
    assert "no password" in info.value.one_line()
    assert "ANEFARM_BROKER_URL" in info.value.one_line()


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/0",
        "redis://127.0.0.2:6379/0",
        "redis://localhost:6379/0",
        "redis://[::1]:6379/0",
        "redis+socket:///run/anefarm/redis.sock",
        f"redis://:s3cret-pw@{REMOTE}:6379/0",
        f"rediss://agent:s3cret-pw@{REMOTE}:6380/0?ssl_cert_reqs=required",
    ],
)
def test_loopback_or_a_password_is_accepted(url):
    assert broker_auth_problem(url) is None
    assert create_app(load_settings(broker_url=url)).conf.broker_url == url


@pytest.mark.parametrize(
    "command",
    [["agent", "--simulate", "iPhone11,8=1"], ["coordinator"]],
    ids=["agent", "coordinator"],
)
def test_the_commands_refuse_a_remote_broker_without_a_password_in_one_line(tmp_path, command):
    started = time.monotonic()
    out = anefarm(*command, home=tmp_path / "home", ANEFARM_BROKER_URL=f"redis://{REMOTE}:6379/0")
    assert_one_line_error(out, "is not on this machine", "no password", "ANEFARM_BROKER_URL")
    # Refused before any connection: an unroutable address would take the connect timeout.
    assert time.monotonic() - started < 20


@pytest.mark.parametrize(
    "command",
    [["agent", "--simulate", "iPhone11,8=1"], ["coordinator"]],
    ids=["agent", "coordinator"],
)
def test_a_wrong_password_is_one_line_without_the_password(tmp_path, secure_redis, command):
    wrong = "wrong-" + secure_redis.passwords["agent"]
    url = secure_redis.url("agent", password=wrong)
    out = anefarm(*command, home=tmp_path / "home", ANEFARM_BROKER_URL=url)
    line = assert_one_line_error(out, "refused the password", "ANEFARM_BROKER_URL", secret=wrong)
    assert "***" in line
