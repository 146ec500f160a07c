"""What a newcomer types wrong, as one line ``anefarm: error: <what> (<hint>)`` with the
documented exit code: a command line click refuses (usage, 2) and a broker URL that is
not a Redis URL at all (error, 1) — both used to print click's four-line box or call
themselves "a bug in anefarm"."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import anefarm, assert_one_line_error


def assert_one_line_usage(out, *needles: str) -> str:
    assert out.returncode == 2, (out.returncode, out.stdout, out.stderr)
    assert "Traceback" not in out.stderr and "Usage:" not in out.stderr, out.stderr
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr
    line = lines[0]
    assert line.startswith("anefarm: error: ") and line.endswith(")"), line
    for needle in needles:
        assert needle in line, (needle, line)
    return line


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["report"], ["Missing argument 'job'", "`anefarm report -h`"]),
        (["nosuchcommand"], ["No such command 'nosuchcommand'", "`anefarm -h`"]),
        (["jobs", "--limit", "0"], ["--limit", "`anefarm jobs -h`"]),
        (["alerts", "show", "abc"], ["alert_id", "`anefarm alerts show -h`"]),
        (["report", "x", "--bogus"], ["No such option: --bogus", "`anefarm report -h`"]),
    ],
    ids=["missing-argument", "unknown-command", "out-of-range", "not-an-integer", "no-option"],
)
def test_a_command_line_click_refuses_is_one_line_exit_2(
    tmp_path: Path, args: list[str], needles: list[str]
) -> None:
    assert_one_line_usage(anefarm(*args, home=tmp_path), *needles)


def test_a_group_named_alone_still_shows_its_help(tmp_path: Path) -> None:
    out = anefarm("sweep", home=tmp_path, COLUMNS="100")
    assert "Usage: anefarm sweep" in out.stdout + out.stderr
    assert "anefarm: error" not in out.stderr


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("http://127.0.0.1:6379/0", "scheme"),
        ("redis://127.0.0.1:notaport/0", "Port could not be cast"),
    ],
    ids=["http-scheme", "port-not-a-number"],
)
@pytest.mark.parametrize(
    "command",
    [["devices", "list"], ["coordinator"], ["agent", "--simulate", "iPhone11,8=1"]],
    ids=["devices-list", "coordinator", "agent"],
)
def test_a_broker_url_that_is_not_redis_is_a_setting_error(
    tmp_path: Path, url: str, needle: str, command: list[str]
) -> None:
    out = anefarm(*command, home=tmp_path, ANEFARM_BROKER_URL=url)
    line = assert_one_line_error(out, "ANEFARM_BROKER_URL", "is not a Redis URL", needle)
    assert "bug in anefarm" not in line and "no password" not in line, line
