"""Every constant reads as a value: float16 scalars, small tensors, quantised and palettised
weights (ML programs and neural networks) — never raw bytes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from orchestrator.modelkit import inspect_model
from tests.modelkit.conftest import run_cli


def inspect_text(path: Path) -> str:
    """``anefarm inspect`` as text on a terminal wide enough that no cell wraps."""
    env = {**os.environ, "COLUMNS": "400"}
    return subprocess.run([sys.executable, "-m", "orchestrator", "inspect", str(path)],
                          capture_output=True, text=True, check=True, env=env).stdout  # fmt: skip


def _fp16_conv_bn(path: Path) -> Path:
    """conv → relu → batch_norm (epsilon 0.001) as a float16 ML program."""
    import coremltools as ct
    from coremltools.converters.mil import Builder as mb

    weight = np.random.default_rng(3).random((32, 8, 3, 3), dtype=np.float32)

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 8, 16, 16))])
    def prog(x: Any) -> Any:
        y = mb.relu(x=mb.conv(x=x, weight=weight, name="conv"), name="relu")
        zeros, ones = np.zeros(32, np.float32), np.ones(32, np.float32)
        return mb.batch_norm(x=y, mean=zeros, variance=ones, epsilon=1e-3, name="bn")

    model = ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS16)
    model.save(str(path))
    return path


@pytest.fixture(scope="module")
def fp16_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _fp16_conv_bn(tmp_path_factory.mktemp("fp16") / "bn.mlpackage")


def _op(path: Path, op_type: str) -> Any:
    return next(op for op in inspect_model(path).ops if op.type == op_type)


def test_a_float16_epsilon_is_a_number_in_json_and_text(fp16_model: Path) -> None:
    bn = _op(fp16_model, "batch_norm")
    assert bn.outputs[0].dtype == "float16"  # the scalar really is stored as half
    assert bn.params["epsilon"] == 0.001
    body = json.loads(run_cli("inspect", str(fp16_model), "--json").stdout)
    assert [op["params"]["epsilon"] for op in body["ops"] if op["type"] == "batch_norm"] == [0.001]
    text = inspect_text(fp16_model)
    assert "epsilon=0.001" in text and "[25, 20]" not in text


def _compressed(fp16_model: Path, tmp_path: Path, how: str) -> Path:
    import coremltools as ct
    import coremltools.optimize.coreml as cto

    model = ct.models.MLModel(str(fp16_model), skip_model_load=True)
    if how == "palettise":
        # "uniform" needs no scikit-learn (k-means does).
        config = cto.OpPalettizerConfig(mode="uniform", nbits=4, weight_threshold=10)
        compressed = cto.palettize_weights(model, cto.OptimizationConfig(global_config=config))
    else:
        config = cto.OpLinearQuantizerConfig(mode="linear_symmetric", weight_threshold=10)
        compressed = cto.linear_quantize_weights(
            model, cto.OptimizationConfig(global_config=config)
        )
    compressed.save(str(tmp_path / f"{how}.mlpackage"))
    return tmp_path / f"{how}.mlpackage"


@pytest.mark.parametrize(
    ("how", "summary"),
    [
        ("palettise", "palettised 4-bit, 16 entries (float16 table) → float16 [32, 8, 3, 3]"),
        ("quantise", "int8 linear-quantised → float16 [32, 8, 3, 3]"),
    ],
)
def test_compressed_ml_program_weights_are_summarised(
    fp16_model: Path, tmp_path: Path, how: str, summary: str
) -> None:
    pytest.importorskip("coremltools.optimize.coreml")
    path = _compressed(fp16_model, tmp_path, how)
    inventory = inspect_model(path)
    constexpr = next(op for op in inventory.ops if op.type.startswith("constexpr_"))
    assert constexpr.params == {"weight": summary}
    assert constexpr.flops == 0  # expanded once when the model loads, not per prediction
    # The conv still knows its weight: shape, kernel and the FLOPs of the dense layer.
    plain, conv = _op(fp16_model, "conv"), _op(path, "conv")
    assert conv.params["weight_shape"] == [32, 8, 3, 3] and conv.params["kernel"] == [3, 3]
    assert conv.flops == plain.flops == 2 * 32 * 14 * 14 * 8 * 3 * 3
    assert summary.split(" (", maxsplit=1)[0] in inspect_text(path)


def test_nn_quantised_weights_are_summarised(tmp_path: Path) -> None:
    import coremltools as ct
    from coremltools.models import datatypes
    from coremltools.models.neural_network import NeuralNetworkBuilder
    from coremltools.models.neural_network import quantization_utils as qu

    builder = NeuralNetworkBuilder([("x", datatypes.Array(3, 8, 8))], [("y", None)])
    weight = np.random.default_rng(1).random((3, 3, 3, 4), dtype=np.float32)
    builder.add_convolution("conv", kernel_channels=3, output_channels=4, height=3, width=3,
                            stride_height=1, stride_width=1, border_mode="valid", groups=1,
                            W=weight, b=None, has_bias=False, input_name="x", output_name="y")  # fmt: skip
    model = ct.models.MLModel(builder.spec)
    found = {}
    for mode, bits in (("linear", 8), ("linear_lut", 4)):
        path = tmp_path / f"{mode}.mlmodel"
        qu.quantize_weights(model, nbits=bits, quantization_mode=mode).save(str(path))
        found[mode] = inspect_model(path).ops[0].params["weights"]
    assert found == {
        "linear": "linear-quantised 8-bit [4, 3, 3, 3]",
        "linear_lut": "palettised 4-bit, 16 entries [4, 3, 3, 3]",
    }
    plain = tmp_path / "plain.mlmodel"
    model.save(str(plain))
    # float32 weights are the default: no note, so existing op signatures stay as they were.
    assert "weights" not in inspect_model(plain).ops[0].params


def _value(dtype: str, shape: list[int], **tensor: Any) -> Any:
    from coremltools.proto import MIL_pb2

    value = MIL_pb2.Value()
    value.type.tensorType.dataType = MIL_pb2.DataType.Value(dtype)
    value.type.tensorType.rank = len(shape)
    for size in shape:
        value.type.tensorType.dimensions.add().constant.size = size
    for field, items in tensor.items():
        target = getattr(value.immediateValue.tensor, field)
        if field == "bytes":
            target.values = items
        else:
            target.values.extend(items)
    return value


@pytest.mark.parametrize(
    ("dtype", "shape", "tensor", "expected"),
    [
        ("FLOAT16", [], {"bytes": np.float16(0.001).tobytes()}, 0.001),
        ("FLOAT16", [2], {"bytes": np.array([1.5, -2], np.float16).tobytes()}, [1.5, -2.0]),
        ("FLOAT32", [], {"floats": [1e-5]}, 1e-5),
        ("INT8", [3], {"bytes": np.array([-1, 0, 7], np.int8).tobytes()}, [-1, 0, 7]),
        ("UINT8", [2], {"bytes": bytes([200, 3])}, [200, 3]),
        ("BOOL", [], {"bools": [True]}, True),
        ("INT32", [2], {"ints": [4, 5]}, [4, 5]),
        ("UINT4", [3], {"bytes": bytes([0x21, 0x0F])}, [1, 2, 15]),
        ("INT4", [2], {"bytes": bytes([0xF7])}, [7, -1]),
        ("FLOAT16", [4, 8], {"bytes": np.zeros(32, np.float16).tobytes()}, "float16 [4, 8]"),
    ],
)
def test_decode_every_kind(
    dtype: str, shape: list[int], tensor: dict[str, Any], expected: Any
) -> None:
    from orchestrator.modelkit.constants import decode

    assert decode(_value(dtype, shape, **tensor)) == expected
