"""Issue #12, at the edges: every CLI command turns a broker, database or file-system
failure into one line with a hint and exit status 1, never a traceback, and never
prints a password. Each case runs the real command against a real service (or a port
nothing listens on)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.cli.conftest import REDIS_PASSWORD, anefarm, assert_one_line_error

JOB = "0b7e2c1a-5d4e-4f6a-9b8c-7d6e5f4a3b2c"
WRONG_PASSWORD = "wrong-staple-4711"


# The broker ------------------------------------------------------------------------

# The commands that talk to the broker first (submit, which also reads a model, has its own).
BROKER_COMMANDS = pytest.mark.parametrize(
    "command",
    [["devices", "list"], ["agent", "--simulate", "iPhone11,8=1"]],
    ids=["devices-list", "agent"],
)


@BROKER_COMMANDS
def test_broker_down_is_one_line_naming_the_url_and_the_setting(home, closed_port, command):
    url = f"redis://127.0.0.1:{closed_port}/0"
    out = anefarm(*command, home=home, ANEFARM_BROKER_URL=url)
    assert_one_line_error(out, f"cannot reach the broker {url}", "ANEFARM_BROKER_URL")


def test_submit_with_the_broker_down(home, closed_port, model):
    url = f"redis://127.0.0.1:{closed_port}/0"
    out = anefarm("submit", str(model), "--devices", "A12", home=home, ANEFARM_BROKER_URL=url)
    assert_one_line_error(out, f"cannot reach the broker {url}", "ANEFARM_BROKER_URL")


@BROKER_COMMANDS
def test_wrong_redis_password_is_one_line_and_masked(home, password_redis, command):
    url = f"redis://:{WRONG_PASSWORD}@{password_redis}/0"
    out = anefarm(*command, home=home, ANEFARM_BROKER_URL=url)
    line = assert_one_line_error(
        out, f"redis://:***@{password_redis}/0", "refused the password", secret=WRONG_PASSWORD
    )
    assert "ANEFARM_BROKER_URL" in line


def test_submit_with_a_wrong_redis_password(home, password_redis, model):
    url = f"redis://:{WRONG_PASSWORD}@{password_redis}/0"
    out = anefarm(
        "submit", str(model), "--devices", "A12", "--json", home=home, ANEFARM_BROKER_URL=url
    )
    assert_one_line_error(out, "refused the password", secret=WRONG_PASSWORD)
    error = json.loads(out.stdout)["error"]  # --json: the same error, structured
    assert error["kind"] == "service" and "***" in error["message"]


def test_redis_that_wants_a_password_when_none_is_given(home, password_redis):
    out = anefarm("devices", "list", home=home, ANEFARM_BROKER_URL=f"redis://{password_redis}/0")
    assert_one_line_error(out, "wants a password", "ANEFARM_BROKER_URL", secret=REDIS_PASSWORD)


# The database ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [["status", JOB], ["report", JOB], ["jobs"], ["db", "upgrade"], ["db", "current"]],
    ids=["status", "report", "jobs", "db-upgrade", "db-current"],
)
def test_postgres_unreachable_is_one_line_with_the_password_masked(home, closed_port, command):
    url = f"postgresql+psycopg://u:pg-secret-99@127.0.0.1:{closed_port}/x"
    out = anefarm(*command, home=home, ANEFARM_DATABASE_URL=url)
    assert_one_line_error(
        out,
        f"cannot reach the database postgresql+psycopg://u:***@127.0.0.1:{closed_port}/x",
        "ANEFARM_DATABASE_URL",
        secret="pg-secret-99",
    )


def test_a_one_letter_password_is_masked_too(home, closed_port):
    # Too short to scrub from free text ("p" is in "postgresql"): masked in the URL.
    url = f"postgresql+psycopg://u:p@127.0.0.1:{closed_port}/x"
    out = anefarm("status", JOB, home=home, ANEFARM_DATABASE_URL=url)
    line = assert_one_line_error(out, "postgresql+psycopg://u:***@127.0.0.1")
    assert "u:p@" not in line


@pytest.mark.parametrize(
    "command", [["status", JOB], ["jobs"], ["db", "upgrade"]], ids=["status", "jobs", "db-upgrade"]
)
def test_sqlite_in_a_directory_that_cannot_be_made(home, tmp_path, command):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n")
    url = f"sqlite:///{blocker}/sub/anefarm.db"
    out = anefarm(*command, home=home, ANEFARM_DATABASE_URL=url)
    assert_one_line_error(out, f"{blocker}/sub/anefarm.db", "ANEFARM_HOME")


def test_sqlite_in_a_missing_directory_is_created(home, tmp_path):
    url = f"sqlite:///{tmp_path}/not/yet/anefarm.db"
    out = anefarm("jobs", home=home, ANEFARM_DATABASE_URL=url)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("no jobs yet") and (tmp_path / "not" / "yet").is_dir()


@pytest.mark.parametrize("command", ["report", "status"])
def test_read_commands_on_a_fresh_home_say_no_jobs_yet(home, command):
    out = anefarm(command, JOB, home=home)
    line = assert_one_line_error(out, f"no job {JOB!r}: no jobs yet", "`anefarm jobs`")
    assert "no such table" not in line


def test_jobs_on_a_fresh_home(home):
    out = anefarm("jobs", home=home)
    assert out.returncode == 0 and out.stderr == ""
    assert out.stdout.startswith("no jobs yet")
    out = anefarm("jobs", "--json", home=home)
    assert json.loads(out.stdout) == {"jobs": [], "total": 0}


# Files and settings ----------------------------------------------------------------


def _unwritable_dir(tmp_path: Path) -> Path:
    """A directory this process cannot create entries in. Root writes anywhere a
    permission bit allows, so as root take a place the kernel refuses (sysfs)."""
    if os.geteuid() != 0:
        locked = tmp_path / "read-only"
        locked.mkdir()
        locked.chmod(0o555)
        return locked
    try:
        os.mkdir("/sys/anefarm-write-probe")
    except PermissionError:
        return Path("/sys")
    except OSError:
        pass
    else:
        os.rmdir("/sys/anefarm-write-probe")
    pytest.skip("no directory here refuses root")


def test_samples_into_a_read_only_directory(home, tmp_path):
    target = _unwritable_dir(tmp_path) / "samples"
    out = anefarm("samples", str(target), "--small", home=home)
    assert_one_line_error(out, f"cannot write to {target}", "directory you can write")


def test_samples_where_a_file_stands_for_a_directory(home, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x\n")
    out = anefarm("samples", str(blocker / "samples"), "--small", home=home)
    assert_one_line_error(out, f"cannot write to {blocker / 'samples'}", "Not a directory")


def test_an_invalid_setting_names_the_variable(home):
    out = anefarm("jobs", home=home, ANEFARM_MAX_ATTEMPTS="many")
    assert_one_line_error(out, "ANEFARM_MAX_ATTEMPTS='many'", "fix or unset ANEFARM_MAX_ATTEMPTS")


# Debugging -------------------------------------------------------------------------


def test_anefarm_debug_shows_the_traceback_and_still_the_line(home, closed_port):
    url = f"redis://:{WRONG_PASSWORD}@127.0.0.1:{closed_port}/0"
    out = anefarm("devices", "list", home=home, ANEFARM_BROKER_URL=url, ANEFARM_DEBUG="1")
    assert out.returncode == 1
    assert "Traceback (most recent call last)" in out.stderr
    assert "redis.exceptions.ConnectionError" in out.stderr
    last = out.stderr.splitlines()[-1]
    assert last.startswith("anefarm: error: cannot reach the broker redis://:***@")
