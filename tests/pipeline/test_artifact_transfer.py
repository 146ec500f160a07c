"""Agents fetch models by sha256, from a shared directory or the coordinator's web app
(``GET /artifacts/<sha256>``), verify them while streaming, and never cache a corrupt or
partial download."""

import hashlib
import io
import tarfile

import pytest

from agents.fetch import ArtifactFetcher, blob_relpath
from orchestrator.errors import ArtifactError
from orchestrator.modelkit.materialize import materialize
from orchestrator.protocol import ModelFormat, ModelRef
from orchestrator.settings import load_settings
from orchestrator.store.migrate import upgrade
from orchestrator.web.server import WebServer


def put_blob(root, data: bytes) -> str:
    sha = hashlib.sha256(data).hexdigest()
    path = root / blob_relpath(sha)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return sha


def ref_for(sha, data, *, filename="m.mlmodel", fmt=ModelFormat.MLMODEL, location=None):
    return ModelRef(
        sha256=sha, filename=filename, format=fmt, size_bytes=len(data), location=location
    )


@pytest.fixture
def store(tmp_path):
    root = tmp_path / "store"
    root.mkdir()
    return root


def test_fetch_from_shared_directory_and_cache(store, tmp_path):
    data = b"model bytes" * 1000
    sha = put_blob(store, data)
    fetcher = ArtifactFetcher(tmp_path / "cache")
    blob = fetcher.fetch(ref_for(sha, data, location=store.as_uri()))
    assert blob.read_bytes() == data
    (store / blob_relpath(sha)).unlink()  # the cache answers now
    assert fetcher.fetch(ref_for(sha, data, location=store.as_uri())) == blob


def test_corrupt_source_is_refused_and_nothing_cached(store, tmp_path):
    data = b"original"
    sha = put_blob(store, data)
    (store / blob_relpath(sha)).write_bytes(b"tampered")
    cache = tmp_path / "cache"
    with pytest.raises(ArtifactError, match="verification"):
        ArtifactFetcher(cache).fetch(ref_for(sha, data, location=store.as_uri()))
    assert not [p for p in cache.rglob("*") if p.is_file()]


def test_http_with_bearer_token(store, tmp_path):
    data = b"\x00\x01" * 50_000
    sha = put_blob(store, data)
    database = f"sqlite:///{tmp_path / 'anefarm.db'}"
    upgrade(database)
    settings = load_settings(
        home=tmp_path, database_url=database, artifact_dir=store, artifact_token="s3cret"
    )
    server = WebServer(settings, "127.0.0.1", 0, log_requests=False).start()
    try:
        ok = ArtifactFetcher(tmp_path / "c1", token="s3cret").fetch(
            ref_for(sha, data, location=server.url)
        )
        assert ok.read_bytes() == data
        with pytest.raises(ArtifactError, match="401"):
            ArtifactFetcher(tmp_path / "c2", token="wrong").fetch(
                ref_for(sha, data, location=server.url)
            )
        missing = "b" * 64
        with pytest.raises(ArtifactError, match="404"):
            ArtifactFetcher(tmp_path / "c3", token="s3cret").fetch(
                ref_for(missing, data, location=server.url)
            )
    finally:
        server.stop()


def test_agent_setting_overrides_message_location(store, tmp_path):
    data = b"abc"
    sha = put_blob(store, data)
    fetcher = ArtifactFetcher(tmp_path / "cache", base_url=store.as_uri())
    assert fetcher.fetch(ref_for(sha, data, location="file:///nonexistent")).read_bytes() == data


def test_no_location_is_a_clear_error(tmp_path):
    with pytest.raises(ArtifactError) as info:
        ArtifactFetcher(tmp_path).fetch(ref_for("c" * 64, b"x"))
    assert "ANEFARM_ARTIFACT_URL" in info.value.one_line()


def _archive(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, body in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return buf.getvalue()


def test_materialize_package_archive(tmp_path):
    data = _archive({"Manifest.json": b"{}", "Data/com.apple.CoreML/model.mlmodel": b"spec"})
    blob = tmp_path / "blob"
    blob.write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    ref = ref_for(sha, data, filename="net.mlpackage", fmt=ModelFormat.MLPACKAGE)
    path = materialize(blob, ref, tmp_path / "models")
    assert path.name == "net.mlpackage"
    assert (path / "Manifest.json").read_bytes() == b"{}"
    assert materialize(blob, ref, tmp_path / "models") == path  # reused


def test_materialize_refuses_traversal(tmp_path):
    data = _archive({"../evil": b"x"})
    blob = tmp_path / "blob"
    blob.write_bytes(data)
    ref = ref_for(
        hashlib.sha256(data).hexdigest(), data, filename="e.mlpackage", fmt=ModelFormat.MLPACKAGE
    )
    with pytest.raises(ArtifactError):
        materialize(blob, ref, tmp_path / "models")
    assert not (tmp_path / "evil").exists()
    assert not list((tmp_path / "models").iterdir())
