"""Fetch model artifacts by sha256 for an agent: from a shared directory or over HTTP.

Messages carry ids and hashes, never model bytes. An agent downloads the stored blob
(``.mlmodel`` bytes, or the deterministic archive of an ``.mlpackage``) once, verifies
its sha256 while streaming, and keeps it in its cache; a corrupt or truncated download
never enters the cache. The device workers of a host share the cache: a blob is
downloaded under its sha256's lock (``orchestrator.modelkit.locking``) and appears only
by an atomic rename.

A blob is hashed once per cache entry, not once per batch or per process: the process
that verifies it leaves a stamp beside the cache (``.<cache>.verified/<sha256>``) naming
the file it verified (inode, size, modification time); any process that finds the stamp
matching the file trusts it. A file replaced or rewritten no longer matches its stamp and
is hashed again. While a batch runs, :class:`Prefetcher` fetches the models of the
batches waiting next in the device's queues (docs/performance.md).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlparse

import httpx

from orchestrator.errors import ArtifactError
from orchestrator.modelkit.locking import sha_lock
from orchestrator.protocol import ModelRef

CHUNK = 1024 * 1024
log = logging.getLogger(__name__)


def blob_relpath(sha256: str) -> Path:
    """Layout shared with the coordinator's artifact store: ``<sha[:2]>/<sha>``."""
    return Path(sha256[:2]) / sha256


class ArtifactFetcher:
    def __init__(
        self,
        cache_dir: Path,
        *,
        base_url: str | None = None,
        token: str | None = None,
        timeout_s: float = 120.0,
    ) -> None:
        self.cache_dir = cache_dir
        self.base_url = base_url  # the agent's own setting wins over the message's location
        self.token = token
        self.timeout_s = timeout_s
        # Blobs this process knows verified: no stamp to read for them.
        self._verified: set[str] = set()
        # One HTTP client (its connections kept) per process: a forked child never uses
        # the sockets of the client its parent opened.
        self._http: httpx.Client | None = None
        self._http_pid = 0

    def fetch(self, ref: ModelRef) -> Path:
        """Path of the verified blob in the cache, downloading it if needed."""
        target = self.cache_dir / blob_relpath(ref.sha256)
        if ref.sha256 in self._verified and target.exists():
            return target
        if _stamp_matches(self.stamp_path(ref.sha256), target):
            self._verified.add(ref.sha256)  # verified by this or another process
            return target
        try:
            # Every device worker of the host shares this cache: one downloads, the
            # others wait and then find the blob there.
            with sha_lock(self.cache_dir, ref.sha256):
                stamp = self.stamp_path(ref.sha256)
                if not _stamp_matches(stamp, target):
                    if not (target.exists() and _sha256_of(target) == ref.sha256):
                        self._download(ref, target)
                    _write_stamp(stamp, target)
        except OSError as error:
            raise ArtifactError(
                f"cannot store model {ref.sha256[:12]} in the agent cache: {error}",
                hint=f"check free space and permissions of {self.cache_dir}",
            ) from error
        self._verified.add(ref.sha256)
        return target

    def stamp_path(self, sha256: str) -> Path:
        """Where the stamp of a verified blob lives: beside the cache, never in it."""
        return self.cache_dir.parent / f".{self.cache_dir.name}.verified" / sha256

    def http(self) -> httpx.Client:
        if self._http is None or self._http_pid != os.getpid():
            self._http, self._http_pid = httpx.Client(timeout=self.timeout_s), os.getpid()
            # Its kept connections close with the fetcher, not whenever the GC gets to them.
            weakref.finalize(self, self._http.close)
        return self._http

    def _download(self, ref: ModelRef, target: Path) -> None:
        """Download, verify and atomically put the blob at ``target``. A corrupt entry
        there is replaced by the rename, never unlinked first: another process may be
        reading it through a path it was given a moment ago."""
        base = self.base_url or ref.location
        if not base:
            raise ArtifactError(
                f"model {ref.sha256[:12]} has no location and no artifact URL is configured",
                hint="set ANEFARM_ARTIFACT_URL on the agent",
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".part-", dir=target.parent)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                digest = self._copy(base, ref.sha256, out)
            if digest != ref.sha256:
                raise ArtifactError(
                    f"model {ref.sha256[:12]} failed verification (got {digest[:12]})",
                    hint="the artifact store is corrupt or the download was tampered with",
                )
            if tmp.stat().st_size != ref.size_bytes:
                raise ArtifactError(f"model {ref.sha256[:12]} has the wrong size")
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)

    def _copy(self, base: str, sha256: str, out: object) -> str:
        parsed = urlparse(base)
        digest = hashlib.sha256()
        write = out.write  # type: ignore[attr-defined]
        if parsed.scheme == "file":
            source = Path(unquote(parsed.path)) / blob_relpath(sha256)
            if not source.is_file():
                raise ArtifactError(f"model {sha256[:12]} not found in {source.parent.parent}")
            with source.open("rb") as src:
                while chunk := src.read(CHUNK):
                    digest.update(chunk)
                    write(chunk)
            return digest.hexdigest()
        if parsed.scheme in {"http", "https"}:
            url = base.rstrip("/") + f"/artifacts/{sha256}"
            headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
            try:
                with self.http().stream("GET", url, headers=headers) as resp:
                    if resp.status_code != 200:
                        raise ArtifactError(
                            f"artifact server answered {resp.status_code} for {sha256[:12]}",
                            hint="check ANEFARM_ARTIFACT_TOKEN"
                            if resp.status_code == 401
                            else None,
                        )
                    for chunk in resp.iter_bytes(CHUNK):
                        digest.update(chunk)
                        write(chunk)
            except httpx.HTTPError as error:
                raise ArtifactError(f"cannot download model {sha256[:12]}: {error}") from error
            return digest.hexdigest()
        raise ArtifactError(
            f"unsupported artifact location {base!r}", hint="use file:// or http(s)://"
        )


def _identity(path: Path) -> str:
    info = path.stat()
    return f"{info.st_ino} {info.st_size} {info.st_mtime_ns}"


def _stamp_matches(stamp: Path, target: Path) -> bool:
    """True when ``stamp`` names the very file at ``target`` (same inode, size, mtime)."""
    try:
        return stamp.read_text() == _identity(target)
    except (OSError, ValueError):
        return False  # no stamp, no file, or a stamp being written: verify under the lock


def _write_stamp(stamp: Path, target: Path) -> None:
    """Record ``target`` as verified; the caller holds the sha256's lock. Written to a
    temporary file and renamed: a reader sees a whole stamp or none."""
    stamp.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".part-", dir=stamp.parent)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(_identity(target))
        os.replace(tmp, stamp)
    finally:
        Path(tmp).unlink(missing_ok=True)


class Prefetcher:
    """Runs a prefetch (find the next batches' models, fetch them) in one background thread
    while the device runs a batch, so the next batch finds its model in the cache. One at a
    time, and never across processes: the thread belongs to the process that started it
    (a forked or spawned pool child starts its own). Best effort: a failure is logged, and
    the batch that needs the model fetches it itself and reports what goes wrong."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._pid = 0

    def start(self, work: Callable[[], object]) -> bool:
        """Run ``work`` in the background; False if the last one is still under way."""
        if self.busy():
            return False
        self._pid = os.getpid()
        self._thread = threading.Thread(target=self._run, args=(work,), daemon=True,
                                        name="anefarm-prefetch")  # fmt: skip
        self._thread.start()
        return True

    def busy(self) -> bool:
        return self._pid == os.getpid() and self._thread is not None and self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> None:
        if self._pid == os.getpid() and self._thread is not None:
            self._thread.join(timeout)

    @staticmethod
    def _run(work: Callable[[], object]) -> None:
        try:
            work()
        except Exception as error:  # noqa: BLE001 - the batch that needs it will say
            log.info("prefetching the next models failed: %s", error)


def _sha256_of(path: Path) -> str:
    with path.open("rb") as src:
        return hashlib.file_digest(src, "sha256").hexdigest()


def clear_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
