"""Every lint rule: a model that triggers it and one that does not."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from orchestrator.errors import UsageError
from orchestrator.modelkit import FeatureInfo, inspect_model
from orchestrator.modelkit.rules import CONFIDENCES, GIGABYTE, NOTE, RULES, WARNING, lint
from tests.modelkit.conftest import run_cli


def _program(tmp: Path, name: str, build: Any, specs: list[Any]) -> Path:
    import coremltools as ct
    from coremltools.converters.mil import Builder as mb

    program = mb.program(input_specs=specs)(build)
    model = ct.convert(program, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS16)
    path = tmp / f"{name}.mlpackage"
    model.save(str(path))
    return path


def _network(tmp: Path, name: str, add: Any) -> Path:
    import coremltools as ct
    from coremltools.models import datatypes
    from coremltools.models.neural_network import NeuralNetworkBuilder

    builder = NeuralNetworkBuilder([("x", datatypes.Array(4, 8, 8))], [("y", None)])
    add(builder)
    path = tmp / f"{name}.mlmodel"
    ct.utils.save_spec(builder.spec, str(path))
    return path


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from coremltools.converters.mil import Builder as mb

    tmp = tmp_path_factory.mktemp("rules")
    image = [mb.TensorSpec(shape=(1, 4, 8, 8))]
    scale = np.ones((1, 4, 1, 1), dtype=np.float32)
    nhwc = [mb.TensorSpec(shape=(1, 8, 8, 4))]
    weight = np.ones((2, 4, 1, 1), dtype=np.float32)
    return {
        "broadcast": _program(tmp, "broadcast", lambda x: mb.mul(x=x, y=mb.reduce_mean(x=x, axes=[2, 3], keep_dims=True)), image),
        "same_shape": _program(tmp, "same_shape", lambda x: mb.mul(x=x, y=mb.relu(x=x)), image),
        "const_scale": _program(tmp, "const_scale", lambda x: mb.mul(x=x, y=scale), image),
        "gather": _program(tmp, "gather", lambda x: mb.gather(x=x, indices=np.array([0, 2], dtype=np.int32), axis=1), image),
        "custom": _network(tmp, "custom", lambda b: b.add_custom(name="mine", input_names=["x"], output_names=["y"], custom_proto_spec=_custom_spec())),
        "topk": _network(tmp, "topk", lambda b: b.add_topk(name="top", input_names=["x"], output_names=["y", "i"], k=2, axis=0)),
        "relu": _network(tmp, "relu", lambda b: b.add_activation(name="relu", non_linearity="RELU", input_name="x", output_name="y")),
        "nhwc_input": _program(tmp, "nhwc_input", lambda x: mb.conv(x=mb.transpose(x=x, perm=[0, 3, 1, 2]), weight=weight), nhwc),
        "range": _flexible(tmp, "range"),
        "enumerated": _flexible(tmp, "enumerated"),
    }  # fmt: skip


def _custom_spec() -> Any:
    from coremltools.proto import NeuralNetwork_pb2

    spec = NeuralNetwork_pb2.CustomLayerParams()
    spec.className = "MyLayer"
    return spec


def _flexible(tmp: Path, how: str) -> Path:
    from coremltools.models.neural_network import flexible_shape_utils as flex

    def add(builder: Any) -> None:
        builder.add_activation(name="relu", non_linearity="RELU", input_name="x", output_name="y")
        if how == "range":
            flex.set_multiarray_ndshape_range(builder.spec, "x", [4, 8, 8], [4, 64, 64])
        else:
            flex.add_multiarray_ndshape_enumeration(builder.spec, "x", [(4, 8, 8), (4, 16, 16)])

    return _network(tmp, how, add)


CASES = [  # rule, chip, triggering model, clean model
    ("dilated-conv", "A12", "conv10x10_dilated4.mlpackage", "conv10x10.mlpackage"),
    ("dilated-conv", "A12X", "conv10x10_dilated4_nn.mlmodel", "conv10x10_nn.mlmodel"),
    ("recurrent-layer", "A17 Pro", "lstm.mlpackage", "mobilenetv2_block.mlpackage"),
    ("recurrent-layer", "A14", "lstm_nn.mlmodel", "conv10x10_nn.mlmodel"),
    ("gather-embedding", "A15", "gather", "same_shape"),
    ("large-pool", "A14", "maxpool15.mlpackage", "mobilenetv2_block.mlpackage"),
    ("large-pool", "A14", "maxpool15_nn.mlmodel", "conv10x10_nn.mlmodel"),
    ("large-upsample", "A16", "upsample4x.mlpackage", "conv10x10.mlpackage"),
    ("large-upsample", "A16", "upsample4x_nn.mlmodel", "conv10x10_nn.mlmodel"),
    ("broadcast", "A14", "broadcast", "const_scale"),
    ("broadcast", "A14", "broadcast", "same_shape"),
    ("linear-attention-layout", "A15", "attention_linear.mlpackage", "attention_ane.mlpackage"),
    ("transpose-a12", "A12", "attention_linear.mlpackage", "attention_ane.mlpackage"),
    ("transpose-a12", "A12", "attention_linear.mlpackage", "nhwc_input"),
    ("transpose-a12-layout", "A12Z", "nhwc_input", "attention_linear.mlpackage"),
    ("custom-layer", "A14", "custom", "relu"),
    ("unsupported-layer", "A14", "topk", "relu"),
    ("float32-precision", "A14", "lstm.mlpackage", "conv10x10.mlpackage"),
    ("flexible-shape", "A14", "range", "enumerated"),
]


@pytest.mark.parametrize(("rule_id", "chip", "hit", "clean"), CASES)
def test_rule_triggers_and_does_not(samples, made, rule_id, chip, hit, clean):
    models = {**samples, **made}
    found = lint(inspect_model(models[hit]), [chip], notes=True)
    assert rule_id in {f.rule_id for f in found}
    finding = next(f for f in found if f.rule_id == rule_id)
    assert finding.fix and finding.source and finding.to_json()["prediction"] is True
    clean_ids = {f.rule_id for f in lint(inspect_model(models[clean]), [chip], notes=True)}
    assert rule_id not in clean_ids


def test_notes_come_only_when_asked_and_say_so(made):
    model = inspect_model(made["nhwc_input"])
    assert lint(model, ["A12"]) == []
    [note] = lint(model, ["A12"], notes=True)
    assert note.severity == NOTE and note.op_type == "transpose"


def test_chip_specific_rules_stay_on_their_chips(samples):
    inventory = inspect_model(samples["attention_linear.mlpackage"])
    assert "transpose-a12" not in {f.rule_id for f in lint(inventory, ["A15"])}
    assert lint(inspect_model(samples["conv10x10_dilated4.mlpackage"]), ["A14", "M4"]) == []


def test_model_size_rule_is_for_iphones_only(samples):
    big = replace(inspect_model(samples["conv10x10.mlpackage"]), size_bytes=GIGABYTE + 1)
    assert [f.rule_id for f in lint(big, ["A15"])] == ["model-over-1gb"]
    assert lint(big, ["M1"]) == []
    assert lint(inspect_model(samples["conv10x10.mlpackage"]), ["A15"]) == []


def test_fp16_enumerated_input_on_a13_only(samples):
    model = inspect_model(samples["conv10x10.mlpackage"])
    fp16 = replace(
        model, inputs=[FeatureInfo("x", "multiArray", [1, 3, 64, 64], "FLOAT16", "enumerated")]
    )
    assert [f.rule_id for f in lint(fp16, ["A13"])] == ["fp16-enumerated-input-a13"]
    assert lint(fp16, ["A14"]) == [] and lint(model, ["A13"]) == []


def test_os_applicability_and_bad_os(samples):
    model = inspect_model(samples["conv10x10_dilated4.mlpackage"])
    assert lint(model, ["A12"], os_version="iOS 18.2")  # no OS bounds: applies everywhere
    with pytest.raises(UsageError):
        lint(model, ["A12"], os_version="latest")


def test_every_rule_is_tested_and_complete():
    assert {rule.rule_id for rule in RULES} <= {c[0] for c in CASES} | {
        "model-over-1gb", "fp16-enumerated-input-a13"}  # fmt: skip
    for rule in RULES:
        assert (
            rule.reason
            and rule.source
            and rule.fix
            and rule.chips
            and rule.level in {"op", "model"}
            and rule.confidence in CONFIDENCES
            and rule.severity in {WARNING, NOTE}
        )


def test_exit_codes(samples):
    flagged = run_cli(
        "lint", str(samples["conv10x10_dilated4.mlpackage"]), "--chip", "A12", "--json"
    )
    assert flagged.returncode == 3
    [finding] = json.loads(flagged.stdout)["findings"]
    assert finding["rule_id"] == "dilated-conv" and "non-dilated" in finding["fix"]
    clean = run_cli("lint", str(samples["conv10x10.mlpackage"]), "--chip", "A12")
    assert clean.returncode == 0 and "prediction" in clean.stdout
    text = run_cli("lint", str(samples["lstm_nn.mlmodel"]), "--chip", "A14")
    assert text.returncode == 3 and "prediction" in text.stdout
    assert run_cli("lint", str(samples["conv10x10.mlpackage"]), "--chip", "Z80").returncode == 2
