"""Turn a verified artifact blob into a model path the device driver can use.

``.mlmodel`` blobs are the model file itself; ``.mlpackage`` blobs are the coordinator's
deterministic tar archive, extracted (safely: no links, no paths outside the target)
once per sha256 and reused afterwards. The path is ``<models_dir>/<sha256>/<filename>``.

Many processes share one cache: every device worker of an agent host, the coordinator's
threads. So a model is built under the per-sha256 lock (``locking.sha_lock``) in a
staging directory and appears at its path only by one atomic rename of that entry:
whoever sees the path sees a complete model, without taking the lock. The same sha256
may come under several filenames (a probe shared by two jobs, a model submitted twice
under different names): each name gets its own entry, hard-linked from the first one,
so the bytes are extracted and stored once.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from orchestrator.errors import ArtifactError
from orchestrator.modelkit.locking import sha_lock
from orchestrator.protocol import ModelFormat, ModelRef

STAGE_PREFIX = ".stage-"


def materialize(blob: Path, ref: ModelRef, models_dir: Path) -> Path:
    _check_filename(ref.filename)
    target = models_dir / ref.sha256 / ref.filename
    if target.exists():  # entries appear only by an atomic rename: present means complete
        return target
    try:
        with sha_lock(models_dir, ref.sha256):
            if not target.exists():  # another process may have built it while we waited
                _build(blob, ref, models_dir, target)
    except OSError as error:
        raise ArtifactError(
            f"cannot materialise model {ref.sha256[:12]} ({ref.filename}): {error}",
            hint=f"check free space and permissions of {models_dir}",
        ) from error
    return target


def _build(blob: Path, ref: ModelRef, models_dir: Path, target: Path) -> None:
    """Stage the model and rename it into place; the caller holds the sha256's lock."""
    models_dir.mkdir(parents=True, exist_ok=True)
    # Only the lock holder stages this sha256: older stages of it are a dead process's.
    for stale in models_dir.glob(f"{STAGE_PREFIX}{ref.sha256}-*"):
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{STAGE_PREFIX}{ref.sha256}-", dir=models_dir))
    try:
        staged = staging / ref.filename
        package = ref.format is ModelFormat.MLPACKAGE
        sibling = _sibling(target, package)
        if sibling is not None:
            _link_copy(sibling, staged)
        elif package:
            _extract(blob, staged)
        else:
            shutil.copyfile(blob, staged)
        target.parent.mkdir(exist_ok=True)
        # The entry, not the <sha256> directory: that may hold other filenames already.
        os.rename(staged, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _check_filename(name: str) -> None:
    # The filename comes from a message: it must name an entry, never a path elsewhere.
    if name in {".", ".."} or "/" in name or "\\" in name or "\0" in name:
        raise ArtifactError(
            f"model filename {name!r} is not a plain file name",
            hint="the coordinator sends the submitted file's own name",
        )


def _sibling(target: Path, package: bool) -> Path | None:
    """A complete entry of the same sha256 under another filename, if there is one."""
    if not target.parent.is_dir():
        return None
    for entry in sorted(target.parent.iterdir()):
        if not entry.name.startswith(".") and entry.is_dir() == package:
            return entry
    return None


def _link_copy(source: Path, dest: Path) -> None:
    """``dest`` as a copy of ``source`` made of hard links: no bytes copied. Nobody writes
    into a materialised model (drivers read, push or compile elsewhere), so sharing the
    files' inodes is safe. Falls back to copying where links are refused."""
    if source.is_file():
        _link_file(source, dest)
        return
    dest.mkdir()
    for dirpath, dirnames, filenames in os.walk(source):
        rel = Path(dirpath).relative_to(source)
        for name in dirnames:
            (dest / rel / name).mkdir()
        for name in filenames:
            _link_file(Path(dirpath) / name, dest / rel / name)


def _link_file(source: Path, dest: Path) -> None:
    try:
        os.link(source, dest)
    except OSError:  # a file system without hard links, or a link-count limit
        shutil.copyfile(source, dest)


def _extract(archive: Path, dest: Path) -> None:
    # Archives come from our own store, but an agent verifies rather than trusts.
    unpack_package(archive, dest, what=f"model archive {archive.name}")


def unpack_package(archive: Path, dest: Path, *, what: str, compressed: bool = True) -> None:
    """An .mlpackage archive unpacked as the package directory ``dest`` (made here): the
    "data" filter refuses links, absolute paths and "..". ``compressed=False`` reads plain
    tar only, so what unpacks is no larger than the archive (an upload's size limit holds)."""
    dest.mkdir(parents=True)
    try:
        with tarfile.open(archive, "r:*" if compressed else "r:") as tar:
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, OSError) as error:
        raise ArtifactError(f"cannot unpack {what}: {error}") from error
    # The archive may hold the package directory itself or its contents.
    children = list(dest.iterdir())
    if len(children) == 1 and children[0].is_dir() and children[0].suffix == ".mlpackage":
        inner = children[0]
        for item in inner.iterdir():
            item.rename(dest / item.name)
        inner.rmdir()
