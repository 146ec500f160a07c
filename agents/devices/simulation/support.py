"""Which units can run an op on a simulated chip: the simulator's own table.

Deliberately not the lint rules of ``orchestrator.modelkit``: the lint predicts, this
table *is* the simulated device, and the two may legitimately disagree (runtime choices,
segment merging). Every row is in docs/simulation.md with its source.
"""

from __future__ import annotations

from dataclasses import dataclass

from agents.devices.simulation.chips import ANE, CPU, GPU, ChipModel
from orchestrator.modelkit.inventory import OpInfo
from orchestrator.modelkit.kinds import KINDS
from orchestrator.protocol import ComputeUnit

ALL_UNITS = (ANE, GPU, CPU)
OFF_ANE = (GPU, CPU)
CPU_ONLY = (CPU,)
# Kinds a Core ML runtime cannot compile at all: a model holding one fails to compile.
UNCOMPILABLE_KINDS = frozenset({"custom"})


@dataclass(frozen=True)
class Support:
    """Units that can execute the op, in Core ML's order of preference, and why not the ANE."""

    units: tuple[ComputeUnit, ...]
    reason: str = ""


def _ints(value: object) -> list[int]:
    if isinstance(value, list | tuple):
        return [int(v) for v in value if isinstance(v, int | float)]
    return [int(value)] if isinstance(value, int | float) else []


def supported_units(op: OpInfo, chip: ChipModel) -> Support:
    a12_family = chip.generation == 12
    if op.kind in {"rnn", "custom"}:
        # Confirmed by an Apple engineer (coremltools issue 1780); CPU path on XS (issue 337).
        return Support(CPU_ONLY, "recurrent and custom layers run on the CPU")
    if op.kind in {"gather", "embedding"}:
        return Support(CPU_ONLY, "gather / embedding lookups are not ANE operations")
    if op.kind != "cast" and any(t.dtype == "float32" for t in op.outputs):
        return Support(OFF_ANE, "float32 compute: the ANE computes in float16 only")
    if op.kind == "conv" and a12_family and any(d > 1 for d in _ints(op.params.get("dilations"))):
        return Support(OFF_ANE, "dilated convolution is not supported by the A12 ANE")
    if op.kind == "pool":
        kernel = _ints(op.params.get("kernel_sizes", op.params.get("kernel")))
        if any(k > 13 for k in kernel) or any(s > 2 for s in _ints(op.params.get("strides"))):
            return Support(OFF_ANE, "pooling with kernel > 13 or stride > 2")
    if op.kind == "upsample":
        factors = [
            *_ints(op.params.get("scale_factor_height")),
            *_ints(op.params.get("scale_factor_width")),
            *_ints(op.params.get("scale_factors")),
        ]
        if any(f > 2 for f in factors):
            return Support(OFF_ANE, "upsampling by more than 2×")
    if op.kind == "transpose" and a12_family:
        return Support(OFF_ANE, "the A12 ANE has no transpose unit")
    return Support(ALL_UNITS)


# What a SIMULATED ``off_ane`` regression may name (docs/simulation.md, "Many nights"): a
# kind of modelkit's vocabulary, a native op type, or ``conv_dilated`` (dilation > 1).
DILATED_CONV = "conv_dilated"
OFF_ANE_NAMES = frozenset({*KINDS, *KINDS.values(), "other", DILATED_CONV})


def op_matches(name: str, op: OpInfo) -> bool:
    if name == DILATED_CONV:
        return op.kind == "conv" and any(d > 1 for d in _ints(op.params.get("dilations")))
    return name in (op.kind, op.type)


def moved_off_ane(support: Support, op: OpInfo, names: frozenset[str], why: str) -> Support:
    """``support`` without the ANE when a SIMULATED regression names the op tonight."""
    if ANE not in support.units or not any(op_matches(name, op) for name in names):
        return support
    return Support(tuple(u for u in support.units if u is not ANE), why)
