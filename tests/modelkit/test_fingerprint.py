"""One sha256 per model: inspect, lint, the artifact store and submit all give the same one."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.artifacts import ArtifactStore
from orchestrator.artifacts.store import artifact_digest
from orchestrator.modelkit import inspect_model
from tests.modelkit.conftest import run_cli


def _artifacts_add(path: Path, home: Path) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "orchestrator", "artifacts", "add", str(path)],
        capture_output=True, text=True, check=False,
        env={**os.environ, "ANEFARM_HOME": str(home)},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.parametrize("name", ["conv10x10.mlpackage", "lstm_nn.mlmodel"])
def test_every_command_gives_the_same_sha256(samples, tmp_path, name):
    model = samples[name]
    inspected = json.loads(run_cli("inspect", "--json", str(model)).stdout)
    linted = json.loads(run_cli("lint", "--json", "--chip", "A12", str(model)).stdout)
    added = _artifacts_add(model, tmp_path / "home")
    stored = ArtifactStore(tmp_path / "store", 10**8).add(model)
    assert inspected["sha256"] == linted["sha256"] == added == stored.sha256
    assert inspect_model(model).sha256 == stored.sha256 == artifact_digest(model)[0]
    assert len(inspected["content_sha256"]) == 64
    # the store verifies blobs by that very hash: the bytes hashed are the bytes stored
    assert ArtifactStore(tmp_path / "store", 10**8).verify(stored.sha256) == stored.path


def test_an_mlmodel_sha256_is_the_sha256_of_its_file(samples):
    import hashlib

    model = samples["conv10x10_nn.mlmodel"]
    assert inspect_model(model).sha256 == hashlib.sha256(model.read_bytes()).hexdigest()


def test_a_package_copied_elsewhere_keeps_its_sha256(samples, tmp_path):
    original = samples["mobilenetv2_block.mlpackage"]
    copy = Path(shutil.copytree(original, tmp_path / "elsewhere" / "renamed.mlpackage"))
    for file in copy.rglob("*"):  # timestamps and modes are not content
        os.utime(file, (1, 1))
        file.chmod(0o700 if file.is_dir() else 0o600)
    first, second = inspect_model(original), inspect_model(copy)
    assert first.sha256 == second.sha256 == ArtifactStore(tmp_path / "s", 10**8).add(copy).sha256
    assert first.content_sha256 == second.content_sha256


def test_any_byte_changes_the_sha256_but_only_content_changes_the_content_fingerprint(
    samples, tmp_path
):
    original = samples["conv10x10.mlpackage"]
    base = inspect_model(original)
    manifest_only = Path(shutil.copytree(original, tmp_path / "a" / original.name))
    manifest = manifest_only / "Manifest.json"
    manifest.write_text(manifest.read_text() + "\n")
    changed = inspect_model(manifest_only)
    assert changed.sha256 != base.sha256 and changed.content_sha256 == base.content_sha256

    weights = Path(shutil.copytree(original, tmp_path / "b" / original.name))
    weight_bin = weights / "Data/com.apple.CoreML/weights/weight.bin"
    data = bytearray(weight_bin.read_bytes())
    data[-1] ^= 0xFF  # the last byte of the last blob's data: still a valid blob file
    weight_bin.write_bytes(bytes(data))
    changed = inspect_model(weights)
    assert changed.sha256 != base.sha256 and changed.content_sha256 != base.content_sha256


def test_inspect_text_shows_the_whole_sha256(samples):
    model = samples["conv10x10.mlpackage"]
    out = run_cli("inspect", str(model))
    assert out.returncode == 0 and f"sha256 {inspect_model(model).sha256}" in out.stdout


@pytest.mark.parametrize("name", ["lstm.mlpackage", "lstm_nn.mlmodel"])
def test_content_fingerprint_is_the_canonical_serialisation(samples, name):
    import hashlib

    from orchestrator.modelkit.loading import load_spec

    spec, _, weights = load_spec(samples[name])
    spec.description.metadata.author = "anyone"
    canonical = type(spec)()
    canonical.CopyFrom(spec)
    canonical.description.ClearField("metadata")
    digest = hashlib.sha256(canonical.SerializeToString(deterministic=True))
    for part in weights:
        digest.update(part.read_bytes())
    assert inspect_model(samples[name]).content_sha256 == digest.hexdigest()


def test_inspect_takes_what_the_store_takes(samples, tmp_path):
    from orchestrator.errors import ArtifactError, ModelError

    unnamed = Path(shutil.copytree(samples["conv10x10.mlpackage"], tmp_path / "no-suffix"))
    with pytest.raises(ModelError, match=r"not a \.mlmodel file or \.mlpackage directory"):
        inspect_model(unnamed)
    with pytest.raises(ArtifactError, match=r"not a \.mlmodel file or \.mlpackage directory"):
        ArtifactStore(tmp_path / "store", 10**8).add(unnamed)
