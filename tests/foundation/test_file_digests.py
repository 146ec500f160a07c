"""The plain file digests (the agent cache check, the store's verify) are sha256 of the
file's bytes, for empty, small and multi-chunk files; a changed byte is refused."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from agents.fetch import _sha256_of
from orchestrator.artifacts import ArtifactStore
from orchestrator.errors import ArtifactError

SIZES = [0, 1, 64 * 1024, 3 * 1024 * 1024 + 7]  # around both modules' old chunk sizes


@pytest.mark.parametrize("size", SIZES)
def test_agent_cache_digest_is_the_sha256_of_the_bytes(tmp_path: Path, size: int) -> None:
    data = bytes(i % 251 for i in range(size))
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert _sha256_of(path) == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("size", SIZES[1:])
def test_store_verify_checks_the_sha256_of_the_blob(tmp_path: Path, size: int) -> None:
    model = tmp_path / "net.mlmodel"
    model.write_bytes(bytes(i % 241 for i in range(size)))
    store = ArtifactStore(tmp_path / "store", 10**8)
    stored = store.add(model)
    assert stored.sha256 == hashlib.sha256(model.read_bytes()).hexdigest()
    assert store.verify(stored.sha256) == stored.path
    stored.path.chmod(0o644)
    with stored.path.open("r+b") as blob:
        first = blob.read(1)
        blob.seek(0)
        blob.write(bytes([first[0] ^ 1]))
    with pytest.raises(ArtifactError, match="is corrupt"):
        store.verify(stored.sha256)
