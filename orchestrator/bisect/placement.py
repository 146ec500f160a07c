"""Where does a probe's op run? ``read_probe()`` turns one probe run's result into a
placement with a confidence, or INCONCLUSIVE with why. Pure: no database, no queue.

A probe is a model of one op (or of ``repeat`` parallel copies of it, see ``LIFT``). Its
evidence, strongest first:

* the compute plan (iOS ≥ 17.4): the unit Core ML prefers for the op under `all`;
* the timing signature, with the statistics of verdicts (``verdict.timing``):
  - `cpuAndNeuralEngine` differs from `cpuOnly` → the ANE takes the op when allowed; the
    unit under `all` is the setting `all` is indistinguishable from (`cpuAndNeuralEngine`
    → ANE, `cpuAndGPU` → GPU);
  - `cpuAndNeuralEngine` ≈ `cpuOnly`: allowing the ANE changed nothing. That means "off the
    ANE" only when the op's own time dominates its timing, so that an accelerator taking it
    would show: the GPU beats the CPU on it, or a lifted probe takes ``LIFT_GROWTH``× the
    single op's time or more. Then the op runs where `all` matches (`cpuAndGPU` → GPU,
    `cpuOnly` → CPU), and when every setting stays as fast as `cpuOnly` at that scale, on
    "GPU or CPU" when the GPU is as fast as the CPU on it (an LSTM, say: the CPU runs it
    whatever the setting allows). These are inferences (an ANE exactly
    as fast as the CPU would look the same), so their confidence is lower;
  - otherwise — every setting within the ±10 % band, an interval straddling its edge, or
    an accelerator's fixed cost outweighing the op — the op is too small for its placement
    to show: INCONCLUSIVE, ``too_small``. The planner then lifts the probe once: ``LIFT``
    parallel copies of the op in one model multiply the op's own time and leave the fixed
    overhead alone. A lifted probe that is still too small is final.

Confidence (0–1) is a documented scale, not a probability:
``DIRECT`` — the forced and the default setting agree on the unit (or a compute plan and
timing agree); ``PLAN_ONLY`` — the plan names the unit, timing cannot confirm it;
``INFERRED`` — off the ANE by the inference above, or `all` matches no single setting.
"""

from __future__ import annotations

import statistics
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
# A lifted probe whose `cpuOnly` median is this many times the single op's is dominated by
# the op's own time (16 copies of an op that is half the overhead give ~8.5×).
LIFT_GROWTH = 3.0
UNKNOWN = "unknown"
GPU_OR_CPU = "gpu-or-cpu"  # placed off the ANE; timing cannot tell the GPU from the CPU

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
    unit: ComputeUnit | None  # None when placed: off the ANE, GPU or CPU (``GPU_OR_CPU``)
    confidence: float | None
    reason: str
    too_small: bool = False  # near or below the timer's noise: a lifted probe may tell

    @property
    def unit_name(self) -> str:
        if self.unit is not None:
            return str(self.unit)
        return GPU_OR_CPU if self.status is ProbeStatus.PLACED else UNKNOWN


def failed(reason: str) -> ProbeReading:
    return ProbeReading(ProbeStatus.FAILED, None, None, reason)


def read_probe(
    result: RunnerResult, *, seed: int = 0, repeat: int = 1, baseline_ms: float | None = None
) -> ProbeReading:
    """The placement of the probe's op under `all`, from its plan and timing. A lifted
    probe passes ``baseline_ms``: the single op's `cpuOnly` median, to see how much the
    copies weigh."""
    if result.error is not None:
        return failed(
            f"the probe failed on the device ({result.error.kind}): {result.error.message}"
        )
    timed = _by_timing(result, seed, repeat, _growth(result, baseline_ms))
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


def cpu_only_median(result: RunnerResult) -> float | None:
    setting = next((s for s in result.settings if s.compute_units is CPU_ONLY), None)
    if setting is None or setting.error is not None or not setting.latencies_ms:
        return None
    return float(statistics.median(setting.latencies_ms))


def _growth(result: RunnerResult, baseline_ms: float | None) -> float | None:
    lifted = cpu_only_median(result)
    if lifted is None or not baseline_ms or baseline_ms <= 0:
        return None
    return lifted / baseline_ms


def _by_timing(result: RunnerResult, seed: int, repeat: int, growth: float | None) -> ProbeReading:
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
    # Allowing the ANE changed nothing. That says "off the ANE" only when the op's own
    # time dominates, so that an accelerator taking it would show: the GPU beats the CPU on
    # it, or a lifted probe (``LIFT`` copies) takes clearly longer than the single op did.
    scaled = repeat > 1 and growth is not None and growth >= LIFT_GROWTH
    grown = f"{repeat} copies take {growth:.1f}× the time of one" if growth is not None else ""
    if not scaled and gpu is not Relation.FASTER:
        lifted = (
            f" even with {repeat} copies of it" + (f" ({grown})" if grown else "")
            if repeat > 1
            else ""
        )
        what = {
            Relation.EQUIVALENT: f"`cpuAndNeuralEngine`, `cpuAndGPU` and `cpuOnly` are within ±{EQUIVALENCE_MARGIN - 1:.0%} of each other",
            Relation.SLOWER: "the fixed cost of an accelerator outweighs the op (`cpuAndGPU` is slower than `cpuOnly`) and `cpuAndNeuralEngine` ≈ `cpuOnly`",
            Relation.UNRESOLVED: "`cpuAndGPU`/`cpuOnly` straddles the band",
        }[gpu]
        return _inconclusive(
            f"the op is too small to time{lifted}: {what} ({said})", too_small=repeat == 1
        )
    if gpu is Relation.EQUIVALENT:
        # Off the ANE for sure; but the GPU is as fast as the CPU on it, so timing cannot
        # say which of the two runs it under `all` (an LSTM stays on the CPU, say).
        return ProbeReading(
            ProbeStatus.PLACED, None, INFERRED,
            f"off the ANE, on the GPU or the CPU: every setting is as fast as `cpuOnly` although {grown},"
            f" and the GPU is as fast as the CPU on it ({said})",
        )  # fmt: skip
    if CPU_GPU in under_all:
        unit = ComputeUnit.GPU
    elif CPU_ONLY in under_all:
        unit = ComputeUnit.CPU
    else:  # `all` matches neither: the faster side of `cpuOnly` is the GPU's
        unit = ComputeUnit.GPU if rel.get((ALL, CPU_ONLY)) is Relation.FASTER else ComputeUnit.CPU
    why = grown if scaled else "the GPU beats the CPU on it"
    return ProbeReading(
        ProbeStatus.PLACED, unit, INFERRED,
        f"off the ANE: `cpuAndNeuralEngine` ≈ `cpuOnly` although the op's own time shows ({why});"
        f" under `all` it runs on the {unit} ({said})",
    )  # fmt: skip


def _inconclusive(reason: str, *, too_small: bool = False) -> ProbeReading:
    return ProbeReading(ProbeStatus.INCONCLUSIVE, None, None, reason, too_small)
