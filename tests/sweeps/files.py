"""Sweep files for tests: copies of sample models under ``<folder>/models`` and a
``<folder>/sweep.yaml`` over them (docs/sweeps.md), so a test names only the keys it is about."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path


def sweep_file(folder: Path, samples: dict[str, Path], models: Iterable[str], **keys: str) -> Path:
    """``folder/sweep.yaml`` with ``keys`` (YAML values as written, in this order) and
    ``models: [{path: models/*.mlpackage}]`` over copies of the sample ``models``."""
    (folder / "models").mkdir(parents=True, exist_ok=True)
    for name in models:
        shutil.copytree(samples[name], folder / "models" / name)
    body = "".join(f"{key}: {value}\n" for key, value in keys.items())
    path = folder / "sweep.yaml"
    path.write_text(body + "models:\n  - path: models/*.mlpackage\n", encoding="utf-8")
    return path
