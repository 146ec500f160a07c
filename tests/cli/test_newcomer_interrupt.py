"""Ctrl-C half-way through `make demo`: the terminal's SIGINT reaches the coordinator and
agent children too, and when one of them ended before `anefarm demo` saw its own
KeyboardInterrupt, the demo said "a child process exited early (orchestrator agent)" and
exited 1 (make: Error 1). A child ended by SIGINT is the person's interrupt: exit 130,
job cancelled (tests/faults/test_interrupt.py walks that path end to end)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.errors import ServiceError
from orchestrator.local import _check_alive


def _ended(*code: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-c", *code])
    proc.wait(timeout=30)
    return proc


def test_a_child_ended_by_sigint_is_the_persons_interrupt(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    child.send_signal(signal.SIGINT)
    child.wait(timeout=30)
    assert child.returncode in (-signal.SIGINT, 130)
    with pytest.raises(KeyboardInterrupt):
        _check_alive([child], tmp_path)


def test_a_child_that_exits_130_is_interrupted_too(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        _check_alive([_ended("raise SystemExit(130)")], tmp_path)


def test_a_child_that_fails_is_still_an_early_exit(tmp_path: Path) -> None:
    with pytest.raises(ServiceError, match="exited early"):
        _check_alive([_ended("raise SystemExit(1)")], tmp_path)


def test_children_still_running_are_fine(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _check_alive([child], tmp_path)
    finally:
        child.kill()
        child.wait()


def test_ctrl_c_inside_a_command_says_interrupted_and_exits_130(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Typer turned it into a silent Exit(130): `submit --wait` ended with no last line.
    from orchestrator import report
    from orchestrator.cli import main

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setenv("ANEFARM_HOME", str(tmp_path))
    monkeypatch.setattr(report, "job_status", interrupted)
    with pytest.raises(SystemExit) as exited:
        main(["status", "0b7e2c1a"])
    assert exited.value.code == 130
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == "anefarm: interrupted" and "Traceback" not in err
