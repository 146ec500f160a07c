"""Weight blobs are checked against the spec, and symbolic links are handled alike everywhere."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import pytest

from orchestrator.artifacts import ArtifactStore
from orchestrator.errors import ArtifactError, ModelError
from orchestrator.modelkit import inspect_model
from orchestrator.modelkit.weights import HEADER_BYTES as HEADER
from orchestrator.modelkit.weights import SENTINEL, blob_refs
from tests.modelkit.conftest import run_cli

WEIGHTS = Path("Data/com.apple.CoreML/weights/weight.bin")
SPEC = Path("Data/com.apple.CoreML/model.mlmodel")


def _copy(samples: dict[str, Path], name: str, dest: Path) -> Path:
    return Path(shutil.copytree(samples[name], dest / name))


def _refs(package: Path) -> list:
    from orchestrator.modelkit.loading import load_spec

    return list(blob_refs(load_spec(package)[0]))


def _one_error_line(out) -> str:
    assert out.returncode == 1, (out.stdout, out.stderr)
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr, out.stderr
    return out.stderr


def test_truncated_weights_are_refused_naming_file_and_range(samples, tmp_path):
    package = _copy(samples, "lstm.mlpackage", tmp_path)
    weights = package / WEIGHTS
    full = weights.stat().st_size
    last = max(_refs(package), key=lambda r: r.offset)
    with weights.open("r+b") as f:
        f.truncate(last.offset + 80)  # the last blob's header whole, its data cut short
    with pytest.raises(ModelError) as caught:
        inspect_model(package)
    message = caught.value.one_line()
    assert str(package) in message and "weights/weight.bin" in message
    assert f"is {last.offset + 80} bytes but {last.owner}'s weight needs bytes" in message
    assert full > last.offset + 80
    for command in (["inspect"], ["lint", "--chip", "A12"], ["inspect", "--json"]):
        out = run_cli(*command, str(package))
        assert "weight.bin is" in _one_error_line(out) and str(package) in out.stderr


def test_cut_to_a_fraction_reports_the_first_missing_blob_and_how_many_more(samples, tmp_path):
    package = _copy(samples, "lstm.mlpackage", tmp_path)
    refs = sorted(_refs(package), key=lambda r: r.offset)
    assert len(refs) >= 3
    with (package / WEIGHTS).open("r+b") as f:
        f.truncate(refs[1].offset + 10)  # blob 0 whole, blob 1's header cut
    with pytest.raises(ModelError, match=rf"{refs[1].owner}'s blob header needs bytes") as caught:
        inspect_model(package)
    assert f"and {len(refs) - 2} more blob" in caught.value.message


def test_weights_shorter_than_the_file_header(samples, tmp_path):
    package = _copy(samples, "conv10x10.mlpackage", tmp_path)
    (package / WEIGHTS).write_bytes(b"\0" * 10)
    with pytest.raises(
        ModelError, match=r"weight\.bin is 10 bytes, shorter than its 64-byte header"
    ):
        inspect_model(package)


def test_a_corrupt_blob_header_is_refused(samples, tmp_path):
    package = _copy(samples, "conv10x10.mlpackage", tmp_path)
    ref = _refs(package)[0]
    with (package / WEIGHTS).open("r+b") as f:
        f.seek(ref.offset)
        assert struct.unpack("<I", f.read(4))[0] == SENTINEL  # the layout we read is real
        f.seek(ref.offset)
        f.write(b"\0\0\0\0")
    with pytest.raises(ModelError, match=rf"no blob header at byte {ref.offset} for {ref.owner}"):
        inspect_model(package)
    out = run_cli("lint", str(package))
    assert "sentinel 0x00000000" in _one_error_line(out)


def test_a_data_offset_past_the_end_is_refused(samples, tmp_path):
    package = _copy(samples, "conv10x10.mlpackage", tmp_path)
    ref = _refs(package)[0]
    with (package / WEIGHTS).open("r+b") as f:
        f.seek(ref.offset + 8)
        size = struct.unpack("<Q", f.read(8))[0]
        f.seek(ref.offset + 16)
        f.write(struct.pack("<Q", 10**9))
    with pytest.raises(
        ModelError, match=rf"{ref.owner}'s weight needs bytes {10**9}\.\.{10**9 + size}"
    ):
        inspect_model(package)


def test_a_weight_file_named_outside_the_package_is_refused(samples, tmp_path):
    from coremltools.proto import Model_pb2

    package = _copy(samples, "conv10x10.mlpackage", tmp_path)
    spec = Model_pb2.Model()
    spec.ParseFromString((package / SPEC).read_bytes())
    for block in spec.mlProgram.functions["main"].block_specializations.values():
        for op in block.operations:
            if op.type == "const" and op.attributes["val"].WhichOneof("value") == "blobFileValue":
                op.attributes["val"].blobFileValue.fileName = "@model_path/../../../../etc/passwd"
    (package / SPEC).write_bytes(spec.SerializeToString())
    with pytest.raises(ModelError, match="outside the package"):
        inspect_model(package)


def test_intact_models_pass_and_neural_networks_need_no_blob_check(samples):
    for name in ("conv10x10.mlpackage", "lstm.mlpackage", "lstm_nn.mlmodel"):
        assert inspect_model(samples[name]).ops


def test_submit_refuses_a_truncated_model_before_writing_anything(samples, tmp_path):
    from orchestrator.dispatch import SubmitOptions, prepare

    package = _copy(samples, "conv10x10.mlpackage", tmp_path)
    with (package / WEIGHTS).open("r+b") as f:
        f.truncate(200)
    with pytest.raises(ModelError, match=r"weight\.bin is 200 bytes"):
        prepare([package], SubmitOptions(selector="A12"), None)


# Symbolic links: one given as the model is followed (it is only another name for the
# target) by inspect, lint and the artifact store (submit, profile); links inside a
# package are refused by all of them.


@pytest.mark.parametrize("name", ["conv10x10.mlpackage", "conv10x10_nn.mlmodel"])
def test_a_symlinked_model_is_followed_by_every_command(samples, tmp_path, name):
    link = tmp_path / f"link-{name}"
    link.symlink_to(samples[name])
    inventory = inspect_model(link)
    assert inventory.sha256 == inspect_model(samples[name]).sha256
    stored = ArtifactStore(tmp_path / "store", 10**8).add(link)
    assert stored.sha256 == inventory.sha256 and stored.filename == name  # the target's name
    for command in (["inspect"], ["lint", "--chip", "A17 Pro"]):
        out = run_cli(*command, str(link))
        assert out.returncode in (0, 3), out.stderr  # 3: findings, never 1: refused
    out = run_cli("inspect", "--json", str(link))
    assert inventory.sha256 in out.stdout


def test_links_inside_a_package_are_refused_everywhere(samples, tmp_path):
    package = _copy(samples, "conv10x10.mlpackage", tmp_path)
    (package / "Data" / "extra").symlink_to("/etc/passwd")
    with pytest.raises(ModelError, match="symbolic links are not allowed inside a model"):
        inspect_model(package)
    with pytest.raises(ArtifactError, match="symbolic links are not allowed inside a model"):
        ArtifactStore(tmp_path / "store", 10**8).add(package)
    assert "symbolic links are not allowed" in _one_error_line(run_cli("lint", str(package)))


def test_a_dangling_link_is_one_clear_line(tmp_path):
    link = tmp_path / "gone.mlpackage"
    link.symlink_to(tmp_path / "nowhere.mlpackage")
    with pytest.raises(ModelError, match="no such file or directory"):
        inspect_model(link)
    shown = _one_error_line(run_cli("lint", str(link)))
    assert "no such file or directory (give an .mlmodel file or an .mlpackage folder)" in shown
    with pytest.raises(ArtifactError, match="which does not exist"):
        ArtifactStore(tmp_path / "store", 10**8).add(link)


def test_palettised_weights_of_constexpr_ops_are_checked_too(samples, tmp_path):
    pytest.importorskip("coremltools.optimize.coreml")
    import coremltools as ct
    import coremltools.optimize.coreml as cto

    from orchestrator.modelkit.loading import load_spec

    model = ct.models.MLModel(str(samples["conv10x10.mlpackage"]), skip_model_load=True)
    config = cto.OpPalettizerConfig(mode="uniform", nbits=4, weight_threshold=10)
    package = tmp_path / "palettised.mlpackage"
    cto.palettize_weights(model, cto.OptimizationConfig(global_config=config)).save(str(package))
    spec = load_spec(package)[0]  # intact: passes
    owners = {op.outputs[0].name: op.type for b in spec.mlProgram.functions["main"]
              .block_specializations.values() for op in b.operations}  # fmt: skip
    refs = sorted(blob_refs(spec), key=lambda r: r.offset)
    assert any(owners[r.owner].startswith("constexpr_") for r in refs), refs
    last = refs[-1]
    with (package / WEIGHTS).open("r+b") as f:
        f.truncate(last.offset + HEADER)
    with pytest.raises(ModelError, match=rf"{last.owner}'s weight needs bytes"):
        inspect_model(package)
