"""Sample models written once per session (small inputs) and a CLI runner."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from orchestrator.modelkit import write_samples

    return {p.name: p for p in write_samples(tmp_path_factory.mktemp("samples"), small=True)}


def run_cli(*args: str, user: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        capture_output=True, text=True, check=False, user=user,
    )  # fmt: skip
