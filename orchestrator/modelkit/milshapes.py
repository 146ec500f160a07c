"""Output shapes of ML program ops whose declared type has unknown dimensions.

A model with a flexible input (``ct.RangeDim``, ``ct.EnumeratedShapes``) declares every
dimension that depends on it as unknown, down the whole graph. Starting from the input's
default shape, these rules compute the shape each common op gives; an op without a rule,
or whose rule lacks a parameter, stays unknown (``None``) — never a guess presented as
fact. Dimensions the spec declares as constants always win over computed ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

Shape = list[int]
Args = dict[str, list[Any]]  # argument name → its TensorInfo bindings (variables and consts)

_SAME = {"relu", "relu6", "sigmoid", "tanh", "gelu", "silu", "leaky_relu", "clip", "elu",
         "softplus", "softsign", "hard_sigmoid", "scaled_tanh", "sigmoid_hard", "prelu",
         "thresholded_relu", "linear_activation", "erf", "batch_norm", "instance_norm",
         "layer_norm", "l2_norm", "local_response_norm", "softmax", "cast", "sqrt", "rsqrt",
         "exp", "exp2", "log", "abs", "neg", "inverse", "square", "sin", "cos", "floor",
         "ceil", "round", "sign", "logical_not", "identity", "dequantize", "quantize"}  # fmt: skip
_BINARY = {"add", "sub", "mul", "real_div", "floor_div", "mod", "pow", "maximum", "minimum",
           "equal", "not_equal", "less", "less_equal", "greater", "greater_equal",
           "logical_and", "logical_or", "logical_xor", "select"}  # fmt: skip


def _first(args: Args, name: str = "x") -> Shape | None:
    bound = args.get(name)
    return list(bound[0].shape) if bound and bound[0].shape is not None else None


def _broadcast(shapes: list[Shape | None]) -> Shape | None:
    if any(s is None for s in shapes) or not shapes:
        return None
    rank = max(len(s) for s in shapes if s is not None)
    out = []
    for i in range(rank):
        dims = {s[i - rank + len(s)] for s in shapes if s is not None and i - rank + len(s) >= 0}
        dims.discard(1)
        if len(dims) > 1:
            return None  # not broadcastable: the spec is inconsistent or a dim is wrong
        out.append(dims.pop() if dims else 1)
    return out


def _window(x: Shape, kernel: list[int], p: dict[str, Any], values: dict[str, Any]) -> Shape | None:
    """Spatial sizes of a conv or pool over ``x`` (N, C, *spatial)."""
    spatial = x[2:]
    if len(kernel) != len(spatial):
        return None
    strides = p.get("strides") or [1] * len(spatial)
    dilations = p.get("dilations") or [1] * len(spatial)
    pad_type = p.get("pad_type", "valid")
    pad = p.get("pad") or [0] * (2 * len(spatial))
    ceil = bool(values.get("ceil_mode"))
    out = []
    for i, size in enumerate(spatial):
        if pad_type in {"same", "same_lower"}:
            out.append(math.ceil(size / strides[i]))
            continue
        if pad_type not in {"valid", "custom"}:
            return None
        total = pad[2 * i] + pad[2 * i + 1] if pad_type == "custom" else 0
        effective = (kernel[i] - 1) * dilations[i] + 1
        span = size + total - effective
        out.append((math.ceil(span / strides[i]) if ceil else span // strides[i]) + 1)
    return out


def _conv(op_type: str, args: Args, p: dict[str, Any], values: dict[str, Any]) -> Shape | None:
    x, w = _first(args), p.get("weight_shape")
    if x is None or not w or len(x) < 3:
        return None
    spatial = _window(x, list(w[2:]), p, values)
    return [x[0], w[0], *spatial] if spatial is not None else None


def _pool(op_type: str, args: Args, p: dict[str, Any], values: dict[str, Any]) -> Shape | None:
    x, kernel = _first(args), p.get("kernel_sizes")
    if x is None or not kernel or len(x) < 3:
        return None
    spatial = _window(x, list(kernel), p, values)
    return [*x[:2], *spatial] if spatial is not None else None


def _linear(op_type: str, args: Args, p: dict[str, Any], values: dict[str, Any]) -> Shape | None:
    x, w = _first(args), p.get("weight_shape")
    return [*x[:-1], w[0]] if x and w else None


def _matmul(op_type: str, args: Args, p: dict[str, Any], values: dict[str, Any]) -> Shape | None:
    x, y = _first(args, "x"), _first(args, "y")
    if not x or not y or len(x) < 2 or len(y) < 2:
        return None
    if p.get("transpose_x"):
        x = [*x[:-2], x[-1], x[-2]]
    if p.get("transpose_y"):
        y = [*y[:-2], y[-1], y[-2]]
    batch = _broadcast([x[:-2], y[:-2]])
    return [*batch, x[-2], y[-1]] if batch is not None else None


def _reshape(op_type: str, args: Args, p: dict[str, Any], values: dict[str, Any]) -> Shape | None:
    x, target = _first(args), p.get("shape")
    if x is None or not isinstance(target, list) or 0 in target:
        return None
    if target.count(-1) == 1:
        known = math.prod(d for d in target if d != -1)
        if not known or math.prod(x) % known:
            return None
        return [math.prod(x) // known if d == -1 else d for d in target]
    return list(target) if math.prod(target) == math.prod(x) else None


def _expand_dims(op_type: str, args: Args, p: dict[str, Any], values: dict[str, Any]) -> Shape | None:  # fmt: skip
    x, axes = _first(args), p.get("axes")
    if x is None or not isinstance(axes, list):
        return None
    rank = len(x) + len(axes)
    out: list[int | None] = [None] * rank
    for axis in axes:
        out[axis % rank] = 1
    rest = iter(x)
    return [d if d is not None else next(rest) for d in out]


def _squeeze(op_type: str, args: Args, p: dict[str, Any], values: dict[str, Any]) -> Shape | None:
    x, axes = _first(args), p.get("axes")
    if x is None:
        return None
    drop = (
        {a % len(x) for a in axes}
        if isinstance(axes, list)
        else {i for i, d in enumerate(x) if d == 1}
    )
    return [d for i, d in enumerate(x) if i not in drop]


def _transpose(op_type: str, args: Args, p: dict[str, Any], values: dict[str, Any]) -> Shape | None:
    x, perm = _first(args), p.get("perm")
    return [x[i] for i in perm] if x and isinstance(perm, list) and len(perm) == len(x) else None


def _concat(op_type: str, args: Args, p: dict[str, Any], values: dict[str, Any]) -> Shape | None:
    parts = [t.shape for t in args.get("values", [])]
    axis = p.get("axis")
    if not parts or any(s is None for s in parts) or not isinstance(axis, int):
        return None
    out = list(parts[0])
    out[axis % len(out)] = sum(s[axis % len(out)] for s in parts)
    return out


def _pad(op_type: str, args: Args, p: dict[str, Any], values: dict[str, Any]) -> Shape | None:
    x, pad = _first(args), p.get("pad")
    if x is None or not isinstance(pad, list) or len(pad) % 2 or len(pad) // 2 > len(x):
        return None
    first = len(x) - len(pad) // 2  # pad covers the last len(pad)/2 dimensions
    return [d + (pad[2 * (i - first)] + pad[2 * (i - first) + 1] if i >= first else 0)
            for i, d in enumerate(x)]  # fmt: skip


def _upsample(op_type: str, args: Args, p: dict[str, Any], values: dict[str, Any]) -> Shape | None:
    x = _first(args)
    sh, sw = p.get("scale_factor_height"), p.get("scale_factor_width")
    if not x or len(x) < 4 or sh is None or sw is None:
        return None
    return [*x[:-2], int(x[-2] * sh), int(x[-1] * sw)]


def _reduce(op_type: str, args: Args, p: dict[str, Any], values: dict[str, Any]) -> Shape | None:
    x, axes = _first(args), p.get("axes")
    if x is None:
        return None
    chosen = {a % len(x) for a in axes} if isinstance(axes, list) else set(range(len(x)))
    keep = bool(values.get("keep_dims"))
    return [1 if i in chosen else d for i, d in enumerate(x) if keep or i not in chosen]


RULES: dict[str, Callable[[str, Args, dict[str, Any], dict[str, Any]], Shape | None]] = {
    "conv": _conv, "max_pool": _pool, "avg_pool": _pool, "l2_pool": _pool, "linear": _linear,
    "matmul": _matmul, "reshape": _reshape, "expand_dims": _expand_dims, "squeeze": _squeeze,
    "transpose": _transpose, "concat": _concat, "pad": _pad,
    "upsample_nearest_neighbor": _upsample, "upsample_bilinear": _upsample,
    "reduce_mean": _reduce, "reduce_sum": _reduce, "reduce_max": _reduce,
    "reduce_min": _reduce, "reduce_prod": _reduce, "reduce_l2_norm": _reduce,
}  # fmt: skip


def infer(op_type: str, args: Args, params: dict[str, Any], values: dict[str, Any]) -> Shape | None:
    """The first output's shape, computed from the inputs; ``values``: the op's constant
    arguments decoded (``ceil_mode``, ``keep_dims`` … that are not inventory params)."""
    try:
        if op_type in _SAME:
            return _first(args)
        if op_type in _BINARY:
            return _broadcast([t.shape for name in ("x", "y", "a", "b", "cond") for t in args.get(name, [])])  # fmt: skip
        rule = RULES.get(op_type)
        return rule(op_type, args, params, values) if rule else None
    except (IndexError, TypeError, ValueError, ZeroDivisionError, StopIteration):
        return None  # a parameter of a form the rule does not expect: unknown, not a crash


def merge(declared: list[int | None] | None, inferred: Shape | None) -> Shape | None:
    """Declared constant dimensions, the rest from ``inferred``; None if any stays unknown."""
    if declared is None:
        return None
    if inferred is None or len(inferred) != len(declared):
        return None if any(d is None for d in declared) else [int(d) for d in declared]  # type: ignore[arg-type]
    return [d if d is not None else i for d, i in zip(declared, inferred, strict=True)]
