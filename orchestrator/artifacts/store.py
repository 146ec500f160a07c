"""Models stored by the sha256 of their bytes, under ``<root>/<sha[:2]>/<sha>``.

The sha256 of a model — the one every command shows (``inspect``, ``lint``, ``artifacts
add``, the report), the database key, ``RunBatch.model.sha256``, the agents' cache key —
is the sha256 of exactly the bytes stored here (``artifact_digest`` computes it without
storing; docs/fingerprint.md):

- an ``.mlmodel``: the file's bytes, as they are;
- an ``.mlpackage``: the uncompressed tar stream Python's ``tarfile`` writes in PAX format
  of every directory and file under the package (not the package folder itself), named
  by their paths relative to it, sorted by path, with mtime 0, uid/gid 0 and empty owner
  names, mode 0755 for directories and 0644 for files (``_archive_chunks``). The
  package's own name, location, timestamps and permissions do not count, so a copy
  elsewhere has the same sha256; every byte of every file does (Manifest.json included).

A symbolic link named as the model is followed to its target, which is then what is
hashed, stored and named (the same in every command: a link is only another name for the
path). Links *inside* a package, special files, path traversal and anything over the
size limit are refused; hashing streams; a blob appears only by an atomic rename, so a
failure never leaves a partial file behind. Reads verify the hash.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from orchestrator.errors import ArtifactError

# Reads of 64 KiB: hashing dominates; 1 MiB reads allocate fresh pages each time and
# cost as much again as the hash.
CHUNK = 64 * 1024
Tee = Callable[[Path, bytes], None]
FORMATS = {".mlmodel": "mlmodel", ".mlpackage": "mlpackage"}


@dataclass(frozen=True)
class StoredArtifact:
    sha256: str
    filename: str
    format: str
    size_bytes: int
    path: Path


class _HashingWriter(io.RawIOBase):
    """A file wrapper that hashes and counts what passes through, with a size cap."""

    def __init__(self, out: IO[bytes] | io.RawIOBase, limit: int, label: str) -> None:
        self.out, self.limit, self.label = out, limit, label
        self.digest = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.size += len(data)
        if self.size > self.limit:
            raise ArtifactError(
                f"{self.label} is larger than the limit of {self.limit} bytes",
                hint="raise ANEFARM_MAX_MODEL_BYTES if this is intended",
            )
        self.digest.update(data)
        self.out.write(data)
        return len(data)


class ArtifactStore:
    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes

    def path_of(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def has(self, sha256: str) -> bool:
        return self.path_of(sha256).is_file()

    def add(self, path: Path) -> StoredArtifact:
        path, fmt, members = _checked(Path(path))
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".incoming-", dir=self.root)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as raw:
                writer = _HashingWriter(raw, self.max_bytes, path.name)
                _write_stored_form(path, fmt, members, writer)
            sha = writer.digest.hexdigest()
            target = self.path_of(sha)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        sidecar = target.with_suffix(".json")
        meta = {"filename": path.name, "format": fmt, "size_bytes": writer.size}
        if not sidecar.exists():
            sidecar.write_text(json.dumps(meta), encoding="utf-8")
        return StoredArtifact(sha, path.name, fmt, writer.size, target)

    def verify(self, sha256: str) -> Path:
        blob = self.path_of(sha256)
        if not blob.is_file():
            raise ArtifactError(f"no artifact {sha256[:12]} in {self.root}")
        with blob.open("rb") as src:
            digest = hashlib.file_digest(src, "sha256").hexdigest()
        if digest != sha256:
            raise ArtifactError(
                f"artifact {sha256[:12]} is corrupt (hash mismatch)", hint="add the model again"
            )
        return blob


def artifact_digest(
    path: Path, max_bytes: int | None = None, *, tee: Tee | None = None
) -> tuple[str, int]:
    """The sha256 and size ``ArtifactStore.add`` would give ``path``, writing nothing;
    refuses what the store refuses (ArtifactError). ``tee(file, chunk)`` sees every file
    of a package as it is read, so a caller hashing some of them too reads them once."""
    path, fmt, members = _checked(Path(path))
    writer = _HashingWriter(_Discard(), sys.maxsize if max_bytes is None else max_bytes, path.name)
    _write_stored_form(path, fmt, members, writer, tee)
    return writer.digest.hexdigest(), writer.size


def follow_link(path: Path) -> Path:
    """``path``, or the target of the symbolic link ``path`` (fully resolved)."""
    if not path.is_symlink():
        return path
    target = path.resolve()
    if not target.exists():
        raise ArtifactError(f"{path}: a symbolic link to {target}, which does not exist")
    return target


class _Discard(io.RawIOBase):
    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        return len(data)


def _checked(given: Path) -> tuple[Path, str, list[Path]]:
    """The model path to read (a link followed), its format and, for a package, its members."""
    if not given.exists() and not given.is_symlink():
        raise ArtifactError(f"{given}: no such file or directory")
    path = follow_link(given)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ArtifactError(f"{path}: not a .mlmodel file or .mlpackage directory")
    if fmt == "mlmodel" and not path.is_file():
        raise ArtifactError(f"{path}: a .mlmodel must be a file")
    if fmt == "mlpackage" and not path.is_dir():
        raise ArtifactError(f"{path}: a .mlpackage must be a directory")
    return path, fmt, _package_members(path) if fmt == "mlpackage" else []


def _write_stored_form(
    path: Path, fmt: str, members: list[Path], out: io.RawIOBase, tee: Tee | None = None
) -> None:
    if fmt == "mlmodel":
        with path.open("rb") as src:
            while chunk := src.read(CHUNK):
                out.write(chunk)
    else:
        for chunk in _archive_chunks(path, members, tee):
            out.write(chunk)


def _package_members(root: Path) -> list[Path]:
    """Every file of a package, sorted; refuses links and special files."""
    members = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in [*dirnames, *sorted(filenames)]:
            full = Path(dirpath) / name
            if full.is_symlink():
                raise ArtifactError(f"{full}: symbolic links are not allowed inside a model")
            if not (full.is_dir() or full.is_file()):
                raise ArtifactError(f"{full}: not a regular file")
            members.append(full)
    if not any(m.is_file() for m in members):
        raise ArtifactError(f"{root}: an empty .mlpackage")
    return sorted(members)


def _archive_chunks(root: Path, members: list[Path], tee: Tee | None = None) -> Iterator[bytes]:
    """The bytes ``tarfile.open(mode="w|", format=PAX_FORMAT)`` writes for ``members``
    (``addfile`` per member, then ``close``), made here because tarfile's stream copies
    every file through 16 KiB reads and a 10 KiB re-buffer: nearly as slow as the hashing
    itself. The headers are tarfile's own (``TarInfo.tobuf``); tests/modelkit/test_archive.py
    holds the bytes to tarfile's."""
    offset = 0
    for member in members:
        rel = member.relative_to(root).as_posix()
        info = tarfile.TarInfo(rel)
        info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
        is_dir = member.is_dir()
        if is_dir:
            info.type, info.mode = tarfile.DIRTYPE, 0o755
        else:
            info.size, info.mode = member.stat().st_size, 0o644
        header = info.tobuf(tarfile.PAX_FORMAT, tarfile.ENCODING, "surrogateescape")
        yield header
        offset += len(header)
        if is_dir:
            continue
        with member.open("rb") as src:
            left = info.size
            while left > 0:  # exactly the size in the header, as tarfile.copyfileobj
                chunk = src.read(min(CHUNK, left))
                if not chunk:
                    raise OSError("unexpected end of data")  # what tarfile raises
                if tee is not None:
                    tee(member, chunk)
                yield chunk
                left -= len(chunk)
        padding = -info.size % tarfile.BLOCKSIZE
        if padding:
            yield tarfile.NUL * padding
        offset += info.size + padding
    # TarFile.close: two zero blocks, then zeros to a whole record.
    end = offset + 2 * tarfile.BLOCKSIZE
    yield tarfile.NUL * (2 * tarfile.BLOCKSIZE + (-end % tarfile.RECORDSIZE))
