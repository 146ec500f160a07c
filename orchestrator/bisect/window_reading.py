"""Reading a context-search window (``context``): did the run beside a cause go where the
cause goes under `all` (moved), stay on the ANE (stays), or can timing not tell (unknown)?
The model's own timing is read the same way: the whole model is one window too."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.bisect.placement import UNKNOWN
from orchestrator.protocol import ComputeUnits, RunnerResult, Verdict
from orchestrator.store import models as db
from orchestrator.verdict.timing import describe, pairwise

# `all` and `cpuAndGPU` within ±5 % of each other, the interval holding 1: the same path.
# Tighter than the verdict's ±10 %: a run that stays on the ANE but saves only a few per
# cent must not be called carried (a placement named must be right).
TIGHT = 1.05
# Staying on the ANE would change the window's time by less than this share: unknown.
CLOSE = 0.15
MOVED, STAYS = "moved", "stays"


@dataclass(frozen=True)
class WindowReading:
    verdict: str  # MOVED, STAYS or UNKNOWN
    reason: str


def read_window(result: RunnerResult, *, seed: int = 0) -> WindowReading:
    """Did the window's run go with its causes? (``context``'s docstring)."""
    if result.error is not None:
        return WindowReading(
            UNKNOWN, f"the window failed ({result.error.kind}): {result.error.message}"
        )
    gaps: list[str] = []
    found = pairwise(result, [(ComputeUnits.ALL, ComputeUnits.CPU_AND_GPU)], seed=seed, gaps=gaps)
    if not found:
        return WindowReading(
            UNKNOWN, "timing cannot read the window: " + ("; ".join(gaps) or "no `all`/`cpuAndGPU`")
        )
    [c] = found
    said = describe(c)
    if 1 / TIGHT <= c.low <= 1.0 <= c.high <= TIGHT:
        return WindowReading(MOVED, f"`all` runs the window like `cpuAndGPU` ({said})")
    if c.high < 1.0 or c.low > 1.0:
        # Another placement than the GPU path's: the ANE takes part (even when slower:
        # the split costs more GPU dispatches than Core ML's choice weighs).
        return WindowReading(
            STAYS, f"`all` differs from `cpuAndGPU` on the window: the ANE takes part ({said})"
        )
    return WindowReading(UNKNOWN, f"the window's timing cannot tell ({said})")


def unless_close_call(
    session: Session, run: db.Run, runner: RunnerResult, reading: WindowReading
) -> WindowReading:
    """A window that looks moved, unless staying on the ANE would look the same: Core ML
    weighs ANE time + hand-overs against GPU time, and near that balance the two choices
    differ by a per cent or two — less than timing can tell. Had the run stayed, `all`
    would take `cpuAndNeuralEngine`'s time with each cause on the GPU instead of the CPU:
    window `cpuAndNeuralEngine` − Σ cause (`cpuOnly` − `cpuAndGPU`), the causes' own
    probes. Within ``CLOSE`` of `cpuAndGPU`, the reading is unknown."""
    medians = {s.compute_units: _median(s.latencies_ms) for s in runner.settings if s.error is None}
    moved, ne = medians.get(ComputeUnits.CPU_AND_GPU), medians.get(ComputeUnits.CPU_AND_NE)
    parent = session.get(db.Run, run.parent_run_id) if run.parent_run_id else None
    window = (run.bisection or {}).get("window") or {}
    if not moved or ne is None or parent is None:
        return WindowReading(UNKNOWN, f"{reading.reason}; but the window's settings are missing")
    ops = (parent.bisection or {}).get("ops", [])
    stays = ne
    for position in window.get("causes", []):
        gap = _cause_gap(session, parent, ops[position].get("signature"))
        if gap is None:
            return WindowReading(
                UNKNOWN,
                f"{reading.reason}; but {ops[position]['name']} has no probe of its own to tell"
                " how close Core ML's choice is",
            )
        stays -= gap
    if abs(stays / moved - 1) < CLOSE:
        return WindowReading(
            UNKNOWN,
            f"{reading.reason}; but staying on the ANE would take about {stays:.3f} ms against"
            f" {moved:.3f} ms: too close a call for timing to tell",
        )
    return reading


def _cause_gap(session: Session, parent: db.Run, signature: str | None) -> float | None:
    """`cpuOnly` − `cpuAndGPU` median of the cause's single-op probe on the parent's device
    class (this bisection's, else the newest one)."""
    if signature is None:
        return None
    probe = session.scalars(
        select(db.Run)
        .filter_by(probe_signature=signature, probe_repeat=1, device_class=parent.device_class)
        .order_by((db.Run.parent_run_id == parent.id).desc(), db.Run.created_at.desc())
        .limit(1)
    ).first()
    if probe is None:
        return None
    p50 = {
        str(m.compute_units): m.p50
        for m in session.scalars(select(db.Measurement).filter_by(run_id=probe.id))
    }
    cpu, gpu = p50.get(str(ComputeUnits.CPU_ONLY)), p50.get(str(ComputeUnits.CPU_AND_GPU))
    return None if cpu is None or gpu is None else float(cpu - gpu)


def _median(values: list[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def whole_model(verdict: Verdict) -> str | None:
    """Why the model's own timing shows every op off the ANE (`all` runs it like
    `cpuAndGPU`, by the window's criterion), or None. The whole model is the one window
    whose context is exact by construction: no probe needed."""
    c = next(
        (c for c in verdict.timing if (c.a, c.b) == (ComputeUnits.ALL, ComputeUnits.CPU_AND_GPU)),
        None,
    )
    if c is None or not 1 / TIGHT <= c.low <= 1.0 <= c.high <= TIGHT:
        return None
    return f"the model's own timing: `all` runs it like `cpuAndGPU` ({describe(c)})"
