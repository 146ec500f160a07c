"""Exact checks, no statistics: placement (op → unit) and verdict against the baseline's.

The reference is the last night whose value the check accepted (SAME, or the first night
after the reset), or the pinned night. A change is reported with the ops that moved, their
kind, old and new unit; the reference does not move until the wiring resets the baseline,
so an open change is reported every night it lasts (the alert decides update/re-raise).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from orchestrator.regress.findings import OpMove
from orchestrator.regress.series import UNIT_RANK, VERDICT_RANK, NightPoint, PlacedOp, PointStatus
from orchestrator.regress.steps import IMPROVEMENT, INSUFFICIENT, NO_VALUE, REGRESSION, SAME

V = TypeVar("V")


@dataclass
class ExactResult:
    """Per point of one series (not per column): code, reference point index, moves."""

    code: list[int] = field(default_factory=list)
    reference: list[int] = field(default_factory=list)  # -1: none
    moves: dict[int, tuple[OpMove, ...]] = field(default_factory=dict)


def placement_moves(
    before: Mapping[str, PlacedOp], after: Mapping[str, PlacedOp]
) -> tuple[OpMove, ...]:
    """Ops present on both nights whose unit differs, by op name (added or removed ops
    belong to a changed model, which attribution names)."""
    if before == after:
        return ()
    return tuple(
        OpMove(op=op, kind=placed.kind or op, before=before[op].unit, after=placed.unit)
        for op, placed in sorted(after.items())
        if op in before and before[op].unit != placed.unit
    )


def placement_code(moves: Sequence[OpMove]) -> int:
    if not moves:
        return SAME
    worse = any(UNIT_RANK[m.after] < UNIT_RANK[m.before] for m in moves)
    return REGRESSION if worse else IMPROVEMENT


def verdict_code(before: str, after: str) -> int:
    if VERDICT_RANK[after] == VERDICT_RANK[before]:
        return SAME
    return REGRESSION if VERDICT_RANK[after] < VERDICT_RANK[before] else IMPROVEMENT


def _walk(
    points: Sequence[NightPoint],
    start: int,
    pin: int,
    value: Callable[[NightPoint], V | None],
    judge: Callable[[V, V, int], int],
) -> ExactResult:
    result = ExactResult()
    if not any(value(p) is not None for p in points):  # nothing to compare: the usual case
        result.code = [INSUFFICIENT if p.status is PointStatus.OK else NO_VALUE for p in points]
        result.reference = [-1] * len(points)
        return result
    ref = -1
    for i, point in enumerate(points):
        tonight = value(point) if point.status is PointStatus.OK else None
        if point.status is not PointStatus.OK:
            code = NO_VALUE
        elif tonight is None or i < start:
            code = INSUFFICIENT
        else:
            if 0 <= pin < i:
                ref = pin if value(points[pin]) is not None else -1
            before = value(points[ref]) if ref >= 0 else None
            if before is None:
                code, ref = INSUFFICIENT, i
            else:
                code = judge(before, tonight, i)
                if code == SAME and not 0 <= pin < i:
                    ref = i
        result.code.append(code)
        result.reference.append(ref if code in (SAME, REGRESSION, IMPROVEMENT) else -1)
    return result


def placement_checks(points: Sequence[NightPoint], start: int, pin: int) -> ExactResult:
    moves: dict[int, tuple[OpMove, ...]] = {}

    def judge(before: Mapping[str, PlacedOp], after: Mapping[str, PlacedOp], i: int) -> int:
        found = placement_moves(before, after)
        if found:
            moves[i] = found
        return placement_code(found)

    result = _walk(points, start, pin, lambda p: p.placement, judge)
    result.moves = moves
    return result


def verdict_checks(points: Sequence[NightPoint], start: int, pin: int) -> ExactResult:
    return _walk(points, start, pin, lambda p: p.verdict, lambda b, a, _i: verdict_code(b, a))
