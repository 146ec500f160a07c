"""How a simulated chip treats each op: support per unit, placement per compute-units
setting, and time. Every figure is in docs/simulation.md with its source or marked as an
assumption. This is the simulator's own table, deliberately not the lint rules: the two
may legitimately disagree (runtime choices, segment merging)."""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator import catalog
from orchestrator.modelkit.inventory import OpInfo
from orchestrator.protocol import ComputeUnit, ComputeUnits

ANE, GPU, CPU = ComputeUnit.ANE, ComputeUnit.GPU, ComputeUnit.CPU


@dataclass(frozen=True)
class ChipModel:
    ane_tflops: float  # effective, not peak: public TOPS × ANE_EFFICIENCY
    gpu_tflops: float  # effective fp16 (assumption)
    cpu_gflops: float  # effective, one performance cluster (assumption)
    bandwidth_gbs: float  # memory bandwidth seen by one op (assumption)


ANE_EFFICIENCY = 0.3  # assumption: small models reach ~30 % of the ANE's peak TOPS
A13_TOPS = 6.0  # not published; "~+20 % over A12" (ane-facts.md)
A18_TOPS = 35.0  # not published; assumed equal to the A17 Pro

GPU_TFLOPS = {"A12": 0.5, "A12X": 1.0, "A12Z": 1.1, "A13": 0.6, "A14": 0.75, "M1": 2.6, "A15": 1.3,
              "A16": 1.7, "A17 Pro": 2.1, "A18": 2.0, "A18 Pro": 2.2, "M4": 4.0}  # fmt: skip
CPU_GFLOPS = {"A12": 20, "A12X": 24, "A12Z": 24, "A13": 25, "A14": 35, "M1": 60, "A15": 40,
              "A16": 45, "A17 Pro": 55, "A18": 60, "A18 Pro": 62, "M4": 90}  # fmt: skip
BANDWIDTH = {"A12": 25, "A12X": 50, "A12Z": 50, "A13": 30, "A14": 35, "M1": 60, "A15": 40,
             "A16": 50, "A17 Pro": 50, "A18": 60, "A18 Pro": 60, "M4": 120}  # fmt: skip

OP_OVERHEAD_MS = {ANE: 0.004, GPU: 0.008, CPU: 0.001}  # per op on the unit (assumption)
SEGMENT_OVERHEAD_MS = {ANE: 0.12, GPU: 0.20, CPU: 0.0}  # per dispatch of a segment (assumption)
TRANSFER_GBS = 8.0  # moving a tensor between units (assumption)
TRANSFER_FIXED_MS = 0.05


def chip_model(chip: str) -> ChipModel:
    tops = catalog.CHIPS[chip].ane_tops
    if tops is None:
        tops = A13_TOPS if chip == "A13" else A18_TOPS
    return ChipModel(tops * ANE_EFFICIENCY, GPU_TFLOPS[chip], CPU_GFLOPS[chip], BANDWIDTH[chip])


def _ints(value: object) -> list[int]:
    if isinstance(value, list):
        return [int(v) for v in value if isinstance(v, int | float)]
    return [int(value)] if isinstance(value, int | float) else []


def supported_units(op: OpInfo, chip: str) -> list[ComputeUnit]:
    """Units that can execute the op on this chip, in Core ML's order of preference."""
    a12 = catalog.CHIPS[chip].generation == 12
    if op.kind in {"rnn", "gather", "embedding", "custom"}:
        return [CPU]  # recurrent layers and lookups: CPU (coremltools issues 1780, 337)
    if any(t.dtype == "float32" for t in op.outputs) and op.kind != "cast":
        return [GPU, CPU]  # the ANE computes in float16 only
    if op.kind == "conv" and a12 and any(d > 1 for d in _ints(op.params.get("dilations"))):
        return [GPU, CPU]  # the original write-up: dilated conv falls to the GPU on A12
    kernel = _ints(op.params.get("kernel_sizes", op.params.get("kernel")))
    if op.kind == "pool" and (
        any(k > 13 for k in kernel) or any(s > 2 for s in _ints(op.params.get("strides")))
    ):
        return [GPU, CPU]
    if op.kind == "upsample":
        factors = _ints(op.params.get("scale_factor_height")) + _ints(
            op.params.get("scale_factors")
        )
        if any(f > 2 for f in factors):
            return [GPU, CPU]
    if op.kind == "transpose" and a12:
        return [GPU, CPU]  # "Transpose unit is not supported" on A12/A12X
    return [ANE, GPU, CPU]


def op_time_ms(op: OpInfo, unit: ComputeUnit, chip: ChipModel) -> float:
    flops = float(op.flops or 0)
    elements = sum(_size(t.shape) for t in op.inputs + op.outputs)
    bytes_moved = elements * (2 if unit is ANE else 4) + op.weight_bytes
    rate = {ANE: chip.ane_tflops * 1e9, GPU: chip.gpu_tflops * 1e9, CPU: chip.cpu_gflops * 1e6}[
        unit
    ]
    if (
        unit is ANE
        and op.kind in {"linear", "matmul"}
        and any(t.shape and len(t.shape) == 3 for t in op.inputs)
    ):
        rate *= 0.25  # (B, S, C) layouts waste most of the ANE (apple/ml-ane-transformers)
    compute_ms = flops / rate
    memory_ms = bytes_moved / (chip.bandwidth_gbs * 1e6)
    return max(compute_ms, memory_ms) + OP_OVERHEAD_MS[unit]


def _size(shape: list[int] | None) -> int:
    size = 1
    for dim in shape or [0]:
        size *= dim
    return size


def transfer_ms(op: OpInfo) -> float:
    elements = sum(_size(t.shape) for t in op.outputs)
    return TRANSFER_FIXED_MS + elements * 2 / (TRANSFER_GBS * 1e6)


def place(ops: list[OpInfo], chip: str, setting: ComputeUnits) -> list[ComputeUnit]:
    """The unit of every op under one compute-units setting, the way Core ML behaves."""
    model = chip_model(chip)
    allowed = {
        ComputeUnits.CPU_ONLY: [CPU],
        ComputeUnits.CPU_AND_GPU: [GPU, CPU],
        ComputeUnits.CPU_AND_NE: [ANE, CPU],
        ComputeUnits.ALL: [ANE, GPU, CPU],
    }[setting]
    units = [next(u for u in [*supported_units(op, chip), CPU] if u in allowed) for op in ops]
    if setting is ComputeUnits.ALL:
        units = _merge_segments(ops, units, chip, model)
    return units


def _merge_segments(
    ops: list[OpInfo], units: list[ComputeUnit], chip: str, model: ChipModel
) -> list[ComputeUnit]:
    """Core ML keeps a region on the GPU when moving tensors ANE↔GPU costs more than the ANE
    saves (ane-facts.md, runtime heuristics): an ANE segment next to GPU work moves to the
    GPU if that is cheaper including the transfers it avoids."""
    units = list(units)
    start = 0
    while start < len(units):
        end = start
        while end + 1 < len(units) and units[end + 1] == units[start]:
            end += 1
        if units[start] is ANE:
            neighbours = {units[i] for i in (start - 1, end + 1) if 0 <= i < len(units)}
            if GPU in neighbours and all(
                GPU in supported_units(op, chip) for op in ops[start : end + 1]
            ):
                on_ane = (
                    sum(op_time_ms(op, ANE, model) for op in ops[start : end + 1])
                    + SEGMENT_OVERHEAD_MS[ANE]
                )
                on_ane += sum(transfer_ms(ops[i]) for i in (start - 1, end) if 0 <= i < len(ops))
                on_gpu = sum(op_time_ms(op, GPU, model) for op in ops[start : end + 1])
                if on_gpu < on_ane:
                    units[start : end + 1] = [GPU] * (end + 1 - start)
        start = end + 1
    return units


def prediction_ms(ops: list[OpInfo], units: list[ComputeUnit], chip: str) -> float:
    model = chip_model(chip)
    total = 0.02  # fixed Core ML call overhead (assumption)
    for i, (op, unit) in enumerate(zip(ops, units, strict=True)):
        total += op_time_ms(op, unit, model)
        if i == 0 or units[i - 1] != unit:
            total += SEGMENT_OVERHEAD_MS[unit]
            if i > 0:
                total += transfer_ms(ops[i - 1])
    return total
