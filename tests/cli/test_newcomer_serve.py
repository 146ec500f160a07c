"""``anefarm serve`` as README's quick start runs it: the first page a newcomer opened was a
401 in JSON with nothing on the terminal saying why; the start-up lines now say how to
get in. Ctrl-C stops it with its closing line, no traceback, nothing left listening."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.cli.conftest import REPO_ROOT, clean_env

TOKEN_HINT = "anefarm tokens create --role read"


def _start(home: Path, **settings: str) -> tuple[subprocess.Popen[str], str, list[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "serve", "--port", "0"],
        env=clean_env(home, **settings), cwd=REPO_ROOT, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            pytest.fail(f"serve exited early: {proc.wait()} {''.join(lines)}")
        lines.append(line)
        found = re.search(r"anefarm web app at (http://\S+) ", line)
        if found:
            if not settings:  # the token line follows the first one
                lines.append(proc.stderr.readline())
            return proc, found.group(1), lines
    proc.kill()
    pytest.fail(f"serve did not start: {''.join(lines)}")


def _status(url: str) -> int:
    for _ in range(100):
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as error:
            return int(error.code)
        except urllib.error.URLError:
            time.sleep(0.1)  # bound, not yet accepting
    raise AssertionError(f"{url} never answered")


def _interrupt(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert "Traceback" not in err, err
    assert "anefarm web app stopped" in err, err
    return err


def test_serve_says_how_to_get_past_the_401_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    proc, url, lines = _start(tmp_path / "home")
    try:
        assert TOKEN_HINT in "".join(lines) and "ANEFARM_OPEN_READS=1" in "".join(lines)
        assert _status(url + "/") == 401
    finally:
        _interrupt(proc)
    with pytest.raises(urllib.error.URLError):  # nothing listens any more
        urllib.request.urlopen(url + "/", timeout=5)


def test_open_reads_serve_has_no_token_line_and_the_page_answers(tmp_path: Path) -> None:
    proc, url, lines = _start(tmp_path / "home", ANEFARM_OPEN_READS="1")
    try:
        assert TOKEN_HINT not in "".join(lines)
        assert _status(url + "/") == 200
    finally:
        err = _interrupt(proc)
    assert TOKEN_HINT not in err
