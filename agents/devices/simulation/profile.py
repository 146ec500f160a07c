"""A model as one simulated chip sees it: support, per-op times, placement and steady-state
latency per compute-units setting. Pure, and cached by the device per (sha256, chip)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from agents.devices.simulation.chips import ALL_UNITS_ORDER, ChipModel
from agents.devices.simulation.latency import (
    op_time_ms,
    prediction_ms,
    stand_in_flops,
    transfer_ms,
)
from agents.devices.simulation.placement import Segment, place, segments
from agents.devices.simulation.support import (
    UNCOMPILABLE_KINDS,
    Support,
    moved_off_ane,
    supported_units,
)
from orchestrator.modelkit.inventory import OpInfo
from orchestrator.protocol import ComputeUnit, ComputeUnits


@dataclass(frozen=True)
class Placement:
    """Ground truth for one setting: where every op really ran, and the noiseless latency."""

    units: list[ComputeUnit]
    segments: list[Segment]
    steady_ms: float

    def share(self, unit: ComputeUnit) -> float:
        return sum(1 for u in self.units if u is unit) / max(len(self.units), 1)


@dataclass(frozen=True)
class ModelProfile:
    chip: str
    support: list[Support]
    op_times: list[dict[ComputeUnit, float]]
    placements: dict[ComputeUnits, Placement]
    uncompilable: list[int]  # op positions no Core ML runtime can compile
    # Op positions whose FLOPs modelkit could not know, charged a stand-in cost instead
    # (latency.stand_in_flops): their latency is an estimate, and says so in the Truth.
    estimated: list[int] = field(default_factory=list)


def profile(
    ops: Sequence[OpInfo],
    chip: ChipModel,
    *,
    off_ane: frozenset[str] = frozenset(),
    why: str = "moved off the ANE (SIMULATED regression)",
) -> ModelProfile:
    """``off_ane``: op names a SIMULATED regression moves off the ANE tonight (nights.py)."""
    support = [supported_units(op, chip) for op in ops]
    if off_ane:
        support = [moved_off_ane(s, op, off_ane, why) for s, op in zip(support, ops, strict=True)]
    charged = stand_in_flops(ops)
    op_times = [
        {unit: op_time_ms(op, unit, chip, charged[i]) for unit in ALL_UNITS_ORDER}
        for i, op in enumerate(ops)
    ]
    transfers = [transfer_ms(op) for op in ops]
    placements = {}
    for setting in ComputeUnits:
        units = place(support, setting, op_times, transfers)
        placements[setting] = Placement(
            units=units,
            segments=segments(units),
            steady_ms=prediction_ms(units, op_times, transfers),
        )
    uncompilable = [i for i, op in enumerate(ops) if op.kind in UNCOMPILABLE_KINDS]
    estimated = [i for i, flops in enumerate(charged) if flops is not None]
    return ModelProfile(chip.name, support, op_times, placements, uncompilable, estimated)


def scaled(prof: ModelProfile, factor: float) -> ModelProfile:
    """The profile with every steady-state latency × ``factor`` (a night's slow-down and
    run-to-run noise, nights.py); placements and op times stay as they are."""
    if factor == 1.0:
        return prof
    placements = {
        setting: Placement(p.units, p.segments, p.steady_ms * factor)
        for setting, p in prof.placements.items()
    }
    return replace(prof, placements=placements)
