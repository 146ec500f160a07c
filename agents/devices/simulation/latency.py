"""Time on a simulated device: per-op cost on its unit, transfers, and the fixed costs of a
run (compile, load, first prediction, launch, push). Figures: docs/simulation.md."""

from __future__ import annotations

from collections.abc import Sequence

from agents.devices.simulation.chips import (
    ANE,
    CALL_OVERHEAD_MS,
    OP_OVERHEAD_MS,
    SEGMENT_OVERHEAD_MS,
    TRANSFER_FIXED_MS,
    TRANSFER_GBS,
    ChipModel,
)
from orchestrator.modelkit.inventory import OpInfo, TensorInfo
from orchestrator.protocol import ComputeUnit

# Fixed costs of a batch (assumptions unless noted).
RUNNER_LAUNCH_S = 1.5  # launching the runner app over DVT
USB2_MBS = 35.0  # practical USB 2 throughput when pushing the model
COMPILE_BASE_MS, COMPILE_PER_OP_MS, COMPILE_MBS = 60.0, 0.4, 150.0  # on-device compilation
LOAD_BASE_MS, LOAD_GBS = 4.0, 2.0  # reading compiled weights into the units
COLD_LOAD_FACTOR = 3.0  # the first load of a configuration builds the unit programs
WARM_WEIGHT_SHARE = 0.2  # a warm load re-reads a fifth of the weights (page cache)
FIRST_PREDICTION_FACTOR, FIRST_PREDICTION_MS = 2.5, 0.5  # slow first prediction
# (B, S, C) linear/matmul layouts waste most of the ANE (apple/ml-ane-transformers).
ANE_SEQUENCE_LAYOUT_PENALTY = 4.0
# The least charged for an op of unknown FLOPs when no op of its kind has a known cost:
# about a mid-size convolution layer (assumption). Never zero: a free op makes an ANE segment
# look dearer than the GPU (its dispatch overhead), which called a multi-GFLOP model NONE.
STAND_IN_FLOPS = 1e9


def _elements(tensors: Sequence[TensorInfo]) -> int:
    total = 0
    for tensor in tensors:
        size = 1
        for dim in tensor.shape or [0]:
            size *= max(dim, 0)
        total += size
    return total


def stand_in_flops(ops: Sequence[OpInfo]) -> list[float | None]:
    """Per op, the FLOPs charged in place of unknown ones (None: known, charged as is).

    Conservative, never zero: the costliest known op of the same kind in the model, else
    the costliest known op of any kind but at least ``STAND_IN_FLOPS``. Over-charging can
    only make the simulated latency pessimistic; charging nothing made it optimistic and
    moved whole ANE segments to the GPU (docs/simulation.md, "Unknown cost")."""
    known = [op for op in ops if op.flops is not None]
    by_kind: dict[str, int] = {}
    for op in known:
        by_kind[op.kind] = max(by_kind.get(op.kind, 0), op.flops or 0)
    fallback = max(max((op.flops or 0 for op in known), default=0), STAND_IN_FLOPS)
    return [None if op.flops is not None else float(by_kind.get(op.kind) or fallback) for op in ops]


def op_time_ms(
    op: OpInfo, unit: ComputeUnit, chip: ChipModel, stand_in: float | None = None
) -> float:
    """Roofline: the slower of compute and memory traffic, plus the per-op overhead.
    ``stand_in``: the FLOPs charged when ``op.flops`` is unknown (``stand_in_flops``)."""
    width = 2 if unit is ANE else 4  # the ANE moves float16
    bytes_moved = _elements(op.inputs) * width + _elements(op.outputs) * width + op.weight_bytes
    flops = op.flops if op.flops is not None else (stand_in or STAND_IN_FLOPS)
    compute_ms = float(flops) / chip.flops_per_ms(unit)
    if (
        unit is ANE
        and op.kind in {"linear", "matmul"}
        and any(t.shape is not None and len(t.shape) == 3 for t in op.inputs)
    ):
        compute_ms *= ANE_SEQUENCE_LAYOUT_PENALTY
    memory_ms = bytes_moved / (chip.bandwidth_gbs * 1e6)
    return max(compute_ms, memory_ms) + OP_OVERHEAD_MS[unit]


def transfer_ms(op: OpInfo) -> float:
    """Handing the op's outputs (float16) to another unit."""
    return TRANSFER_FIXED_MS + _elements(op.outputs) * 2 / (TRANSFER_GBS * 1e6)


def prediction_ms(
    units: Sequence[ComputeUnit],
    op_times: Sequence[dict[ComputeUnit, float]],
    transfers: Sequence[float],
) -> float:
    """Steady-state latency of one prediction for a placement (no noise, no throttling)."""
    total = CALL_OVERHEAD_MS
    previous: ComputeUnit | None = None
    for i, unit in enumerate(units):
        total += op_times[i][unit]
        if unit is not previous:
            total += SEGMENT_OVERHEAD_MS[unit]
            if previous is not None:
                total += transfers[i - 1]
        previous = unit
    return total


def compile_ms(op_count: int, size_bytes: int) -> float:
    return COMPILE_BASE_MS + COMPILE_PER_OP_MS * op_count + size_bytes / (COMPILE_MBS * 1e3)


def load_ms(weight_bytes: int, *, cold: bool) -> float:
    weights_ms = weight_bytes / (LOAD_GBS * 1e6)
    if cold:
        return LOAD_BASE_MS * COLD_LOAD_FACTOR + weights_ms
    return LOAD_BASE_MS + weights_ms * WARM_WEIGHT_SHARE


def first_prediction_ms(steady_ms: float) -> float:
    return steady_ms * FIRST_PREDICTION_FACTOR + FIRST_PREDICTION_MS


def push_s(size_bytes: int) -> float:
    return size_bytes / (USB2_MBS * 1e6)
