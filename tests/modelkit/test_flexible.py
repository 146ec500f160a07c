"""Flexible inputs (ct.RangeDim, ct.EnumeratedShapes): shapes and FLOPs at the default shape,
never "unknown" for the ops modelkit has rules for, and never a silent zero."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from orchestrator.modelkit import inspect_model

WEIGHT = np.random.default_rng(5).random((4, 1, 3, 3), dtype=np.float32)
# conv 3×3, stride 2 on H, 4 filters, on a (1, 1, H, 16) input → (1, 4, (H - 3) // 2 + 1, 14).
CONV_OUT = {16: [1, 4, 7, 14], 32: [1, 4, 15, 14]}


def _conv_flops(height: int) -> int:
    return 2 * int(np.prod(CONV_OUT[height])) * 1 * 3 * 3


def _program(path: Path, shape: Any) -> Path:
    import coremltools as ct
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.mil import get_new_symbol

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 1, get_new_symbol(), 16))])
    def prog(x: Any) -> Any:
        y = mb.relu(x=mb.conv(x=x, weight=WEIGHT, strides=[2, 1], name="conv"), name="relu")
        y = mb.transpose(x=y, perm=[0, 1, 3, 2], name="swap")
        return mb.reshape(x=y, shape=[1, -1], name="flat")

    model = ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS16,
                       inputs=[ct.TensorType(name="x", shape=shape)])  # fmt: skip
    model.save(str(path))
    return path


def _network(path: Path, how: str) -> Path:
    import coremltools as ct
    from coremltools.models import datatypes
    from coremltools.models.neural_network import NeuralNetworkBuilder
    from coremltools.models.neural_network import flexible_shape_utils as flex

    features = [("x", datatypes.Array(1, 16, 16))]
    builder = NeuralNetworkBuilder(features, [("y", None)], disable_rank5_shape_mapping=True)
    builder.add_convolution("conv", kernel_channels=1, output_channels=4, height=3, width=3,
                            stride_height=2, stride_width=1, border_mode="valid", groups=1,
                            W=WEIGHT.transpose(2, 3, 1, 0), b=None, has_bias=False,
                            input_name="x", output_name="c")  # fmt: skip
    builder.add_activation("relu", "RELU", "c", "y")
    spec = builder.spec
    if how == "range":
        flex.set_multiarray_ndshape_range(
            spec, "x", lower_bounds=[1, 8, 16], upper_bounds=[1, 64, 16]
        )
    else:
        flex.add_multiarray_ndshape_enumeration(spec, "x", [(1, 16, 16), (1, 32, 16)])
    ct.models.MLModel(spec).save(str(path))
    return path


@pytest.mark.parametrize(
    ("how", "height"),
    [("range", 16), ("enumerated", 32)],
)
def test_ml_program_ops_have_shapes_and_flops_at_the_default_shape(
    tmp_path: Path, how: str, height: int
) -> None:
    import coremltools as ct

    shape = (
        ct.Shape((1, 1, ct.RangeDim(8, 64, default=16), 16))
        if how == "range"
        else ct.EnumeratedShapes(shapes=[(1, 1, 16, 16), (1, 1, 32, 16)], default=(1, 1, 32, 16))
    )
    inventory = inspect_model(_program(tmp_path / f"{how}.mlpackage", shape))
    assert [(f.shape, f.flexible) for f in inventory.inputs] == [([1, 1, height, 16], how)]
    by_type = {op.type: op for op in inventory.ops}
    assert by_type["conv"].outputs[0].shape == CONV_OUT[height]
    assert by_type["conv"].flops == _conv_flops(height)
    assert by_type["transpose"].outputs[0].shape == [1, 4, 14, CONV_OUT[height][2]]
    assert by_type["reshape"].outputs[0].shape == [1, int(np.prod(CONV_OUT[height]))]
    assert all(op.flops is not None for op in inventory.ops)
    assert all(t.shape is not None for op in inventory.ops for t in op.outputs)


@pytest.mark.parametrize(("how", "height"), [("range", 16), ("enumerated", 16)])
def test_neural_network_ops_have_shapes_and_flops_at_the_default_shape(
    tmp_path: Path, how: str, height: int
) -> None:
    inventory = inspect_model(_network(tmp_path / f"{how}.mlmodel", how))
    assert [(f.shape, f.flexible) for f in inventory.inputs] == [([1, height, 16], how)]
    conv = inventory.ops[0]
    assert conv.outputs[0].shape == CONV_OUT[height] and conv.flops == _conv_flops(height)
    assert inventory.ops[1].outputs[0].shape == CONV_OUT[height]


def test_an_op_without_a_rule_stays_unknown_never_guessed() -> None:
    from orchestrator.modelkit.inventory import TensorInfo
    from orchestrator.modelkit.milshapes import infer, merge

    x = {"x": [TensorInfo("x", [1, 4, 7, 14], "float16")]}
    assert infer("gather", x, {}, {}) is None
    assert merge([1, None, 7], None) is None  # an unknown dim no rule fills: unknown shape
    assert merge([1, 5, None], [1, 4, 9]) == [1, 5, 9]  # declared constants win
    # A broken parameter is unknown too, not an exception in inspect.
    assert infer("transpose", x, {"perm": "nonsense"}, {}) is None


def _unknown_conv(index: int) -> Any:
    from orchestrator.modelkit.inventory import OpInfo, TensorInfo

    tensor = TensorInfo(f"t{index}", None, "float16")  # shape unknown, so FLOPs unknown
    return OpInfo(index, f"conv{index}", "conv", "conv", {}, [tensor], [tensor], None, 262_144)


def test_the_simulator_never_charges_an_unknown_cost_as_zero() -> None:
    from agents.devices.simulation.chips import ANE, GPU, chip_model
    from agents.devices.simulation.latency import STAND_IN_FLOPS
    from agents.devices.simulation.profile import profile
    from orchestrator.modelkit.inventory import OpInfo, TensorInfo
    from orchestrator.protocol import ComputeUnits

    # CREPE before shapes were resolved: convs of unknown cost around a float32 batch_norm
    # (GPU or CPU only). Charged nothing, the convs looked cheaper on the GPU than an ANE
    # segment's dispatch, and the whole model went to the GPU: NONE on an A17 Pro.
    f32 = TensorInfo("bn", [1, 128, 128, 1], "float32")
    bn = OpInfo(2, "bn", "batch_norm", "batchnorm", {}, [f32], [f32], 32_768, 1_024)
    ops = [_unknown_conv(0), _unknown_conv(1), bn, _unknown_conv(3), _unknown_conv(4)]
    chip = chip_model("A17 Pro")
    prof = profile(ops, chip)
    assert prof.placements[ComputeUnits.ALL].units == [ANE, ANE, GPU, ANE, ANE]
    assert prof.estimated == [0, 1, 3, 4]
    # No conv has a known cost, so each is charged at least the documented stand-in.
    assert prof.op_times[0][ANE] >= STAND_IN_FLOPS / chip.flops_per_ms(ANE)


def test_a_flexible_model_runs_on_the_ane_at_its_default_shape(tmp_path: Path) -> None:
    import coremltools as ct

    from agents.devices.simulation.chips import ANE, chip_model
    from agents.devices.simulation.profile import profile
    from orchestrator.protocol import ComputeUnits

    shape = ct.Shape((1, 1, ct.RangeDim(8, 64, default=16), 16))
    inventory = inspect_model(_program(tmp_path / "range.mlpackage", shape))
    prof = profile(inventory.ops, chip_model("A17 Pro"))
    assert prof.estimated == []  # every cost known at the default shape
    assert set(prof.placements[ComputeUnits.CPU_AND_NE].units) == {ANE}


def test_json_says_at_which_shape_the_flops_are_and_null_when_unknown(tmp_path: Path) -> None:
    import coremltools as ct

    shape = ct.Shape((1, 1, ct.RangeDim(8, 64, default=16), 16))
    inventory = inspect_model(_program(tmp_path / "range.mlpackage", shape))
    body = inventory.to_json()
    assert body["total_flops"] == inventory.total_flops > _conv_flops(16)
    assert body["flops_note"].startswith("FLOPs at the default input shape (x [1, 1, 16, 16]")
    # One op whose cost cannot be known: no total (null, never 0), and the note says why.
    unknown = dataclasses.replace(inventory.ops[1], flops=None)
    broken = dataclasses.replace(inventory, ops=[inventory.ops[0], unknown, *inventory.ops[2:]])
    assert not broken.flops_known and broken.to_json()["total_flops"] is None
    assert f"cost unknown: 1 of {len(inventory.ops)} ops" in broken.to_json()["flops_note"]
    fixed = dataclasses.replace(inventory, inputs=[dataclasses.replace(inventory.inputs[0], flexible="none")])  # fmt: skip
    assert fixed.to_json()["flops_note"] is None


def test_the_shapes_a_flexible_input_takes(tmp_path: Path) -> None:
    import coremltools as ct

    from orchestrator.modelkit.flexible import describe, shape_options

    ranged = ct.Shape((1, 1, ct.RangeDim(8, 64, default=16), 16))
    enumerated = ct.EnumeratedShapes(
        shapes=[(1, 1, 16, 16), (1, 1, 32, 16)], default=(1, 1, 32, 16)
    )
    found = {}
    for name, shape in (("range", ranged), ("enumerated", enumerated)):
        spec = ct.utils.load_spec(str(_program(tmp_path / f"{name}.mlpackage", shape)))
        found[name] = shape_options(spec.description.input[0].type)
    assert found == {
        "range": {"range": [[1, 1, 8, 16], [1, 1, 64, 16]]},
        # coremltools lists the default first.
        "enumerated": {"enumerated": [[1, 1, 32, 16], [1, 1, 16, 16]]},
    }
    assert describe(found["range"]) == "range [1, 1, 8, 16]…[1, 1, 64, 16]"
    assert describe(found["enumerated"]) == "one of [1, 1, 32, 16], [1, 1, 16, 16]"


def test_a_flexible_image_input_is_costed_at_its_default_size(tmp_path: Path) -> None:
    import coremltools as ct
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.mil import get_new_symbol

    weight = np.ones((4, 3, 3, 3), dtype=np.float32)

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 3, get_new_symbol(), 16))])
    def prog(x: Any) -> Any:
        return mb.conv(x=x, weight=weight, name="conv")

    image = ct.ImageType(name="x", shape=(1, 3, ct.RangeDim(8, 64, default=32), 16))
    model = ct.convert(prog, convert_to="mlprogram", inputs=[image],
                       minimum_deployment_target=ct.target.iOS16)  # fmt: skip
    model.save(str(tmp_path / "image.mlpackage"))
    conv = next(op for op in inspect_model(tmp_path / "image.mlpackage").ops if op.type == "conv")
    assert conv.outputs[0].shape == [1, 4, 30, 14]
    assert conv.flops == 2 * 4 * 30 * 14 * 3 * 3 * 3


def test_inspect_and_lint_say_at_which_shape_and_never_print_zero_cost(tmp_path: Path) -> None:
    import subprocess
    import sys

    import coremltools as ct

    path = _program(tmp_path / "range.mlpackage", ct.Shape((1, 1, ct.RangeDim(8, 64, default=16), 16)))  # fmt: skip
    assert inspect_model(path).inputs[0].shapes == {"range": [[1, 1, 8, 16], [1, 1, 64, 16]]}
    run = [sys.executable, "-m", "orchestrator"]
    text = subprocess.run([*run, "inspect", str(path)], capture_output=True, text=True, check=True)
    assert "flexible=range (range [1, 1, 8, 16]…[1, 1, 64, 16])" in text.stdout
    assert "note: FLOPs at the default input shape (x [1, 1, 16, 16]" in text.stdout
    assert "0.0 MFLOPs" not in text.stdout
    lint = subprocess.run([*run, "lint", str(path), "--chip", "A14", "--json"],
                          capture_output=True, text=True)  # fmt: skip
    body = json.loads(lint.stdout)
    assert body["flops_known"] is True
    assert body["flops_note"].startswith("FLOPs at the default input shape")
