"""Turn a verified artifact blob into a model path the device driver can use.

``.mlmodel`` blobs are the model file itself; ``.mlpackage`` blobs are the coordinator's
deterministic tar archive, extracted here once per sha256 (safely: no links, no paths
outside the target) and reused afterwards.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from orchestrator.errors import ArtifactError
from orchestrator.protocol import ModelFormat, ModelRef


def materialize(blob: Path, ref: ModelRef, models_dir: Path) -> Path:
    target_dir = models_dir / ref.sha256
    target = target_dir / ref.filename
    if target.exists():
        return target
    models_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".stage-", dir=models_dir))
    try:
        staged = staging / ref.filename
        if ref.format is ModelFormat.MLMODEL:
            shutil.copyfile(blob, staged)
        else:
            _extract(blob, staged)
        try:
            os.replace(staging, target_dir)
        except OSError:
            if not target.exists():  # another process won the race: fine; else real error
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _extract(archive: Path, dest: Path) -> None:
    dest.mkdir(parents=True)
    try:
        with tarfile.open(archive, "r:*") as tar:
            # The "data" filter refuses links, absolute paths and "..": archives come
            # from our own store, but an agent verifies rather than trusts.
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, OSError) as error:
        raise ArtifactError(f"cannot unpack model archive {archive.name}: {error}") from error
    # The archive may hold the package directory itself or its contents.
    children = list(dest.iterdir())
    if len(children) == 1 and children[0].is_dir() and children[0].suffix == ".mlpackage":
        inner = children[0]
        for item in inner.iterdir():
            item.rename(dest / item.name)
        inner.rmdir()
