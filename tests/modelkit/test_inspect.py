"""Inspection: op counts, fingerprints, pipelines, bad input, lazy and quiet coremltools."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from orchestrator.errors import ModelError
from orchestrator.modelkit import inspect_model
from tests.foundation.cold_imports import after_help
from tests.modelkit.conftest import run_cli


def test_compute_op_count_equals_coremltools_iteration(samples):
    from coremltools.converters.mil.frontend.milproto.load import load
    from coremltools.models.utils import load_spec

    for name, path in samples.items():
        if path.suffix != ".mlpackage":
            continue
        spec = load_spec(str(path))
        program = load(spec, spec.specificationVersion, str(path / "Data/com.apple.CoreML/weights"))
        expected = sum(op.op_type != "const" for op in program.functions["main"].operations)
        body = json.loads(run_cli("inspect", str(path), "--json").stdout)
        assert body["compute_op_count"] == expected == len(body["ops"]), name
        assert (
            body["const_count"] > 0 and body["format"] == "mlpackage" and len(body["sha256"]) == 64
        )


def test_same_model_saved_twice_same_fingerprint(samples, tmp_path):
    import coremltools as ct

    # (.mlpackage saved twice: see test_samples_are_deterministic_listed_and_quiet)
    nn_again = tmp_path / "again.mlmodel"
    spec = ct.utils.load_spec(str(samples["lstm_nn.mlmodel"]))
    spec.description.metadata.author = "someone else"
    ct.utils.save_spec(spec, str(nn_again))
    # Other bytes, so another sha256 (the store's); the same content fingerprint.
    assert inspect_model(nn_again).sha256 != inspect_model(samples["lstm_nn.mlmodel"]).sha256
    assert (
        inspect_model(nn_again).content_sha256
        == inspect_model(samples["lstm_nn.mlmodel"]).content_sha256
    )
    spec.neuralNetwork.layers[0].uniDirectionalLSTM.weightParams.inputGateWeightMatrix.floatValue[
        0
    ] += 1
    ct.utils.save_spec(spec, str(nn_again))
    assert (
        inspect_model(nn_again).content_sha256
        != inspect_model(samples["lstm_nn.mlmodel"]).content_sha256
    )


def test_neural_network_shapes_propagate_and_unknown_stays_unknown(samples):
    ops = inspect_model(samples["mobilenetv2_block_nn.mlmodel"]).ops
    assert [op.outputs[0].shape for op in ops] == [[1, 96, 32, 32]] * 4 + [[1, 16, 32, 32]] * 2
    assert ops[2].params["groups"] == 96 and ops[2].flops == 2 * 96 * 32 * 32 * 9
    pool = inspect_model(samples["maxpool15_nn.mlmodel"]).ops[1]
    assert pool.outputs[0].shape == [1, 8, 48, 48] and pool.params["kernel"] == [15, 15]


def test_pipeline_of_networks_is_inspected(samples, tmp_path):
    import coremltools as ct
    from coremltools.models.pipeline import Pipeline

    first = ct.utils.load_spec(str(samples["conv10x10_nn.mlmodel"]))
    pipeline = Pipeline(input_features=[("x", ct.models.datatypes.Array(3, 64, 64))],
                        output_features=[("y", ct.models.datatypes.Array(10, 55, 55))])  # fmt: skip
    pipeline.add_model(first)
    path = tmp_path / "pipe.mlmodel"
    ct.utils.save_spec(pipeline.spec, str(path))
    inventory = inspect_model(path)
    assert inventory.model_type == "pipeline" and [op.kind for op in inventory.ops] == ["conv"]


def _bad(tmp_path: Path, case: str, samples: dict[str, Path]) -> Path:
    path = tmp_path / f"{case}.mlmodel"
    if case == "text":
        path.write_text("hello, not a model\n")
    elif case == "truncated":
        path.write_bytes(samples["lstm_nn.mlmodel"].read_bytes()[:200])
    elif case == "empty_dir":
        path = tmp_path / "empty.mlpackage"
        path.mkdir()
    elif case == "no_manifest":
        path = tmp_path / "nomanifest.mlpackage"
        shutil.copytree(samples["conv10x10.mlpackage"], path)
        (path / "Manifest.json").unlink()
    elif case == "no_weights":
        path = tmp_path / "noweights.mlpackage"
        shutil.copytree(samples["conv10x10.mlpackage"], path)
        shutil.rmtree(path / "Data/com.apple.CoreML/weights")
    elif case == "trees":
        from coremltools.models import datatypes
        from coremltools.models.tree_ensemble import TreeEnsembleRegressor
        from coremltools.models.utils import save_spec

        builder = TreeEnsembleRegressor([("x", datatypes.Double())], "y")
        builder.add_leaf_node(0, 0, 1.0)
        save_spec(builder.spec, str(path))
    elif case == "missing":
        path = tmp_path / "nowhere.mlpackage"
    return path


BAD = {"text": "protobuf", "truncated": "protobuf", "empty_dir": "Manifest.json",
       "no_manifest": "Manifest.json", "no_weights": "weight file", "trees": "no neural-network ops",
       "missing": "no such file"}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_clear_line_and_exit_1(samples, tmp_path, case):
    path = _bad(tmp_path, case, samples)
    with pytest.raises(ModelError, match=BAD[case]):
        inspect_model(path)
    for command in ("inspect", "lint"):
        out = run_cli(command, str(path))
        assert out.returncode == 1 and "Traceback" not in out.stderr
        assert out.stderr.count("\n") == 1 and BAD[case] in out.stderr
    body = json.loads(run_cli("inspect", str(path), "--json").stdout)
    assert body["error"]["kind"] == "model" and BAD[case] in body["error"]["message"]


def test_unreadable_path_is_a_model_error(tmp_path):
    # Root reads any mode-000 file, so use paths that fail for everyone: a file whose
    # read is an I/O error, and a folder where a model file should be.
    unreadable = Path("/proc/self/mem")
    with pytest.raises(ModelError, match="cannot read"):
        inspect_model(unreadable)
    out = run_cli("inspect", str(unreadable), "--json")
    assert out.returncode == 1 and "cannot read" in json.loads(out.stdout)["error"]["message"]
    assert "Traceback" not in out.stderr
    folder = tmp_path / "model.mlmodel"
    folder.mkdir()
    with pytest.raises(ModelError, match=r"Manifest\.json"):
        inspect_model(folder)


def test_help_and_non_model_commands_do_not_import_coremltools():
    loaded, printed = after_help("import orchestrator.modelkit")
    assert "coremltools" not in loaded
    assert "probes" in printed and "samples" in printed


def test_samples_are_deterministic_listed_and_quiet(samples, tmp_path):
    out = run_cli("samples", str(tmp_path), "--small")
    assert out.returncode == 0 and out.stderr == ""  # no _MLModelProxy lines, no progress bars
    listed = json.loads((tmp_path / "samples.json").read_text())
    assert {entry["file"] for entry in listed} == set(samples) and all(e["about"] for e in listed)
    for name, path in samples.items():
        # Saved twice (two runs): fresh Manifest.json identifiers, same fingerprint.
        assert (
            inspect_model(tmp_path / name).content_sha256 == inspect_model(path).content_sha256
        ), name
        if path.suffix == ".mlpackage":
            manifest = json.loads((path / "Manifest.json").read_text())
            assert manifest != json.loads((tmp_path / name / "Manifest.json").read_text())
