"""Op inventory of an ML program from its spec: shapes and dtypes come with every op
output; parameters are resolved from the const ops that feed them."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from orchestrator.modelkit.inventory import OpInfo, TensorInfo
from orchestrator.modelkit.kinds import kind_of

DTYPES = {10: "float16", 11: "float32", 12: "float64", 23: "int32", 24: "int64", 2: "string",
          1: "bool", 21: "int8", 31: "uint8"}  # fmt: skip
BYTES = {"float16": 2, "float32": 4, "float64": 8, "int32": 4, "int64": 8, "int8": 1, "uint8": 1}
PARAMS = ("strides", "dilations", "pad", "pad_type", "groups", "kernel_sizes", "axes", "axis",
          "perm", "scale_factor_height", "scale_factor_width", "output_shape", "shape",
          "transpose_x", "transpose_y", "epsilon", "alpha")  # fmt: skip


def _tensor_type(value_type: Any) -> tuple[list[int] | None, str | None]:
    tensor = value_type.tensorType
    dims = []
    for dim in tensor.dimensions:
        if dim.WhichOneof("dimension") != "constant":
            return None, DTYPES.get(tensor.dataType)
        dims.append(int(dim.constant.size))
    return dims, DTYPES.get(tensor.dataType)


def _immediate(value: Any) -> Any:
    if value.WhichOneof("value") != "immediateValue":
        return None
    tensor = value.immediateValue.tensor
    which = tensor.WhichOneof("value")
    if which is None:
        return None
    items = list(getattr(tensor, which).values)
    if which == "strings":
        items = [s if isinstance(s, str) else s.decode() for s in items]
    rank = len(value.type.tensorType.dimensions)
    return items[0] if rank == 0 and len(items) == 1 else items


def _flops(
    kind: str, inputs: list[TensorInfo], outputs: list[TensorInfo], weight_shape: list[int] | None
) -> int | None:
    out = outputs[0].shape if outputs else None
    if out is None:
        return None
    elements = math.prod(out)
    if kind in {"conv", "conv_transpose"} and weight_shape and len(weight_shape) >= 3:
        # 2 × (C_in/groups × kernel area) MACs per output element.
        return 2 * elements * math.prod(weight_shape[1:])
    if kind in {"linear", "matmul"}:
        a = inputs[0].shape if inputs else None
        return 2 * elements * a[-1] if a else None
    if kind == "rnn" and inputs and inputs[0].shape:
        return 8 * elements * inputs[0].shape[-1]
    return elements


def program_ops(spec: Any, path: Path) -> tuple[list[OpInfo], int, str | None]:
    function = spec.mlProgram.functions["main"]
    block = function.block_specializations[function.opset]
    consts: dict[str, tuple[Any, list[int] | None, str | None]] = {}
    shapes: dict[str, TensorInfo] = {}
    for feature in spec.description.input:
        array = feature.type.multiArrayType
        shapes[feature.name] = TensorInfo(feature.name, [int(d) for d in array.shape] or None, None)
    for value in function.inputs:
        # The function's own input types carry the dtype the feature description lacks, so
        # the first op's signature matches the same op deeper inside another model.
        shape, dtype = _tensor_type(value.type)
        known = shapes.get(value.name)
        shapes[value.name] = TensorInfo(
            value.name, shape or (known.shape if known else None), dtype
        )
    ops: list[OpInfo] = []
    const_count = 0
    dtypes_seen: set[str] = set()
    for op in block.operations:
        outputs = []
        for out in op.outputs:
            shape, dtype = _tensor_type(out.type)
            info = TensorInfo(out.name, shape, dtype)
            shapes[out.name] = info
            outputs.append(info)
        if op.type == "const":
            const_count += 1
            value = op.attributes["val"]
            consts[op.outputs[0].name] = (_immediate(value), outputs[0].shape, outputs[0].dtype)
            continue
        inputs: list[TensorInfo] = []
        params: dict[str, Any] = {}
        weight_bytes = 0
        weight_shape = None
        for arg_name, arg in op.inputs.items():
            for binding in arg.arguments:
                which = binding.WhichOneof("binding")
                if which == "name" and binding.name in consts:
                    value, shape, dtype = consts[binding.name]
                    if arg_name in PARAMS and value is not None:
                        params[arg_name] = value
                    elif value is None or arg_name in {
                        "weight",
                        "bias",
                        "gamma",
                        "beta",
                        "mean",
                        "variance",
                    }:
                        count = math.prod(shape) if shape else 1
                        weight_bytes += count * BYTES.get(dtype or "", 4)
                        if arg_name == "weight":
                            weight_shape = shape
                            params["weight_shape"] = shape
                    elif arg_name in {"dtype", "mode"} or isinstance(value, str):
                        params[arg_name] = value
                    else:
                        inputs.append(
                            TensorInfo(binding.name, shape, dtype)
                        )  # a constant tensor input
                elif which == "name":
                    inputs.append(shapes.get(binding.name, TensorInfo(binding.name, None, None)))
                elif which == "value":
                    params[arg_name] = _immediate(binding.value)
        if op.type == "conv" and weight_shape:
            params.setdefault("kernel", weight_shape[2:])
        kind = kind_of(op.type)
        for tensor in outputs:
            if tensor.dtype:
                dtypes_seen.add(tensor.dtype)
        ops.append(OpInfo(
            index=len(ops), name=op.outputs[0].name if op.outputs else f"op_{len(ops)}", type=op.type,
            kind=kind, params=params, inputs=inputs, outputs=outputs,
            flops=_flops(kind, inputs, outputs, weight_shape), weight_bytes=weight_bytes,
        ))  # fmt: skip
    compute = [op for op in ops if op.kind != "cast"]
    floats = {
        t.dtype for op in compute for t in op.outputs if t.dtype and t.dtype.startswith("float")
    }
    precision = (
        "float16"
        if floats == {"float16"}
        else "float32"
        if floats == {"float32"}
        else ("mixed" if floats else None)
    )
    return ops, const_count, precision
