"""Compute-plan evidence: the share of estimated cost the plan puts on the ANE under `all`,
and the ops it places elsewhere, each with its probable reason and fix.

Which ops count (decided here, used for both the share and the listing):

* ``NO_WORK_OP_TYPES`` (``const``) and ops the plan gives no unit and no cost are left out:
  they compute nothing, and MLComputePlan leaves them unplaced.
* ``PLUMBING_OP_TYPES`` (casts, reshapes) count and are listed when off the ANE, but alone
  they do not stop a FULL verdict when the ANE share stays ≥ ``FULL_SHARE``: a dtype cast
  at an input is not the model's work.
* Weights: the plan's cost estimates when every counted op has one (ML programs); otherwise
  (neural-network layers have none) each compute op weighs 1 and plumbing 0, and the
  verdict says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.protocol import (
    ComputePlan,
    ComputeUnit,
    ComputeUnits,
    EvidenceSource,
    OpOffAne,
    OpPlan,
    VerdictKind,
)
from orchestrator.verdict.lint import LintBook, joined_fixes, joined_reasons

FULL_SHARE = 0.99  # ≥ this share on the ANE (and no compute op off it) is FULL
NONE_SHARE = 0.01  # ≤ this share is NONE: rounding noise, not ANE work
MOSTLY_ANE_SHARE = 0.5  # above this the plan "says ANE" when checked against timing
NO_WORK_OP_TYPES = frozenset({"const"})
PLUMBING_OP_TYPES = frozenset(
    {"cast", "reshape", "squeeze", "expand_dims", "identity", "flatten", "flatten2d"}
)
NO_RULE_REASON = "not preferred on the ANE by the compute plan; no static rule explains it"
NO_RULE_FIX = "probe each op on the device (`anefarm submit --bisect`) to find what the ANE refuses"
SHOWN_NAMES = 5  # how many op names a one-line reason quotes


@dataclass
class PlanEvidence:
    kind: VerdictKind
    share: float
    ops_off: list[OpOffAne]
    reasons: list[str] = field(default_factory=list)


def _does_work(op: OpPlan) -> bool:
    if op.op_type in NO_WORK_OP_TYPES:
        return False
    return op.preferred is not None or bool(op.cost)


def _names(ops: list[OpPlan]) -> str:
    shown = ", ".join(op.name for op in ops[:SHOWN_NAMES])
    return shown + (f" and {len(ops) - SHOWN_NAMES} more" if len(ops) > SHOWN_NAMES else "")


def _off_ane(op: OpPlan, book: LintBook) -> OpOffAne:
    findings = book.for_op(op)
    if findings:
        reason, fix = joined_reasons(findings), joined_fixes(findings)
    else:
        supported = ", ".join(str(u) for u in op.supported) or "none reported"
        reason, fix = f"{NO_RULE_REASON} (supported: {supported})", NO_RULE_FIX
        if ComputeUnit.ANE in op.supported:
            reason = (
                f"the ANE supports it, but the compute plan prefers the {op.preferred or 'unknown unit'}"
                " (Core ML avoids hand-overs between units); no static rule explains it"
            )
    return OpOffAne(
        name=op.name,
        type=op.op_type,
        unit=op.preferred or "unknown",
        reason=reason,
        fix=fix,
        source=EvidenceSource.PLAN,
    )


def read_plan(plan: ComputePlan | None, book: LintBook, notes: list[str]) -> PlanEvidence | None:
    """Evidence from the plan, or None (with the reason in ``notes``) when there is none."""
    if plan is None:
        return None
    if plan.compute_units is not ComputeUnits.ALL:
        notes.append(f"the compute plan was made for `{plan.compute_units}`, not `all`: not used")
        return None
    work = [op for op in plan.ops if _does_work(op)]
    if not work:
        notes.append("the compute plan places no op that does work: not used")
        return None
    reasons: list[str] = []
    if all(op.cost is not None for op in work) and sum(op.cost or 0.0 for op in work) > 0:
        weights = [op.cost or 0.0 for op in work]
    else:
        weights = [0.0 if op.op_type in PLUMBING_OP_TYPES else 1.0 for op in work]
        if not any(weights):
            weights = [1.0] * len(work)
        reasons.append(
            "the plan has no cost estimates (neural-network layers): the ANE share counts compute ops equally"
        )
    on_ane = sum(w for op, w in zip(work, weights, strict=True) if op.preferred is ComputeUnit.ANE)
    share = min(1.0, max(0.0, on_ane / sum(weights)))
    off = [op for op in work if op.preferred is not ComputeUnit.ANE]
    blocking = [op for op in off if op.op_type not in PLUMBING_OP_TYPES]
    if share >= FULL_SHARE and not blocking:
        kind = VerdictKind.FULL
    elif share <= NONE_SHARE:
        kind = VerdictKind.NONE
    else:
        kind = VerdictKind.PARTIAL
    summary = f"compute plan: {share:.1%} of the estimated cost on the ANE, {len(off)} of {len(work)} ops off it"
    reasons.insert(0, summary + (f" ({_names(off)})" if off else ""))
    if off and not blocking and kind is VerdictKind.FULL:
        reasons.append(f"only plumbing ops ({_names(off)}) are off the ANE: counted as FULL")
    wrong = [op for op in work if op.preferred is ComputeUnit.ANE and book.for_op(op)]
    if wrong:
        reasons.append(
            f"lint predicted {len(wrong)} op(s) off the ANE that the plan places on it ({_names(wrong)}): the static rule may not hold here"
        )
    return PlanEvidence(kind, share, [_off_ane(op, book) for op in off], reasons)
