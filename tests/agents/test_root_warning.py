"""Run as root, a farm says so once per process tree in anefarm's words, not Celery's
seven-line SecurityWarning once per worker (the coordinator, and every device worker).

Only root sees either: as another user these tests check that nothing is said.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import pytest

from orchestrator.protocol.privileges import ROOT_LINE, WARNED_ENV, warn_if_root
from tests.pipeline.farm import Farm, farm

__all__ = ["farm"]

CELERY_TEXT = "running the worker with superuser privileges"
AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


# Farm.at starts the agent's Celery workers
@pytest.mark.celery
def test_a_coordinator_and_a_three_device_agent_say_it_once_each(farm: Farm) -> None:
    farm.start_agent("iPhone11,8=2,iPhone13,2=1", name="agent-a", wait_for=3)
    coordinator = (farm.home / "coordinator.log").read_text(errors="replace")
    agent = (farm.home / "agent-a.log").read_text(errors="replace")
    for log in (coordinator, agent):  # before: 1 + 3 SecurityWarnings, 7 lines each
        assert CELERY_TEXT not in log and "SecurityWarning" not in log
    lines = [ln for ln in (coordinator + agent).splitlines() if ln.startswith("anefarm: warn")]
    assert lines == ([ROOT_LINE] * 2 if AS_ROOT else [])  # one per process tree


def test_a_child_of_a_warned_tree_stays_quiet_and_other_warnings_still_show() -> None:
    code = (
        "import warnings\n"
        "from celery.exceptions import SecurityWarning\n"
        "from orchestrator.protocol.privileges import warn_if_root\n"
        "warn_if_root()\n"
        f'warnings.warn(SecurityWarning("You\'re {CELERY_TEXT}: absolutely not"))\n'
        "warnings.warn(SecurityWarning('An entry for the specified gid was not found.'))\n"
        "warnings.warn(UserWarning('something else'))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != WARNED_ENV}
    first = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                           text=True, check=True)  # fmt: skip
    child = subprocess.run([sys.executable, "-c", code], env={**env, WARNED_ENV: "1"},
                           capture_output=True, text=True, check=True)  # fmt: skip
    for out in (first, child):
        assert CELERY_TEXT not in out.stderr
        assert "gid was not found" in out.stderr and "something else" in out.stderr
    assert first.stderr.count(ROOT_LINE) == (1 if AS_ROOT else 0)
    assert ROOT_LINE not in child.stderr


def test_the_line_is_one_line_in_the_house_form(monkeypatch, capsys) -> None:
    monkeypatch.delenv(WARNED_ENV, raising=False)
    with warnings.catch_warnings():
        warn_if_root()
    err = capsys.readouterr().err
    assert err == (ROOT_LINE + "\n" if AS_ROOT else "")
    assert "\n" not in ROOT_LINE and ROOT_LINE.startswith("anefarm: warning: running as root")
    assert "; hint: " in ROOT_LINE
