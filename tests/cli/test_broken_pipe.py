"""A reader that goes away (`anefarm … | head -1`) ends the command quietly, exit 0."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize("args", [["devices", "catalog"], ["devices", "catalog", "--json"]])
def test_a_closed_pipe_ends_the_command_quietly(args: list[str]) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "COLUMNS": "80"},
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the first byte is written
    with proc.stderr:
        err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0, err
    assert err == ""
