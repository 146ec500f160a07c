"""Constants as people read them: every MIL value kind and neural-network weight decoded.

MIL stores float16, bfloat16, 8-bit and sub-byte immediates as one packed ``bytes`` field
(a float16 epsilon of 0.001 is the two bytes ``[25, 20]``), so the values are unpacked by
their declared dtype. Small tensors become plain numbers; large ones, weights in the
weights file and compressed weights (``constexpr_*`` ops, quantised NN weights) become a
one-line summary — dtype and shape, "palettised 4-bit, 16 entries" — never raw bytes.
Weights in the weights file are not read: a summary needs only the declared type.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

# MIL DataType codes (coremltools/proto/MIL.proto): names used in inventories.
DTYPES = {1: "bool", 2: "string", 10: "float16", 11: "float32", 12: "float64", 13: "bfloat16",
          21: "int8", 22: "int16", 23: "int32", 24: "int64", 25: "int4", 31: "uint8",
          32: "uint16", 33: "uint32", 34: "uint64", 35: "uint4", 36: "uint2", 37: "uint1",
          38: "uint6", 39: "uint3", 40: "float8e4m3fn", 41: "float8e5m2"}  # fmt: skip
# Packed dtypes numpy reads directly; sub-byte ones are unpacked bit by bit below.
_NUMPY = {"float16": np.float16, "int8": np.int8, "uint8": np.uint8, "int16": np.int16,
          "uint16": np.uint16, "uint32": np.uint32, "uint64": np.uint64}  # fmt: skip
_SUB_BYTE = {"int4": 4, "uint4": 4, "uint2": 2, "uint1": 1, "uint6": 6, "uint3": 3}
SMALL = 16  # tensors with more elements than this are summarised, not listed


def dtype_name(code: int) -> str | None:
    return DTYPES.get(code)


def tensor_summary(dtype: str | None, shape: list[int] | None) -> str:
    """``float16 [32, 8, 3, 3]``: what a large constant is, without its values."""
    return f"{dtype or 'unknown dtype'} {shape if shape is not None else '[unknown shape]'}"


def _shape(value_type: Any) -> list[int] | None:
    dims = []
    for dim in value_type.tensorType.dimensions:
        if dim.WhichOneof("dimension") != "constant":
            return None
        dims.append(int(dim.constant.size))
    return dims


def _unpack_bits(data: bytes, bits: int, count: int, signed: bool) -> list[int]:
    # Sub-byte MIL tensors are packed little-endian, first element in the low bits.
    as_int = int.from_bytes(data, "little")
    mask = (1 << bits) - 1
    values = [(as_int >> (i * bits)) & mask for i in range(count)]
    if signed:
        values = [v - (1 << bits) if v >= 1 << (bits - 1) else v for v in values]
    return values


def _from_bytes(data: bytes, dtype: str | None, count: int | None) -> list[Any] | None:
    if dtype == "bfloat16" and len(data) % 2 == 0:
        as_u32 = np.frombuffer(data, dtype=np.uint16).astype(np.uint32) << 16
        return [float(v) for v in as_u32.view(np.float32)]
    if dtype in _NUMPY and len(data) % np.dtype(_NUMPY[dtype]).itemsize == 0:
        array = np.frombuffer(data, dtype=_NUMPY[dtype])
        # float16: the shortest decimal that reads back as the same half (0.001, not
        # 0.0010004043579101562), lossless like the float32 values MIL stores as floats.
        return [float(str(v)) if dtype == "float16" else int(v) for v in array]
    if dtype in _SUB_BYTE and count is not None:
        return _unpack_bits(data, _SUB_BYTE[dtype], count, dtype.startswith("int"))
    return None


def decode(value: Any) -> Any:
    """A MIL ``Value`` as Python: a scalar, a list (rank ≥ 1), a summary string for large
    tensors and weights in the weights file, or None when it is no tensor at all."""
    # Shape and dtype are looked up only when needed: inspect decodes thousands of consts.
    kind = value.WhichOneof("value")
    if kind == "blobFileValue":
        return tensor_summary(DTYPES.get(value.type.tensorType.dataType), _shape(value.type))
    if kind != "immediateValue":
        return None
    tensor = value.immediateValue.tensor
    which = tensor.WhichOneof("value")
    if which is None:
        return None
    if which == "bytes":
        dtype, shape = DTYPES.get(value.type.tensorType.dataType), _shape(value.type)
        items = _from_bytes(tensor.bytes.values, dtype, math.prod(shape) if shape else None)
        if items is None:  # a packing this module does not know: say what it is
            return tensor_summary(dtype, shape)
    else:
        items = list(getattr(tensor, which).values)
    if which == "strings":
        items = [s if isinstance(s, str) else s.decode() for s in items]
    elif which == "floats":
        # The shortest decimal that is the same float32: 0.001, not 0.0010000000474974513.
        items = [float(str(np.float32(v))) for v in items]
    if len(items) == 1 and not value.type.tensorType.dimensions:
        return items[0]
    if len(items) > SMALL:
        return tensor_summary(DTYPES.get(value.type.tensorType.dataType), _shape(value.type))
    return items


def constexpr_summary(op_type: str, parts: dict[str, Any], out_dtype: str | None,
                      out_shape: list[int] | None) -> str:  # fmt: skip
    """What a ``constexpr_*`` op (a compressed weight, decompressed when the model loads)
    holds. ``parts``: argument name → (dtype, shape) of its operands."""
    target = tensor_summary(out_dtype, out_shape)
    if op_type == "constexpr_lut_to_dense":
        lut_dtype, lut_shape = parts.get("lut", (None, None))
        idx_dtype, _ = parts.get("indices", (None, None))
        entries = None
        if lut_shape:
            # iOS 16: a flat table; iOS 18: [..., entries, vector size] per group.
            entries = lut_shape[0] if len(lut_shape) == 1 else lut_shape[-2]
        if idx_dtype in _SUB_BYTE:
            bits: int | None = _SUB_BYTE[idx_dtype]
        else:
            bits = max(1, math.ceil(math.log2(entries))) if entries else None
        how = f"palettised {bits}-bit, {entries} entries" if bits else "palettised"
        return f"{how} ({lut_dtype or 'unknown'} table) → {target}"
    if op_type in {"constexpr_affine_dequantize", "constexpr_blockwise_shift_scale"}:
        data = parts.get("quantized_data") or parts.get("data") or (None, None)
        return f"{data[0] or 'quantised'} linear-quantised → {target}"
    if op_type == "constexpr_sparse_to_dense":
        return f"sparse → {target}"
    if op_type == "constexpr_cast":
        source = parts.get("source_val", (None, None))
        return f"{source[0] or 'unknown'} cast → {target}"
    return f"{op_type.removeprefix('constexpr_')} → {target}"


def nn_weights(weights: Any, shape: list[int] | None = None) -> str | None:
    """A neural-network ``WeightParams`` in one line: dtype, element count or shape, and
    its quantisation (linear or a lookup table, i.e. palettised)."""
    where = str(shape) if shape else ""
    quant = weights.quantization if weights.HasField("quantization") else None
    if quant is not None and quant.numberOfBits:
        bits = int(quant.numberOfBits)
        which = quant.WhichOneof("QuantizationType")
        if which == "lookupTableQuantization":
            entries = len(quant.lookupTableQuantization.floatValue)
            return f"palettised {bits}-bit, {entries} entries {where}".strip()
        return f"linear-quantised {bits}-bit {where}".strip()
    if len(weights.floatValue):
        return f"float32 {where or len(weights.floatValue)}"
    if weights.float16Value:
        return f"float16 {where or len(weights.float16Value) // 2}"
    if weights.int8RawValue:
        return f"int8 {where or len(weights.int8RawValue)}"
    if weights.rawValue:
        return f"raw {len(weights.rawValue)} bytes {where}".strip()
    return None
