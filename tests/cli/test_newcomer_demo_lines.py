"""`make demo` in a log or pipe (80 columns): "profiling 15 models on the SIMULATED farm"
ended a line and the farm spec stood alone on the next, like a sentence cut in two."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator import demo
from orchestrator.local import DEMO_FARM
from orchestrator.settings import Settings


class Stop(Exception):
    """Raised instead of profiling: only the lines before it are under test."""


def test_the_profiling_line_keeps_the_farm_on_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    samples = [tmp_path / f"m{i}.mlpackage" for i in range(15)]
    monkeypatch.setattr("orchestrator.modelkit.write_samples", lambda *a, **k: samples)

    def no_profile(*args: object, **kwargs: object) -> None:
        raise Stop

    monkeypatch.setattr(demo, "profile", no_profile)
    assert len(f"profiling 15 models on the SIMULATED farm {DEMO_FARM}") > 80
    with pytest.raises(Stop):
        demo.run_demo(Settings(home=tmp_path), out=tmp_path / "demo")
    lines = capsys.readouterr().err.splitlines()
    assert f"profiling 15 models on the SIMULATED farm {DEMO_FARM}" in lines, lines
