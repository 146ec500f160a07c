"""Sample models for the fault tests, written once per session (small inputs)."""

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from orchestrator import modelkit

    out = tmp_path_factory.mktemp("samples")
    return {p.name: p for p in modelkit.write_samples(out, small=True)}
