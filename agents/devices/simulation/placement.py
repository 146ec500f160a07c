"""Placement per compute-units setting, the way Core ML behaves: every op goes to the most
preferred unit the setting allows, the graph falls into unit segments, and under ``all`` an
ANE segment moves to the GPU when that costs less than the ANE plus the transfers it causes
(ane-facts.md: runtime heuristics)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from agents.devices.simulation.chips import ANE, CPU, GPU, SEGMENT_OVERHEAD_MS
from agents.devices.simulation.support import Support
from orchestrator.protocol import ComputeUnit, ComputeUnits

ALLOWED: dict[ComputeUnits, tuple[ComputeUnit, ...]] = {
    ComputeUnits.CPU_ONLY: (CPU,),
    ComputeUnits.CPU_AND_GPU: (GPU, CPU),  # never the ANE
    ComputeUnits.CPU_AND_NE: (ANE, CPU),  # ANE, else CPU
    ComputeUnits.ALL: (ANE, GPU, CPU),
}


@dataclass(frozen=True)
class Segment:
    unit: ComputeUnit
    start: int  # first op index (position in the op list)
    stop: int  # one past the last


def segments(units: Sequence[ComputeUnit]) -> list[Segment]:
    out: list[Segment] = []
    start = 0
    for i in range(1, len(units) + 1):
        if i == len(units) or units[i] is not units[start]:
            out.append(Segment(units[start], start, i))
            start = i
    return out


def place(
    support: Sequence[Support],
    setting: ComputeUnits,
    op_times: Sequence[dict[ComputeUnit, float]],
    transfers: Sequence[float],
) -> list[ComputeUnit]:
    """The unit of every op under one setting (CPU runs everything, so there is always one)."""
    allowed = ALLOWED[setting]
    units = [next((u for u in s.units if u in allowed), CPU) for s in support]
    if setting is ComputeUnits.ALL:
        _keep_regions_on_gpu(units, support, op_times, transfers)
    return units


def _keep_regions_on_gpu(
    units: list[ComputeUnit],
    support: Sequence[Support],
    op_times: Sequence[dict[ComputeUnit, float]],
    transfers: Sequence[float],
) -> None:
    for seg in segments(units):
        if seg.unit is not ANE:
            continue
        ops = range(seg.start, seg.stop)
        before = units[seg.start - 1] if seg.start > 0 else None
        after = units[seg.stop] if seg.stop < len(units) else None
        if GPU not in (before, after) or any(GPU not in support[i].units for i in ops):
            continue
        on_ane = sum(op_times[i][ANE] for i in ops) + SEGMENT_OVERHEAD_MS[ANE]
        # The hand-overs into and out of the ANE segment disappear if it runs on the GPU.
        on_ane += transfers[seg.start - 1] if before is not None else 0.0
        on_ane += transfers[seg.stop - 1] if after is not None else 0.0
        on_gpu = sum(op_times[i][GPU] for i in ops)
        if on_gpu < on_ane:
            units[seg.start : seg.stop] = [GPU] * (seg.stop - seg.start)


CAUSE, CARRIED = "cause", "carried"


def context_roles(
    support: Sequence[Support], units: Sequence[ComputeUnit]
) -> list[tuple[str | None, int | None]]:
    """Ground truth of context effects for one placement (``all``'s): per op ``(None,
    None)`` on the ANE; ``(CAUSE, None)`` off it because the ANE cannot run it;
    ``(CARRIED, i)`` off it although the ANE could, moved along by ``_keep_regions_on_gpu``
    with the op at position ``i`` (the op off the ANE bordering its segment on the GPU side,
    the one before it first). Benchmarks and tests score context search against it."""
    roles: list[tuple[str | None, int | None]] = [(None, None)] * len(units)
    for seg in segments(units):
        if seg.unit is ANE:
            continue
        for i in range(seg.start, seg.stop):
            roles[i] = (CAUSE, None) if ANE not in support[i].units else (CARRIED, None)
    for i, (role, _) in enumerate(roles):
        if role != CARRIED:
            continue
        start, stop = i, i + 1  # the run of carried ops around i
        while start > 0 and roles[start - 1][0] == CARRIED:
            start -= 1
        while stop < len(units) and roles[stop][0] == CARRIED:
            stop += 1
        sides = [j for j in (start - 1, stop) if 0 <= j < len(units) and roles[j][0] == CAUSE]
        by = next((j for j in sides if units[j] is GPU), sides[0] if sides else None)
        roles[i] = (CARRIED, by)
    return roles
