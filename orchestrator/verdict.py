"""Does the model run on the ANE? Evidence, strongest first (ARCHITECTURE "How it is decided"):

1. the compute plan (iOS ≥ 17.4): share of estimated cost on the ANE, and the ops that are not;
2. the timing signature: ``all`` vs ``cpuAndGPU`` and ``cpuAndNeuralEngine`` vs ``cpuOnly``,
   compared by a seeded bootstrap interval of the ratio of medians — not a fixed threshold
   on two numbers;
3. static lint findings, attached to the ops off the ANE as the probable reason and fix.

Plan and timing disagreeing is itself a finding (``plan_timing_disagree``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from orchestrator.protocol import (
    ComputeUnit,
    ComputeUnits,
    EvidenceSource,
    OpOffAne,
    RunnerResult,
    TimingComparison,
    Verdict,
    VerdictKind,
)

BOOTSTRAP = 2000
CONFIDENCE = 0.95
# Two settings are "indistinguishable" when the whole 95 % interval of their median ratio
# lies within ±10 %; one is "clearly faster" when the whole interval is below 0.9.
EQUIVALENCE = (0.9, 1.1)
MIN_SAMPLES = 5
FULL_SHARE, NONE_SHARE = 0.99, 0.01
TRIVIAL_OPS = {"cast", "const"}  # layout/dtype plumbing, not work worth listing
COMPARISONS = [
    (ComputeUnits.ALL, ComputeUnits.CPU_AND_GPU),
    (ComputeUnits.CPU_AND_NE, ComputeUnits.CPU_ONLY),
    (ComputeUnits.ALL, ComputeUnits.CPU_ONLY),
    (ComputeUnits.ALL, ComputeUnits.CPU_AND_NE),
]


class LintLike(Protocol):
    op_index: int | None
    op_name: str
    op_type: str
    chip: str
    rule_id: str
    reason: str
    fix: str
    expected_unit: str


def compare(a: Sequence[float], b: Sequence[float], *, seed: int) -> tuple[float, float, float]:
    """Median ratio a/b and its bootstrap confidence interval."""
    rng = np.random.default_rng(seed)
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    ra = np.median(rng.choice(xa, size=(BOOTSTRAP, xa.size), replace=True), axis=1)
    rb = np.median(rng.choice(xb, size=(BOOTSTRAP, xb.size), replace=True), axis=1)
    ratios = ra / np.maximum(rb, 1e-12)
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(ratios, [tail, 100 - tail])
    ratio = float(np.median(xa) / max(float(np.median(xb)), 1e-12))
    return max(ratio, 1e-9), max(float(low), 1e-9), max(float(high), 1e-9)


def _timing(result: RunnerResult, seed: int) -> list[TimingComparison]:
    samples = {s.compute_units: s.latencies_ms for s in result.settings
               if s.error is None and len(s.latencies_ms) >= MIN_SAMPLES}  # fmt: skip
    out = []
    for i, (a, b) in enumerate(COMPARISONS):
        if a in samples and b in samples:
            ratio, low, high = compare(samples[a], samples[b], seed=seed + i)
            same = EQUIVALENCE[0] <= low and high <= EQUIVALENCE[1]
            out.append(
                TimingComparison(a=a, b=b, ratio=ratio, low=low, high=high, indistinguishable=same)
            )
    return out


def _find(
    timing: list[TimingComparison], a: ComputeUnits, b: ComputeUnits
) -> TimingComparison | None:
    return next((t for t in timing if t.a == a and t.b == b), None)


def _timing_says(timing: list[TimingComparison]) -> bool | None:
    """True: the ANE does work under ``all``; False: it does not; None: cannot tell."""
    all_gpu = _find(timing, ComputeUnits.ALL, ComputeUnits.CPU_AND_GPU)
    ne_cpu = _find(timing, ComputeUnits.CPU_AND_NE, ComputeUnits.CPU_ONLY)
    if all_gpu is not None:
        if all_gpu.high < EQUIVALENCE[0]:
            return True  # all clearly beats cpuAndGPU: something only the ANE can do
        if all_gpu.indistinguishable:
            return False  # all is just cpuAndGPU: the ANE adds nothing
    if ne_cpu is not None:
        if ne_cpu.indistinguishable:
            return False
        if ne_cpu.high < EQUIVALENCE[0] and all_gpu is None:
            return True
    return None


def decide(
    result: RunnerResult,
    *,
    device_class: str,
    chip: str,
    simulated: bool,
    lint: Sequence[LintLike] = (),
    seed: int = 0,
) -> Verdict:
    base = dict(model_sha256=result.model_sha256, device_class=device_class, chip=chip,
                os_version=result.device.os_version, simulated=simulated)  # fmt: skip
    if result.error is not None:
        return Verdict(**base, verdict=VerdictKind.INCONCLUSIVE, plan_available=False,
                       reasons=[f"the runner failed: {result.error.kind}: {result.error.message}"])  # fmt: skip
    findings = [f for f in lint if f.chip == chip]
    by_index = {f.op_index: f for f in findings if f.op_index is not None}
    timing = _timing(result, seed)
    says = _timing_says(timing)
    reasons: list[str] = []
    plan = result.compute_plan
    if plan is not None and plan.ops:
        work = [op for op in plan.ops if op.op_type not in TRIVIAL_OPS] or list(plan.ops)
        costs = [op.cost for op in plan.ops]
        if all(c is not None for c in costs) and sum(c or 0 for c in costs) > 0:
            total = sum(c or 0.0 for c in costs)
            share = (
                sum(op.cost or 0.0 for op in plan.ops if op.preferred is ComputeUnit.ANE) / total
            )
        else:
            share = sum(op.preferred is ComputeUnit.ANE for op in work) / len(work)
            reasons.append(
                "the plan has no cost estimates (neural network): ANE share counts layers"
            )
        off = [op for op in work if op.preferred is not ComputeUnit.ANE]
        ops_off = []
        for op in off:
            finding = by_index.get(op.index)
            ops_off.append(OpOffAne(
                name=op.name, type=op.op_type, unit=op.preferred or "unknown", source=EvidenceSource.PLAN,
                reason=finding.reason if finding else "not preferred on the ANE by the compute plan; no static rule explains it",
                fix=finding.fix if finding else "bisect the model (probe runs) to see what the ANE refuses",
            ))  # fmt: skip
        if share >= FULL_SHARE and not off:
            kind = VerdictKind.FULL
        elif share <= NONE_SHARE:
            kind = VerdictKind.NONE
        else:
            kind = VerdictKind.PARTIAL
        disagree = (says is False and share >= 0.5) or (says is True and share <= NONE_SHARE)
        if disagree:
            reasons.append(
                f"plan and timing disagree: the plan puts {share:.0%} of the cost on the ANE, "
                f"but timing says the ANE {'does no' if says is False else 'does'} work under `all`"
            )
        return Verdict(**base, verdict=kind, ane_share=round(share, 4), plan_available=True, timing=timing,
                       plan_timing_disagree=disagree, ops_off_ane=ops_off, reasons=reasons)  # fmt: skip
    reasons.append("no compute plan (OS below 17.4): decided by timing")
    lint_ops = [OpOffAne(name=f.op_name, type=f.op_type, unit=_unit(f.expected_unit), reason=f.reason,
                         fix=f.fix, source=EvidenceSource.LINT) for f in findings]  # fmt: skip
    if says is None:
        reasons.append("timing cannot tell: settings missing, failed, too few samples or too noisy")
        return Verdict(**base, verdict=VerdictKind.INCONCLUSIVE, plan_available=False, timing=timing,
                       ops_off_ane=lint_ops, reasons=reasons)  # fmt: skip
    if says is False:
        reasons.append("`all` is indistinguishable from a setting without the ANE")
        if lint_ops:
            reasons.append("the ops listed are the static prediction of what keeps it off")
        return Verdict(**base, verdict=VerdictKind.NONE, plan_available=False, timing=timing,
                       ops_off_ane=lint_ops, reasons=reasons)  # fmt: skip
    if lint_ops:
        reasons.append(
            "the ANE does work, and lint predicts these ops stay off it (by static prediction)"
        )
        return Verdict(**base, verdict=VerdictKind.PARTIAL, plan_available=False, timing=timing,
                       ops_off_ane=lint_ops, reasons=reasons)  # fmt: skip
    reasons.append("the ANE does the work under `all`; timing cannot place single ops")
    return Verdict(
        **base, verdict=VerdictKind.FULL, plan_available=False, timing=timing, reasons=reasons
    )


def _unit(text: str) -> ComputeUnit | str:
    try:
        return ComputeUnit(text if text != "ane" else "neuralEngine")
    except ValueError:
        return "unknown"
