"""Op inventory of a neural network (.mlmodel). The spec carries no intermediate shapes,
so they are propagated layer by layer for the common kinds; anything else is ``None``
(unknown) from there on — never a guess presented as fact. Shapes are (N, C, H, W) or
(seq, N, C) for recurrent layers."""

from __future__ import annotations

import math
from typing import Any

from orchestrator.modelkit.constants import nn_weights
from orchestrator.modelkit.inventory import FeatureInfo, OpInfo, TensorInfo
from orchestrator.modelkit.kinds import kind_of

Shape = list[int] | None


def _conv_out(size: int, kernel: int, stride: int, dilation: int, pad: int) -> int:
    effective = (kernel - 1) * dilation + 1
    return (size + pad - effective) // stride + 1


def _padding(
    params: Any, kernel: list[int], dilation: list[int], size: list[int], stride: list[int]
) -> list[int]:
    which = params.WhichOneof("ConvolutionPaddingType") if hasattr(params, "WhichOneof") else None
    if which == "same":
        return [max(0, (math.ceil(s / st) - 1) * st + (k - 1) * d + 1 - s)
                for s, k, d, st in zip(size, kernel, dilation, stride, strict=True)]  # fmt: skip
    if which == "valid" and params.valid.paddingAmounts.borderAmounts:
        return [b.startEdgeSize + b.endEdgeSize for b in params.valid.paddingAmounts.borderAmounts]
    return [0, 0]


def _layer(
    layer: Any, kind_name: str, shape_in: list[Shape]
) -> tuple[dict[str, Any], Shape, int, int | None]:
    """params, output shape, weight bytes, flops."""
    p = getattr(layer, kind_name)
    first = shape_in[0] if shape_in else None
    if kind_name == "convolution":
        kernel = list(p.kernelSize) or [3, 3]
        stride = list(p.stride) or [1, 1]
        dilation = list(p.dilationFactor) or [1, 1]
        groups = p.nGroups or 1
        params = {"kernel": kernel, "strides": stride, "dilations": dilation, "groups": groups,
                  "out_channels": int(p.outputChannels),
                  "pad_type": p.WhichOneof("ConvolutionPaddingType")}  # fmt: skip
        weights = int(p.outputChannels) * int(p.kernelChannels) * math.prod(kernel)
        out: Shape = None
        if first and len(first) == 4:
            pad = _padding(p, kernel, dilation, first[2:], stride)
            out = [first[0], int(p.outputChannels)] + [
                _conv_out(first[2 + i], kernel[i], stride[i], dilation[i], pad[i]) for i in range(2)
            ]
        flops = 2 * math.prod(out) * int(p.kernelChannels) * math.prod(kernel) if out else None
        return params, out, weights * 4, flops
    if kind_name == "pooling":
        kernel, stride = list(p.kernelSize) or [2, 2], list(p.stride) or [1, 1]
        padding = p.WhichOneof("PoolingPaddingType")
        params = {"kernel": kernel, "strides": stride, "pool": ["max", "average", "l2"][p.type],
                  "global": bool(p.globalPooling), "pad_type": padding}  # fmt: skip
        out = None
        if first and len(first) == 4:
            if p.globalPooling:
                out = [first[0], first[1], 1, 1]
            elif padding == "same":
                out = [first[0], first[1], *[-(-first[2 + i] // stride[i]) for i in range(2)]]
            elif padding == "valid" and not any(
                b.startEdgeSize or b.endEdgeSize for b in p.valid.paddingAmounts.borderAmounts
            ):
                out = [first[0], first[1],
                       *[_conv_out(first[2 + i], kernel[i], stride[i], 1, 0) for i in range(2)]]  # fmt: skip
            # includeLastPixel / explicit borders: rounding rules differ, so shape unknown.
        return params, out, 0, math.prod(out) * math.prod(kernel) if out else None
    if kind_name == "upsample":
        factors = list(p.scalingFactor) or [2, 2]
        out = (
            [first[0], first[1], first[2] * factors[0], first[3] * factors[1]]
            if first and len(first) == 4
            else None
        )
        return {"scale_factors": factors}, out, 0, math.prod(out) if out else None
    if kind_name == "innerProduct":
        out = [first[0], int(p.outputChannels), 1, 1] if first else None
        weights = int(p.outputChannels) * int(p.inputChannels)
        return (
            {"out_channels": int(p.outputChannels)},
            out,
            weights * 4,
            2 * weights * (first[0] if first else 1),
        )
    if kind_name in {"uniDirectionalLSTM", "biDirectionalLSTM", "gru", "simpleRecurrent"}:
        hidden = int(p.outputVectorSize)
        size_in = int(p.inputVectorSize)
        gates = {"gru": 3, "simpleRecurrent": 1}.get(kind_name, 4)
        weights = gates * hidden * (size_in + hidden)
        seq = first[0] if first and len(first) == 3 else None
        out = [seq, 1, hidden * (2 if kind_name == "biDirectionalLSTM" else 1)] if seq else None
        return (
            {"hidden": hidden, "input_size": size_in},
            out,
            weights * 4,
            2 * weights * seq if seq else None,
        )
    if kind_name == "concat" and all(s and len(s) == 4 for s in shape_in) and shape_in:
        shapes = [s for s in shape_in if s]
        return {"axis": 1}, [shapes[0][0], sum(s[1] for s in shapes), *shapes[0][2:]], 0, 0
    if kind_name == "flatten" and first:
        return {}, [first[0], math.prod(first[1:]), 1, 1], 0, 0
    if kind_name == "reshapeStatic":
        return {"shape": list(p.targetShape)}, list(p.targetShape) or None, 0, 0
    if kind_name == "custom":
        return {"class": p.className}, None, 0, None
    if kind_name == "batchnorm":
        return (
            {"channels": int(p.channels)},
            first,
            int(p.channels) * 16,
            math.prod(first) * 2 if first else None,
        )
    if kind_name in {
        "activation",
        "clip",
        "add",
        "multiply",
        "unary",
        "softmax",
        "batchnorm",
        "l2normalize",
        "mvn",
    }:
        return {}, first, 0, math.prod(first) if first else None
    if kind_name == "permute":
        axes = list(p.axis)
        out = [first[a] for a in axes] if first and len(axes) == len(first) else None
        return {"perm": axes}, out, 0, 0
    return {}, None, 0, None  # unknown kind: shapes unknown from here on


def _weights_note(layer: Any, kind_name: str) -> str | None:
    """The layer's weights when they are not plain float32: quantised (linear or a lookup
    table, i.e. palettised) or float16, in one line instead of raw bytes. float32 weights,
    the default, get no note, so the op signatures of such models stay as they were."""
    if kind_name not in {"convolution", "innerProduct", "batchedMatmul", "embedding",
                         "embeddingND"}:  # fmt: skip
        return None
    p = getattr(layer, kind_name)
    if not p.HasField("weights") or len(p.weights.floatValue):
        return None
    shape = None
    if kind_name == "convolution":
        shape = [int(p.outputChannels), int(p.kernelChannels), *(list(p.kernelSize) or [3, 3])]
    elif kind_name == "innerProduct":
        shape = [int(p.outputChannels), int(p.inputChannels)]
    return nn_weights(p.weights, shape)


def network_ops(network: Any, inputs: list[FeatureInfo]) -> tuple[list[OpInfo], int, str | None]:
    # NN inputs are declared without the batch axis: (C, H, W) → (1, C, H, W); a vector (C)
    # is one step of one sequence for recurrent layers: (1, 1, C).
    shapes: dict[str, Shape] = {}
    for feature in inputs:
        shape = feature.shape
        if shape and len(shape) == 3:
            shape = [1, *shape]
        elif shape and len(shape) == 1:
            shape = [1, 1, shape[0]]
        shapes[feature.name] = shape
    ops = []
    for index, layer in enumerate(network.layers):
        kind_name = layer.WhichOneof("layer") or "unknown"
        shape_in = [shapes.get(name) for name in layer.input]
        params, out, weights, flops = _layer(layer, kind_name, shape_in)
        note = _weights_note(layer, kind_name)
        if note:
            params["weights"] = note
        outs: list[Shape] = [out] * len(layer.output)
        if kind_of(kind_name) == "rnn" and out:
            # Recurrent layers: the sequence output first, then final states of one step.
            state: Shape = [1, 1, out[2]]
            outs = [out, *[state] * (len(layer.output) - 1)]
        for name, shape in zip(layer.output, outs, strict=True):
            shapes[name] = shape
        ops.append(OpInfo(
            index=index, name=layer.name, type=kind_name, kind=kind_of(kind_name), params=params,
            inputs=[TensorInfo(n, s, None) for n, s in zip(layer.input, shape_in, strict=True)],
            outputs=[TensorInfo(n, s, None) for n, s in zip(layer.output, outs, strict=True)],
            flops=flops, weight_bytes=weights,
        ))  # fmt: skip
    return ops, 0, "float32"
