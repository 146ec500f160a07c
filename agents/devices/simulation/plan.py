"""The compute plan a simulated runner reports, as ``MLComputePlan`` does from iOS 17.4:
per op the preferred and supported units and, for ML programs only, an estimated cost."""

from __future__ import annotations

from collections.abc import Sequence

from agents.devices.simulation.profile import ModelProfile
from orchestrator.catalog.osversion import major_minor
from orchestrator.modelkit.inventory import OpInfo
from orchestrator.protocol import ComputePlan, ComputeUnits, OpPlan

PLAN_MIN_OS = (17, 4)


def plan_available(os_version: str) -> bool:
    return major_minor(os_version) >= PLAN_MIN_OS


def compute_plan(ops: Sequence[OpInfo], prof: ModelProfile, *, ml_program: bool) -> ComputePlan:
    # The plan is an anticipation for `all`, so it shows the placement the runtime chose.
    chosen = prof.placements[ComputeUnits.ALL].units
    times = [prof.op_times[i][unit] for i, unit in enumerate(chosen)]
    total = sum(times) or 1.0
    return ComputePlan(
        compute_units=ComputeUnits.ALL,
        ops=[
            OpPlan(
                index=op.index,
                name=op.name[:512],
                op_type=op.type[:128],
                preferred=chosen[i],
                supported=list(prof.support[i].units),
                cost=round(times[i] / total, 6) if ml_program else None,
            )
            for i, op in enumerate(ops)
        ],
    )
