"""What the packed-probe tests (tests/bisect, tests/ios) share about a PackedFarm
(bench/packed_probes.py): the farm they bisect on, and where its bisection placed each
op signature, which packing must not change."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.packed_probes import PackedFarm
from bench.seeded_models import truth
from orchestrator import modelkit
from orchestrator.report import report_model
from orchestrator.report_rows import ReportRow
from orchestrator.store import models as db

XR_IOS16 = "iPhone11,8@16.7.8=1"


def placements(farm: PackedFarm) -> dict[str, tuple[str, str]]:
    """Op signature → (compute unit, status) of the farm's finished bisection."""
    parent = farm.parent(farm.job)
    assert parent.bisect_state == "done"
    signatures = (parent.bisection or {})["signatures"]
    return {s: (v["unit"], v["status"]) for s, v in signatures.items()}


@dataclass(frozen=True)
class Bisected:
    """A model bisected on a PackedFarm: its report row, and the context search its
    parent run recorded (rounds, windows, reuse)."""

    row: ReportRow
    context: dict[str, Any]
    parent_id: str

    def named_by_probe(self) -> dict[str, tuple[str | None, str | None]]:
        """Op → (role, carried by) of every op bisection named off the ANE."""
        return {
            str(o.name): (o.role, o.carried_by) for o in self.row.ops_off_ane if o.source == "probe"
        }

    def probe_reasons(self) -> dict[str, str]:
        """Op → what its probe (or the search that placed it) says."""
        ops = self.row.bisection.ops if self.row.bisection else []
        return {op.name: op.probe_reason or "" for op in ops}


# Timed predictions per setting. A hidden cause near the end of a 100-op chain moves `all`
# from `cpuAndNeuralEngine` by only 6-8 %: with 50 the interval's low end fell below the
# 4 % band (window_reading.TIGHT) about once in 15 runs, so no prefix search started; with
# 150 the low end stayed at 1.060-1.073 in 8 runs (the median's own noise shrinks too).
ITERATIONS = 150


def bisect_on(farm: PackedFarm, model: Path) -> Bisected:
    """Submit ``model`` with bisection on ``farm``, run every batch, read what it says."""
    job = farm.submit(model, iterations=ITERATIONS, bisect="auto")
    farm.run_all()
    with farm.sessions() as session:
        [row] = report_model(session, job).rows
        parent = session.get(db.Run, farm.parent(job).id)
        assert parent is not None
        return Bisected(row, (parent.bisection or {})["context"], str(parent.id))


def truly_off_ane(
    model: Path, product_type: str = "iPhone11,8"
) -> dict[str, tuple[str | None, str | None]]:
    """Op → (role, carried by) of every op the simulator's ground truth puts off the ANE."""
    ops = modelkit.inspect_model(model).ops
    return {op.name: role for op, role in zip(ops, truth(model, product_type), strict=True)
            if role[0]}  # fmt: skip
