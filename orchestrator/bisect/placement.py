"""Where does a probe's op run? ``read_probe()`` turns one probe run's result into a
placement with a confidence, or INCONCLUSIVE with why. Pure: no database, no queue.

A probe is a model of one op (or of ``repeat`` parallel copies of it, see ``LIFT``). Its
evidence, strongest first:

* the compute plan (iOS ≥ 17.4): the unit Core ML prefers for the op under `all`;
* the timing signature, with the statistics of verdicts (``verdict.timing``):
  - `cpuAndNeuralEngine` differs from `cpuOnly` → the ANE takes the op when allowed; the
    unit under `all` is the setting `all` is indistinguishable from (`cpuAndNeuralEngine`
    → ANE, `cpuAndGPU` → GPU);
  - `cpuAndNeuralEngine` ≈ `cpuOnly` while `cpuAndGPU` differs from `cpuOnly` → the timer
    resolves a change of unit for this op, and allowing the ANE changed nothing: the op
    stays off the ANE; under `all` it runs where `all` matches (`cpuAndGPU` → GPU,
    `cpuOnly` → CPU). This is an inference (an ANE exactly as fast as the CPU would look
    the same), so its confidence is lower;
  - all four settings within the ±10 % band, or an interval straddling its edge → the op
    is too small for its placement to show above the per-prediction overhead and the
    timer's noise: INCONCLUSIVE, ``too_small``. The planner then
    lifts the probe: ``LIFT`` parallel copies of the op in one model multiply the op's
    own time and leave the fixed overhead alone.

Confidence (0–1) is a documented scale, not a probability:
``DIRECT`` — the forced and the default setting agree on the unit (or a compute plan and
timing agree); ``PLAN_ONLY`` — the plan names the unit, timing cannot confirm it;
``INFERRED`` — off the ANE by the inference above, or `all` matches no single setting.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from orchestrator.protocol import ComputeUnit, ComputeUnits, RunnerResult
from orchestrator.verdict.timing import (
    EQUIVALENCE_MARGIN,
    Relation,
    describe,
    pairwise,
    relation,
)

DIRECT, PLAN_ONLY, INFERRED = 0.9, 0.8, 0.6
LIFT = 16  # copies of the op in a lifted probe
UNKNOWN = "unknown"

ALL, CPU_NE, CPU_GPU, CPU_ONLY = (
    ComputeUnits.ALL,
    ComputeUnits.CPU_AND_NE,
    ComputeUnits.CPU_AND_GPU,
    ComputeUnits.CPU_ONLY,
)
PAIRS = ((CPU_NE, CPU_ONLY), (CPU_GPU, CPU_ONLY), (ALL, CPU_NE), (ALL, CPU_GPU), (ALL, CPU_ONLY))


class ProbeStatus(StrEnum):
    PLACED = "placed"
    INCONCLUSIVE = "inconclusive"
    FAILED = "failed"  # the probe itself failed on the device (compile, load, predict)


@dataclass(frozen=True)
class ProbeReading:
    status: ProbeStatus
    unit: ComputeUnit | None
    confidence: float | None
    reason: str
    too_small: bool = False  # near or below the timer's noise: a lifted probe may tell

    @property
    def unit_name(self) -> str:
        return str(self.unit) if self.unit is not None else UNKNOWN


def failed(reason: str) -> ProbeReading:
    return ProbeReading(ProbeStatus.FAILED, None, None, reason)


def read_probe(result: RunnerResult, *, seed: int = 0, repeat: int = 1) -> ProbeReading:
    """The placement of the probe's op under `all`, from its plan and timing."""
    if result.error is not None:
        return failed(
            f"the probe failed on the device ({result.error.kind}): {result.error.message}"
        )
    timed = _by_timing(result, seed, repeat)
    planned = _plan_unit(result)
    if planned is None:
        return timed
    said = f"the compute plan prefers {planned} for the op"
    if timed.status is ProbeStatus.PLACED and timed.unit is planned:
        return ProbeReading(
            ProbeStatus.PLACED, planned, DIRECT, f"{said}; timing agrees ({timed.reason})"
        )
    if timed.status is ProbeStatus.PLACED:
        return ProbeReading(
            ProbeStatus.PLACED, planned, INFERRED,
            f"{said}, but timing says {timed.unit} ({timed.reason}): placed by the plan",
        )  # fmt: skip
    return ProbeReading(ProbeStatus.PLACED, planned, PLAN_ONLY, f"{said}; {timed.reason}")


def _plan_unit(result: RunnerResult) -> ComputeUnit | None:
    plan = result.compute_plan
    if plan is None or not plan.ops:
        return None
    preferred = {op.preferred for op in plan.ops if op.preferred is not None}
    # A lifted probe holds copies of one op: they agree, or the plan says nothing clear.
    return next(iter(preferred)) if len(preferred) == 1 else None


def _by_timing(result: RunnerResult, seed: int, repeat: int) -> ProbeReading:
    gaps: list[str] = []
    found = {(c.a, c.b): c for c in pairwise(result, PAIRS, seed=seed, gaps=gaps)}
    if (CPU_NE, CPU_ONLY) not in found or (CPU_GPU, CPU_ONLY) not in found:
        why = "; ".join(gaps) or "a setting is missing"
        return _inconclusive(f"timing cannot place the op: it needs all four settings ({why})")
    rel = {pair: relation(c.low, c.high) for pair, c in found.items()}
    said = "; ".join(describe(c) for c in found.values())
    ne, gpu = rel[(CPU_NE, CPU_ONLY)], rel[(CPU_GPU, CPU_ONLY)]
    if ne is Relation.UNRESOLVED:
        return _inconclusive(
            f"`cpuAndNeuralEngine`/`cpuOnly` straddles the ±{EQUIVALENCE_MARGIN - 1:.0%} band ({said}):"
            " the op's own time is close to the timer's noise; a lifted probe or more iterations would tell",
            too_small=True,
        )
    under_all = [s for s in (CPU_NE, CPU_GPU, CPU_ONLY) if rel.get((ALL, s)) is Relation.EQUIVALENT]
    if ne is not Relation.EQUIVALENT:
        # Allowing the ANE changes the op's time: the ANE takes it.
        if under_all[:1] == [CPU_NE]:
            return ProbeReading(ProbeStatus.PLACED, ComputeUnit.ANE, DIRECT,
                                f"on the ANE: `cpuAndNeuralEngine` is {ne} than `cpuOnly` and `all` matches it ({said})")  # fmt: skip
        if CPU_GPU in under_all:
            return ProbeReading(ProbeStatus.PLACED, ComputeUnit.GPU, DIRECT,
                                f"the ANE can run it, but Core ML prefers the GPU under `all` ({said})")  # fmt: skip
        return ProbeReading(ProbeStatus.PLACED, ComputeUnit.ANE, INFERRED,
                            f"on the ANE: `cpuAndNeuralEngine` is {ne} than `cpuOnly`; `all` matches no single setting ({said})")  # fmt: skip
    if gpu is Relation.EQUIVALENT:
        lifted = f" even with {repeat} copies of it" if repeat > 1 else ""
        return _inconclusive(
            f"the op is too small to time{lifted}: `cpuAndNeuralEngine`, `cpuAndGPU` and `cpuOnly`"
            f" are within ±{EQUIVALENCE_MARGIN - 1:.0%} of each other ({said})",
            too_small=True,
        )
    if gpu is Relation.UNRESOLVED:
        return _inconclusive(
            f"`cpuAndGPU`/`cpuOnly` straddles the band ({said}): the op's own time is close to"
            " the timer's noise; a lifted probe or more iterations would tell",
            too_small=True,
        )
    # The timer sees a change of unit (GPU vs CPU), and allowing the ANE changed nothing.
    if CPU_GPU in under_all:
        unit = ComputeUnit.GPU
    elif CPU_ONLY in under_all:
        unit = ComputeUnit.CPU
    else:  # `all` matches neither: the faster side of `cpuOnly` is the GPU's
        unit = ComputeUnit.GPU if rel.get((ALL, CPU_ONLY)) is Relation.FASTER else ComputeUnit.CPU
    return ProbeReading(
        ProbeStatus.PLACED, unit, INFERRED,
        f"off the ANE: `cpuAndNeuralEngine` ≈ `cpuOnly` although the timer tells `cpuAndGPU` from `cpuOnly`;"
        f" under `all` it runs on the {unit} ({said})",
    )  # fmt: skip


def _inconclusive(reason: str, *, too_small: bool = False) -> ProbeReading:
    return ProbeReading(ProbeStatus.INCONCLUSIVE, None, None, reason, too_small)
