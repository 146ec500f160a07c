"""Op inventory of an ML program from its spec: shapes and dtypes come with every op
output; parameters are resolved from the const ops that feed them."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, cast

from orchestrator.modelkit.constants import DTYPES, constexpr_summary, decode, dtype_name
from orchestrator.modelkit.inventory import OpInfo, TensorInfo
from orchestrator.modelkit.kinds import kind_of
from orchestrator.modelkit.milshapes import infer, merge
from orchestrator.modelkit.weights import BlobRef, const_refs, op_refs, refs_besides

BYTES = {"float16": 2, "float32": 4, "float64": 8, "int32": 4, "int64": 8, "int8": 1, "uint8": 1}
PARAMS = ("strides", "dilations", "pad", "pad_type", "groups", "kernel_sizes", "axes", "axis",
          "perm", "scale_factor_height", "scale_factor_width", "output_shape", "shape",
          "transpose_x", "transpose_y", "epsilon", "alpha")  # fmt: skip
WEIGHT_ARGS = {"weight", "bias", "gamma", "beta", "mean", "variance"}


def _tensor_type(value_type: Any) -> tuple[list[int | None] | None, str | None]:
    """Declared dims (None for an unknown one, e.g. behind a flexible input) and dtype."""
    tensor = value_type.tensorType
    dims: list[int | None] = []
    for dim in tensor.dimensions:
        constant = dim.WhichOneof("dimension") == "constant"
        dims.append(int(dim.constant.size) if constant else None)
    return dims, DTYPES.get(tensor.dataType)


def _known(dims: list[int | None] | None) -> list[int] | None:
    return None if dims is None or None in dims else cast("list[int]", dims)


def _immediate(value: Any) -> Any:
    """A const's value decoded (constants.decode), None for one in the weights file."""
    return decode(value) if value.WhichOneof("value") == "immediateValue" else None


class _Consts:
    """The const ops met so far: shape and dtype at once, the value decoded only when read
    (a parameter, a dtype or mode, a shape rule's argument). A weight's or a constant
    tensor input's value is never shown, and the params of 500 convs are five values
    repeated: decoding every immediate once each cost inspect several per cent."""

    def __init__(self) -> None:
        # name → (the immediate ``Value``, None when in a weights file; shape; dtype)
        self.known: dict[str, tuple[Any, list[int] | None, str | None]] = {}
        # Decoded values by their serialised ``Value``: equal bytes are equal messages.
        self._decoded: dict[bytes, Any] = {}

    def __getitem__(self, name: str) -> tuple[Any, list[int] | None, str | None]:
        return self.known[name]

    def __contains__(self, name: object) -> bool:
        return name in self.known

    def value(self, name: str) -> Any:
        """What ``_immediate`` gives the const; a list is a copy, so no op's params share
        one with another const's."""
        raw = self.known[name][0]
        if raw is None:
            return None
        key = raw.SerializeToString()
        if key not in self._decoded:
            self._decoded[key] = decode(raw)
        value = self._decoded[key]
        return list(value) if isinstance(value, list) else value

    def is_empty(self, name: str) -> bool:
        """Whether ``value(name)`` is None, without decoding: in a weights file, or an
        immediate that holds no tensor (``decode`` gives None for exactly these)."""
        raw = self.known[name][0]
        return raw is None or raw.immediateValue.tensor.WhichOneof("value") is None


class _Deferred:
    """A const argument in an op's ``values``, decoded only if a shape rule needs it."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


def _constexpr(op: Any, consts: _Consts, out: TensorInfo) -> str:
    # iOS 16 constexpr ops carry their operands as attributes, iOS 18 ones as const inputs.
    parts = {k: (dtype_name(v.type.tensorType.dataType), _known(_tensor_type(v.type)[0]))
             for k, v in op.attributes.items() if k != "name"}  # fmt: skip
    for arg_name, arg in op.inputs.items():
        for binding in arg.arguments:
            if binding.WhichOneof("binding") == "name" and binding.name in consts:
                _, shape, dtype = consts[binding.name]
                parts[arg_name] = (dtype, shape)
    return constexpr_summary(op.type, parts, out.dtype, out.shape)


# The spec stores an op's arguments in a protobuf map, whose iteration order changes from
# process to process: without a fixed order an op's inputs (and the cost read from its
# first input: an LSTM's FLOPs) would differ between two runs on the same model.
_DATA_ARGS = ("x", "y", "values", "input", "a", "b", "data", "indices")


def _argument_order(item: tuple[str, Any]) -> tuple[int, str]:
    name = item[0]
    return (_DATA_ARGS.index(name) if name in _DATA_ARGS else len(_DATA_ARGS), name)


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


def _input_shapes(spec: Any, function: Any) -> dict[str, TensorInfo]:
    shapes: dict[str, TensorInfo] = {}
    for feature in spec.description.input:
        # A flexible input's feature shape is its default shape (ct.RangeDim's default,
        # or the default of ct.EnumeratedShapes): FLOPs are reported at it.
        default: list[int] | None = [int(d) for d in feature.type.multiArrayType.shape] or None
        if feature.type.WhichOneof("Type") == "imageType":
            image = feature.type.imageType  # its size is the default size; NCHW in the program
            gray = image.colorSpace in {10, 30}  # GRAYSCALE, GRAYSCALE_FLOAT16
            default = [1, 1 if gray else 3, int(image.height), int(image.width)]
        shapes[feature.name] = TensorInfo(feature.name, default, None)
    for value in function.inputs:
        # The function's own input types carry the dtype the feature description lacks, so
        # the first op's signature matches the same op deeper inside another model.
        dims, dtype = _tensor_type(value.type)
        known = shapes.get(value.name)
        default = known.shape if known else None
        shape = _known(dims) or (default if default and len(default) == len(dims or []) else None)
        shapes[value.name] = TensorInfo(value.name, shape, dtype)
    return shapes


def program_ops(
    spec: Any, path: Path, refs: list[BlobRef] | None = None
) -> tuple[list[OpInfo], int, str | None]:
    """The ops, const count and compute precision of an ML program; ``refs`` (if given)
    receives every weight-file reference (``weights.check_refs``), collected on this walk
    over the ops rather than a second one."""
    function = spec.mlProgram.functions["main"]
    block = function.block_specializations[function.opset]
    consts = _Consts()
    shapes = _input_shapes(spec, function)
    expanded: dict[str, TensorInfo] = {}  # outputs of constexpr ops (compressed weights)
    ops: list[OpInfo] = []
    const_count = 0
    dtypes_seen: set[str] = set()
    for op in block.operations:
        if op.type == "const":
            const_count += 1
            dims, dtype = _tensor_type(op.outputs[0].type)
            info = TensorInfo(op.outputs[0].name, _known(dims), dtype)
            shapes[info.name] = info
            value = op.attributes["val"]
            immediate = value.WhichOneof("value") == "immediateValue"
            if refs is not None and not immediate:
                refs.extend(const_refs(op, value))
            consts.known[info.name] = (value if immediate else None, info.shape, info.dtype)
            continue
        if refs is not None and (op.type.startswith("constexpr") or op.blocks):
            refs.extend(op_refs(op))
        inputs: list[TensorInfo] = []
        args: dict[str, list[TensorInfo]] = {}  # every tensor bound, for shape rules
        values: dict[str, Any] = {}  # constant arguments decoded, for shape rules
        params: dict[str, Any] = {}
        weight_bytes = 0
        weight_shape = None
        for arg_name, arg in sorted(op.inputs.items(), key=_argument_order):
            for binding in arg.arguments:
                which = binding.WhichOneof("binding")
                if which == "name" and binding.name in consts:
                    const = binding.name
                    raw, shape, dtype = consts[const]
                    args.setdefault(arg_name, []).append(TensorInfo(const, shape, dtype))
                    values[arg_name] = _Deferred(const)
                    if arg_name in PARAMS:
                        value = consts.value(const)
                        if value is not None:
                            params[arg_name] = value
                            continue
                        weight = True
                    else:
                        weight = raw is None or arg_name in WEIGHT_ARGS or consts.is_empty(const)
                    if weight:
                        count = math.prod(shape) if shape else 1
                        weight_bytes += count * BYTES.get(dtype or "", 4)
                        if arg_name == "weight":
                            weight_shape = shape
                            params["weight_shape"] = shape
                    elif arg_name in {"dtype", "mode"} or dtype == "string":
                        params[arg_name] = consts.value(const)
                    else:  # a constant tensor input
                        inputs.append(TensorInfo(binding.name, shape, dtype))
                elif which == "name" and binding.name in expanded and arg_name in WEIGHT_ARGS:
                    # A compressed weight is a weight all the same: its dense size is what
                    # the op reads, and a conv's FLOPs need its shape.
                    tensor = expanded[binding.name]
                    args.setdefault(arg_name, []).append(tensor)
                    weight_bytes += math.prod(tensor.shape or [1]) * BYTES.get(
                        tensor.dtype or "", 4
                    )
                    if arg_name == "weight":
                        weight_shape = params["weight_shape"] = tensor.shape
                elif which == "name":
                    tensor = shapes.get(binding.name, TensorInfo(binding.name, None, None))
                    args.setdefault(arg_name, []).append(tensor)
                    inputs.append(tensor)
                elif which == "value":
                    params[arg_name] = values[arg_name] = _immediate(binding.value)
        outputs = []
        for position, out in enumerate(op.outputs):
            dims, dtype = _tensor_type(out.type)
            resolved = _known(dims)
            if resolved is None and position == 0:
                # Unknown dims (a flexible input upstream): computed from the inputs.
                decoded = {
                    k: consts.value(v.name) if isinstance(v, _Deferred) else v
                    for k, v in values.items()
                }
                resolved = merge(dims, infer(op.type, args, params, decoded))
            info = TensorInfo(out.name, resolved, dtype)
            shapes[out.name] = info
            outputs.append(info)
        if op.type.startswith("constexpr_") and outputs:
            # A compressed weight, expanded once at load: say what it holds, not its bytes.
            params["weight"] = _constexpr(op, consts, outputs[0])
            expanded[outputs[0].name] = outputs[0]
        if op.type == "conv" and weight_shape:
            params.setdefault("kernel", weight_shape[2:])
        kind = kind_of(op.type)
        for tensor in outputs:
            if tensor.dtype:
                dtypes_seen.add(tensor.dtype)
        ops.append(OpInfo(
            index=len(ops), name=op.outputs[0].name if op.outputs else f"op_{len(ops)}", type=op.type,
            kind=kind, params=params, inputs=inputs, outputs=outputs,
            flops=0 if op.type.startswith("constexpr_") else _flops(kind, inputs, outputs, weight_shape),
            weight_bytes=weight_bytes,
        ))  # fmt: skip
    if refs is not None:
        refs.extend(refs_besides(spec, "main", function.opset))
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
