"""Deterministic sample models for the demo and the tests (seeded weights).

The pair of the original ANE write-up (a 10-filter 10×10 convolution on a 500×500×3
input, and the same with dilation 4), a MobileNetV2-style block, an LSTM, a transformer
block in ANE-friendly (channels-first, 1×1 conv) and unfriendly (linear + transposes)
layouts, max-pool with kernel 15 and 4× upsampling — as ML programs, and the ones the
neural-network builder expresses simply as .mlmodel too. ``small=True`` shrinks inputs
(64×64) so tests stay fast; the ops and parameters are the same.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from orchestrator.modelkit import quiet

SEED = 20181204


def _w(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return (rng.standard_normal(shape) * 0.05).astype(np.float32)


def _programs(size: int) -> dict[str, tuple[str, Callable[[Any, np.random.Generator], Any]]]:
    from coremltools.converters.mil import Builder as mb

    image = [mb.TensorSpec(shape=(1, 3, size, size))]
    seq = 16

    def conv(dilation: int) -> Callable[[Any, np.random.Generator], Any]:
        def build(_: Any, rng: np.random.Generator) -> Any:
            @mb.program(input_specs=image)
            def prog(x: Any) -> Any:
                return mb.conv(
                    x=x, weight=_w(rng, 10, 3, 10, 10), dilations=[dilation, dilation], name="conv"
                )

            return prog

        return build

    def mobilenet(_: Any, rng: np.random.Generator) -> Any:
        @mb.program(input_specs=[mb.TensorSpec(shape=(1, 16, size // 2, size // 2))])
        def prog(x: Any) -> Any:
            h = mb.conv(x=x, weight=_w(rng, 96, 16, 1, 1), name="expand")
            h = mb.clip(x=h, alpha=0.0, beta=6.0, name="expand_relu6")
            h = mb.conv(
                x=h, weight=_w(rng, 96, 1, 3, 3), groups=96, pad_type="same", name="depthwise"
            )
            h = mb.clip(x=h, alpha=0.0, beta=6.0, name="depthwise_relu6")
            h = mb.conv(x=h, weight=_w(rng, 16, 96, 1, 1), name="project")
            return mb.add(x=x, y=h, name="residual")

        return prog

    def lstm(_: Any, rng: np.random.Generator) -> Any:
        @mb.program(input_specs=[mb.TensorSpec(shape=(seq, 1, 32))])
        def prog(x: Any) -> Any:
            zeros = np.zeros((1, 64), dtype=np.float32)
            out, _h, _c = mb.lstm(x=x, initial_h=zeros, initial_c=zeros, weight_ih=_w(rng, 4 * 64, 32),
                                  weight_hh=_w(rng, 4 * 64, 64), direction="forward",
                                  output_sequence=True, name="lstm")  # fmt: skip
            return out

        return prog

    def attention_friendly(_: Any, rng: np.random.Generator) -> Any:
        # (B, C, 1, S): projections as 1×1 convolutions, as apple/ml-ane-transformers advises.
        @mb.program(input_specs=[mb.TensorSpec(shape=(1, 64, 1, seq))])
        def prog(x: Any) -> Any:
            q = mb.conv(x=x, weight=_w(rng, 64, 64, 1, 1), name="q_proj")
            k = mb.conv(x=x, weight=_w(rng, 64, 64, 1, 1), name="k_proj")
            v = mb.conv(x=x, weight=_w(rng, 64, 64, 1, 1), name="v_proj")
            # Scores stay 4D channels-first: no transposes, no reshapes. (A simplified
            # gating form of attention; the layout, not the maths, is what matters here.)
            scores = mb.mul(x=q, y=k, name="scores")
            weights = mb.softmax(x=scores, axis=3, name="attn_softmax")
            ctx = mb.mul(x=weights, y=v, name="context")
            return mb.conv(x=ctx, weight=_w(rng, 64, 64, 1, 1), name="out_proj")

        return prog

    def attention_unfriendly(_: Any, rng: np.random.Generator) -> Any:
        # The usual PyTorch shape: (B, S, C) linear projections, split into 4 heads with
        # reshapes and transposes — what apple/ml-ane-transformers rewrites away.
        heads = [1, seq, 4, 16]

        @mb.program(input_specs=[mb.TensorSpec(shape=(1, seq, 64))])
        def prog(x: Any) -> Any:
            def split(name: str, perm: list[int]) -> Any:
                h = mb.linear(x=x, weight=_w(rng, 64, 64), name=f"{name}_linear")
                return mb.transpose(x=mb.reshape(x=h, shape=heads), perm=perm, name=f"{name}_heads")

            q, k, v = split("q", [0, 2, 1, 3]), split("k", [0, 2, 3, 1]), split("v", [0, 2, 1, 3])
            scores = mb.matmul(x=q, y=k, name="scores")
            weights = mb.softmax(x=scores, axis=-1, name="attn_softmax")
            ctx = mb.transpose(x=mb.matmul(x=weights, y=v, name="context"), perm=[0, 2, 1, 3],
                               name="context_merge")  # fmt: skip
            ctx = mb.reshape(x=ctx, shape=[1, seq, 64], name="context_flat")
            return mb.linear(x=ctx, weight=_w(rng, 64, 64), name="out_linear")

        return prog

    def after_conv(op: Callable[[Any], Any]) -> Callable[[Any, np.random.Generator], Any]:
        """A 3×3 convolution to 8 channels, then ``op`` on its output: the op under test
        gets a real feature map, not the model's input."""

        def build(_: Any, rng: np.random.Generator) -> Any:
            @mb.program(input_specs=image)
            def prog(x: Any) -> Any:
                return op(mb.conv(x=x, weight=_w(rng, 8, 3, 3, 3), name="conv"))

            return prog

        return build

    maxpool = after_conv(
        lambda h: mb.max_pool(
            x=h, kernel_sizes=[15, 15], strides=[1, 1], pad_type="valid", name="maxpool15"
        )
    )
    upsample = after_conv(
        lambda h: mb.upsample_nearest_neighbor(
            x=h, scale_factor_height=4, scale_factor_width=4, name="upsample4x"
        )
    )

    def sandwich(_: Any, rng: np.random.Generator) -> Any:
        # Plain 3×3 convolutions around one dilated one: bisection's showcase on A12.
        side = 128 if size >= 128 else 64
        weights = [_w(rng, 8, 8, 3, 3) for _ in range(3)]

        @mb.program(input_specs=[mb.TensorSpec(shape=(1, 8, side, side))])
        def prog(x: Any) -> Any:
            h = mb.conv(x=x, weight=weights[0], pad_type="same", name="conv_in")
            h = mb.conv(
                x=h, weight=weights[1], pad_type="same", dilations=[2, 2], name="conv_dilated"
            )
            return mb.conv(x=h, weight=weights[2], pad_type="same", name="conv_out")

        return prog

    return {
        "conv10x10": ("10-filter 10×10 convolution (the write-up's ANE-friendly model)", conv(1)),
        "conv10x10_dilated4": (
            "the same convolution with dilation 4 (falls off the ANE on A12)",
            conv(4),
        ),
        "mobilenetv2_block": (
            "MobileNetV2 inverted residual: 1×1 expand, 3×3 depthwise, 1×1 project",
            mobilenet,
        ),
        "lstm": ("a one-layer LSTM over 16 steps (expect CPU)", lstm),
        "attention_ane": (
            "attention block, channels-first (B,C,1,S) with 1×1 convolutions",
            attention_friendly,
        ),
        "attention_linear": (
            "attention block with linear layers and transposes",
            attention_unfriendly,
        ),
        "conv_sandwich_dilated": (
            "3×3 convolutions around one dilated 3×3 convolution (bisection names the dilated one)",
            sandwich,
        ),
        "maxpool15": ("max-pool with a 15×15 kernel (kernel > 13)", maxpool),
        "upsample4x": ("nearest-neighbour 4× upsampling (more than 2×)", upsample),
    }


def _networks(size: int) -> dict[str, tuple[str, Callable[[np.random.Generator], Any]]]:
    from coremltools.models import datatypes
    from coremltools.models.neural_network import NeuralNetworkBuilder

    def conv(dilation: int) -> Callable[[np.random.Generator], Any]:
        def build(rng: np.random.Generator) -> Any:
            out = (size - ((10 - 1) * dilation + 1)) + 1
            builder = NeuralNetworkBuilder([("x", datatypes.Array(3, size, size))],
                                           [("y", datatypes.Array(10, out, out))])  # fmt: skip
            weights = _w(rng, 10, 10, 3, 10).transpose(0, 1, 2, 3)  # (kH, kW, C_in, C_out)
            builder.add_convolution(name="conv", kernel_channels=3, output_channels=10, height=10, width=10,
                                    stride_height=1, stride_width=1, border_mode="valid", groups=1,
                                    W=weights, b=None, has_bias=False, input_name="x", output_name="y",
                                    dilation_factors=[dilation, dilation])  # fmt: skip
            return builder.spec

        return build

    def lstm(rng: np.random.Generator) -> Any:
        builder = NeuralNetworkBuilder([("x", datatypes.Array(32))], [("y", datatypes.Array(64))])
        w_x = [_w(rng, 64, 32) for _ in range(4)]
        w_h = [_w(rng, 64, 64) for _ in range(4)]
        builder.add_unilstm(name="lstm", W_h=w_h, W_x=w_x, b=None, hidden_size=64, input_size=32,
                            input_names=["x"], output_names=["y"])  # fmt: skip
        return builder.spec

    def mobilenet(rng: np.random.Generator) -> Any:
        half = size // 2
        builder = NeuralNetworkBuilder([("x", datatypes.Array(16, half, half))],
                                       [("y", datatypes.Array(16, half, half))])  # fmt: skip
        layers = [("expand", 16, 96, 1, 1, "x", "e"), ("depthwise", 1, 96, 3, 96, "e6", "d"),
                  ("project", 96, 16, 1, 1, "d6", "p")]  # fmt: skip
        for name, kernel_ch, out_ch, k, groups, src, dst in layers:
            builder.add_convolution(name=name, kernel_channels=kernel_ch, output_channels=out_ch,
                                    height=k, width=k, stride_height=1, stride_width=1,
                                    border_mode="same", groups=groups, W=_w(rng, k, k, kernel_ch, out_ch),
                                    b=None, has_bias=False, input_name=src, output_name=dst)  # fmt: skip
            if name != "project":
                builder.add_clip(name=f"{name}_relu6", input_name=dst, output_name=f"{dst}6",
                                 min_value=0.0, max_value=6.0)  # fmt: skip
        builder.add_elementwise(
            name="residual", input_names=["x", "p"], output_name="y", mode="ADD"
        )
        return builder.spec

    def conv_first(builder: Any, rng: np.random.Generator) -> None:
        """As ``after_conv`` of the programs: a 3×3 convolution to 8 channels, x → c."""
        builder.add_convolution(name="conv", kernel_channels=3, output_channels=8, height=3, width=3,
                                stride_height=1, stride_width=1, border_mode="valid", groups=1,
                                W=_w(rng, 3, 3, 3, 8), b=None, has_bias=False, input_name="x",
                                output_name="c")  # fmt: skip

    def maxpool(rng: np.random.Generator) -> Any:
        conv_out, pool_out = size - 2, size - 2 - 14
        builder = NeuralNetworkBuilder([("x", datatypes.Array(3, size, size))],
                                       [("y", datatypes.Array(8, pool_out, pool_out))])  # fmt: skip
        conv_first(builder, rng)
        assert conv_out > 15  # small=True still leaves room for the 15×15 window
        builder.add_pooling(name="maxpool15", height=15, width=15, stride_height=1, stride_width=1,
                            layer_type="MAX", padding_type="VALID", input_name="c", output_name="y")  # fmt: skip
        return builder.spec

    def upsample(rng: np.random.Generator) -> Any:
        conv_out = size - 2
        builder = NeuralNetworkBuilder([("x", datatypes.Array(3, size, size))],
                                       [("y", datatypes.Array(8, conv_out * 4, conv_out * 4))])  # fmt: skip
        conv_first(builder, rng)
        builder.add_upsample(name="upsample4x", scaling_factor_h=4, scaling_factor_w=4,
                             input_name="c", output_name="y", mode="NN")  # fmt: skip
        return builder.spec

    return {
        "conv10x10_nn": ("the write-up's 10×10 convolution as a neural network", conv(1)),
        "conv10x10_dilated4_nn": ("the dilated convolution as a neural network", conv(4)),
        "lstm_nn": ("an LSTM layer as a neural network", lstm),
        "mobilenetv2_block_nn": ("the MobileNetV2 block as a neural network", mobilenet),
        "maxpool15_nn": ("max-pool with a 15×15 kernel as a neural network", maxpool),
        "upsample4x_nn": ("4× nearest-neighbour upsampling as a neural network", upsample),
    }


def write_samples(outdir: Path, *, small: bool = False) -> list[Path]:
    with quiet.silenced():
        import coremltools as ct
    size = 64 if small else 500
    outdir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    index: list[dict[str, str]] = []
    for offset, (name, (about, build)) in enumerate(_programs(size).items()):
        rng = np.random.default_rng(SEED + offset)
        model = ct.convert(build(None, rng), convert_to="mlprogram",
                           minimum_deployment_target=ct.target.iOS16)  # fmt: skip
        path = outdir / f"{name}.mlpackage"
        shutil.rmtree(path, ignore_errors=True)
        model.save(str(path))
        written.append(path)
        index.append({"file": path.name, "format": "mlpackage", "about": about})
    for offset, (name, (about, build_spec)) in enumerate(_networks(size).items()):
        spec = build_spec(np.random.default_rng(SEED + 100 + offset))
        path = outdir / f"{name}.mlmodel"
        ct.utils.save_spec(spec, str(path))
        written.append(path)
        index.append({"file": path.name, "format": "mlmodel", "about": about})
    (outdir / "samples.json").write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
    return written
