"""The package archive is made without tarfile's stream (for speed), so these pin it to
the bytes tarfile writes: a model's sha256 must never change with how it is computed."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

from orchestrator.artifacts import ArtifactStore
from orchestrator.artifacts.store import artifact_digest


def _tarfile_sha256(root: Path) -> str:
    """The archive as docs/fingerprint.md defines it, written by tarfile itself."""
    members = sorted(p for p in root.rglob("*"))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for member in members:
            info = tarfile.TarInfo(member.relative_to(root).as_posix())
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            if member.is_dir():
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = member.stat().st_size, 0o644
                with member.open("rb") as src:
                    tar.addfile(info, src)
    return hashlib.sha256(buffer.getvalue()).hexdigest()


def test_the_archive_is_the_one_tarfile_writes(tmp_path):
    package = tmp_path / "edge.mlpackage"
    deep = package / ("d" * 120) / "sous-répertoire"  # a long path (PAX header), not ASCII
    deep.mkdir(parents=True)
    (package / "Manifest.json").write_text("{}")
    (package / "empty").mkdir()
    sizes = [0, 1, 511, 512, 513, 10240, 64 * 1024, 64 * 1024 + 7, 300_001]
    for size in sizes:
        (deep / f"{'f' * 90}-{size}.bin").write_bytes(bytes(i % 251 for i in range(size)))
    seen: dict[Path, bytes] = {}

    def tee(file: Path, chunk: bytes) -> None:
        seen[file] = seen.get(file, b"") + bytes(chunk)

    expected = _tarfile_sha256(package)
    assert artifact_digest(package, tee=tee)[0] == expected
    assert ArtifactStore(tmp_path / "store", 10**8).add(package).sha256 == expected
    files = [p for p in package.rglob("*") if p.is_file()]  # each seen whole, once
    assert {p: seen.get(p, b"") for p in files} == {p: p.read_bytes() for p in files}


def test_sample_packages_keep_their_sha256(samples):
    for name, path in samples.items():
        if name.endswith(".mlpackage"):
            assert artifact_digest(path)[0] == _tarfile_sha256(path), name


def test_the_op_walk_finds_every_weight_reference(samples):
    from orchestrator.modelkit.loading import load_spec
    from orchestrator.modelkit.mlprogram import program_ops
    from orchestrator.modelkit.weights import blob_refs

    for name in ("lstm.mlpackage", "mobilenetv2_block.mlpackage", "attention_linear.mlpackage"):
        spec = load_spec(samples[name])[0]
        refs: list = []
        program_ops(spec, samples[name], refs)
        assert refs and sorted(refs, key=repr) == sorted(blob_refs(spec), key=repr), name
