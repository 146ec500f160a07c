"""Fetch model artifacts by sha256 for an agent: from a shared directory or over HTTP.

Messages carry ids and hashes, never model bytes. An agent downloads the stored blob
(``.mlmodel`` bytes, or the deterministic archive of an ``.mlpackage``) once, verifies
its sha256 while streaming, and keeps it in its cache; a corrupt or truncated download
never enters the cache. The device workers of a host share the cache: a blob is
downloaded under its sha256's lock (``orchestrator.modelkit.locking``) and appears only
by an atomic rename.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlparse

import httpx

from orchestrator.errors import ArtifactError
from orchestrator.modelkit.locking import sha_lock
from orchestrator.protocol import ModelRef

CHUNK = 1024 * 1024


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
        # Blobs this process has hashed already: a worker runs the same models again and
        # again, and re-reading a large model for every batch is wasted I/O.
        self._verified: set[str] = set()

    def fetch(self, ref: ModelRef) -> Path:
        """Path of the verified blob in the cache, downloading it if needed."""
        target = self.cache_dir / blob_relpath(ref.sha256)
        if ref.sha256 in self._verified and target.exists():
            return target
        try:
            # Every device worker of the host shares this cache: one downloads, the
            # others wait and then find the blob there.
            with sha_lock(self.cache_dir, ref.sha256):
                if not (target.exists() and _sha256_of(target) == ref.sha256):
                    self._download(ref, target)
        except OSError as error:
            raise ArtifactError(
                f"cannot store model {ref.sha256[:12]} in the agent cache: {error}",
                hint=f"check free space and permissions of {self.cache_dir}",
            ) from error
        self._verified.add(ref.sha256)
        return target

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
                with httpx.stream("GET", url, headers=headers, timeout=self.timeout_s) as resp:
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


def _sha256_of(path: Path) -> str:
    with path.open("rb") as src:
        return hashlib.file_digest(src, "sha256").hexdigest()


def clear_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
