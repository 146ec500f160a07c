"""The demo ends with command lines that work exactly as printed (issue #12): ``make
demo`` uses its own home, so a bare ``anefarm report <job>`` would look elsewhere."""

from __future__ import annotations

import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from orchestrator.demo import FOLLOW_UP_TITLE, follow_up_lines
from orchestrator.settings import load_settings
from tests.cli.conftest import REPO_ROOT, clean_env

# A quicker demo than `make demo` (one XR on iOS 16, small models, 3 iterations) through
# the same run_demo: the XR has no compute plan, so bisection fills the compat matrix.
QUICK_DEMO = textwrap.dedent("""
    from orchestrator.demo import run_demo
    from orchestrator.settings import load_settings
    run_demo(load_settings(), farm="iPhone11,8@16.7.8=1", small=True, iterations=3)
""")


def printed_lines(stderr: str) -> list[str]:
    after = stderr.split(FOLLOW_UP_TITLE, 1)[1]
    return [line.strip() for line in after.splitlines() if line.startswith("  ")]


@pytest.mark.slow
def test_the_demo_prints_follow_up_lines_that_work_as_printed(tmp_path):
    demo_home = tmp_path / "demo-home"
    demo = subprocess.run(
        [sys.executable, "-c", QUICK_DEMO], env=clean_env(demo_home), cwd=REPO_ROOT,
        capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert demo.returncode == 0, demo.stderr[-3000:]
    lines = printed_lines(demo.stderr)
    assert [shlex.split(line)[2:3] for line in lines] == [["report"], ["report"], ["compat"],
                                                         ["jobs"]]  # fmt: skip
    # Another shell: no ANEFARM_* set, another default home, another directory.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in clean_env(tmp_path / "unused").items() if k != "ANEFARM_HOME"}
    env["HOME"] = str(tmp_path / "another-user")
    results = {}
    for line in lines:
        out = subprocess.run(["bash", "-c", line], env=env, cwd=elsewhere, capture_output=True,
                             text=True, timeout=120)  # fmt: skip
        assert out.returncode == 0, f"{line}\n{out.stderr}"
        assert "Traceback" not in out.stderr
        results[line] = out.stdout
    report, report_json, compat, jobs = (results[line] for line in lines)
    job = shlex.split(lines[0])[-1]
    assert f"job {job}" in report and f'"job": "{job}"' in report_json
    assert "matrix is empty" not in compat and "A12" in compat
    assert job in jobs
    assert not (tmp_path / "another-user").exists()  # the default home was never touched


def test_follow_up_lines_carry_an_absolute_home_and_no_password(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings(
        home=Path("relative-home"),
        database_url="postgresql+psycopg://farm:hunter22@db.example/anefarm",
    )
    lines = follow_up_lines(settings, "1234")
    words = shlex.split(lines[0])
    assert words[0] == f"ANEFARM_HOME={tmp_path / 'relative-home'}"
    assert words[1] == "ANEFARM_DATABASE_URL=postgresql+psycopg://farm:***@db.example/anefarm"
    assert Path(words[2]).is_absolute() and words[3:] == ["report", "1234"]
    assert all("hunter22" not in line for line in lines)
