"""Model analysis on Linux: inventory, fingerprint, lint rules, bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.errors import ModelError
from orchestrator.modelkit import inspect_model, lint, write_samples
from orchestrator.modelkit.rules import RULES


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> dict[str, Path]:
    return {p.name: p for p in write_samples(tmp_path_factory.mktemp("s"), small=True)}


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args], capture_output=True, text=True
    )


def test_dilated_conv_flagged_on_a12_with_a_fix_and_plain_conv_clean(samples):
    out = cli("lint", str(samples["conv10x10_dilated4.mlpackage"]), "--chip", "A12", "--json")
    assert out.returncode == 3
    body = json.loads(out.stdout)
    assert body["prediction"] is True
    [finding] = body["findings"]
    assert finding["rule_id"] == "dilated-conv" and finding["op_type"] == "conv"
    assert "non-dilated" in finding["fix"]
    clean = cli("lint", str(samples["conv10x10.mlpackage"]), "--chip", "A12", "--json")
    assert clean.returncode == 0 and json.loads(clean.stdout)["findings"] == []


def test_dilated_conv_is_fine_on_a14(samples):
    assert lint(inspect_model(samples["conv10x10_dilated4.mlpackage"]), ["A14"]) == []


def test_compute_op_count_equals_coremltools_iteration(samples):
    from coremltools.proto import Model_pb2

    for name, path in samples.items():
        if not name.endswith(".mlpackage"):
            continue
        spec = Model_pb2.Model()
        spec.ParseFromString((path / "Data" / "com.apple.CoreML" / "model.mlmodel").read_bytes())
        function = spec.mlProgram.functions["main"]
        ops = function.block_specializations[function.opset].operations
        expected = sum(1 for op in ops if op.type != "const")
        out = json.loads(cli("inspect", str(path), "--json").stdout)
        assert out["compute_op_count"] == expected, name
        assert {"name", "type", "inputs", "outputs", "params"} <= set(out["ops"][0])


def test_shapes_come_from_the_spec_and_propagate_in_neural_networks(samples):
    conv = next(op for op in inspect_model(samples["conv10x10.mlpackage"]).ops if op.kind == "conv")
    assert conv.outputs[0].shape == [1, 10, 55, 55] and conv.params["kernel"] == [10, 10]
    nn = inspect_model(samples["conv10x10_dilated4_nn.mlmodel"]).ops[0]
    assert nn.outputs[0].shape == [1, 10, 28, 28] and nn.params["dilations"] == [4, 4]
    assert nn.flops == 2 * 10 * 28 * 28 * 3 * 10 * 10


def test_fingerprint_is_content_based(samples, tmp_path):
    original = samples["mobilenetv2_block.mlpackage"]
    copy = tmp_path / "copy.mlpackage"
    shutil.copytree(original, copy)
    manifest = json.loads((copy / "Manifest.json").read_text())
    (copy / "Manifest.json").write_text(json.dumps(manifest, indent=4))  # same model, other bytes
    assert inspect_model(copy).sha256 == inspect_model(original).sha256
    weights = next((copy / "Data" / "com.apple.CoreML" / "weights").rglob("*.bin"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    assert inspect_model(copy).sha256 != inspect_model(original).sha256


@pytest.mark.parametrize(
    ("rule_id", "triggers", "clean"),
    [
        ("dilated-conv", "conv10x10_dilated4.mlpackage", "conv10x10.mlpackage"),
        ("recurrent-layer", "lstm.mlpackage", "mobilenetv2_block.mlpackage"),
        ("large-pool", "maxpool15.mlpackage", "conv10x10.mlpackage"),
        ("large-upsample", "upsample4x.mlpackage", "conv10x10.mlpackage"),
        ("linear-attention-layout", "attention_linear.mlpackage", "attention_ane.mlpackage"),
        ("float32-precision", "lstm.mlpackage", "conv10x10.mlpackage"),
    ],
)
def test_rule_triggers_and_does_not(samples, rule_id, triggers, clean):
    hit = {f.rule_id for f in lint(inspect_model(samples[triggers]), ["A12"])}
    miss = {f.rule_id for f in lint(inspect_model(samples[clean]), ["A12"])}
    assert rule_id in hit and rule_id not in miss


def test_every_rule_has_reason_source_and_fix():
    for rule in RULES:
        assert rule.reason and rule.source and rule.fix and rule.chips


def _bad_inputs(tmp_path: Path) -> dict[str, Path]:
    text = tmp_path / "notes.mlmodel"
    text.write_text("hello")
    truncated = tmp_path / "trunc.mlmodel"
    truncated.write_bytes(b"\x08\x07\x12\xff\xff\xff")
    empty = tmp_path / "empty.mlpackage"
    empty.mkdir()
    no_weights = tmp_path / "noweights.mlpackage"
    (no_weights / "Data" / "com.apple.CoreML").mkdir(parents=True)
    (no_weights / "Manifest.json").write_text(
        json.dumps(
            {
                "itemInfoEntries": {"a": {"path": "com.apple.CoreML/model.mlmodel"}},
                "rootModelIdentifier": "a",
            }
        )
    )
    return {"text": text, "truncated": truncated, "empty": empty, "noweights": no_weights,
            "missing": tmp_path / "nope.mlmodel"}  # fmt: skip


@pytest.mark.parametrize("case", ["text", "truncated", "empty", "noweights", "missing"])
def test_bad_input_is_one_line_exit_1_and_structured_json(tmp_path, case):
    path = _bad_inputs(tmp_path)[case]
    with pytest.raises(ModelError):
        inspect_model(path)
    out = cli("inspect", str(path))
    assert out.returncode == 1 and out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    out = cli("lint", str(path), "--json")
    assert out.returncode == 1 and json.loads(out.stdout)["error"]["kind"] == "model"


def test_tree_ensemble_has_no_neural_network_ops(tmp_path):
    from coremltools.models import datatypes
    from coremltools.models.tree_ensemble import TreeEnsembleRegressor

    builder = TreeEnsembleRegressor([("x", datatypes.Double())], "y")
    builder.add_leaf_node(0, 0, 1.0)
    path = tmp_path / "trees.mlmodel"
    from coremltools.models.utils import save_spec

    save_spec(builder.spec, str(path))
    with pytest.raises(ModelError, match="no neural-network ops"):
        inspect_model(path)
