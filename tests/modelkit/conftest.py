"""A CLI runner for the modelkit tests (the sample models come from tests/conftest.py)."""

from __future__ import annotations

import subprocess
import sys


def run_cli(*args: str, user: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        capture_output=True, text=True, check=False, user=user,
    )  # fmt: skip
