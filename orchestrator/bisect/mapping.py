"""Mapping probe placements back onto the parent model: per-op placement "by probe", and
the verdict that follows from it. Pure: no database, no queue.

Rules:

* every op takes the placement of its signature's probe; ops no probe could be built for,
  and probes that failed or stayed inconclusive, are ``unknown`` and said so;
* ops placed off the ANE → PARTIAL when others are on it, NONE when none is; each named
  with its unit and the lint's reason and fix when a rule explains it (else the probe's
  own reading), ``source=probe``;
* no op off the ANE, nothing unknown → FULL when the model's own timing agrees. When the
  model's timing says the ANE is idle or bypassed although every op runs on it alone, the
  cause is a context effect single-op probes cannot see (segment merging, transfer costs):
  the verdict keeps the model's timing and says so, and offers a prefix search;
* the model's own timing is kept as context: when it says Core ML prefers the GPU under
  `all` while probes put ops on the ANE, the neighbours of the ops off the ANE are moved to
  the GPU with them (segment merging), which the fix of those ops undoes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from orchestrator.bisect.placement import UNKNOWN, ProbeStatus
from orchestrator.protocol import ComputeUnit, EvidenceSource, OpOffAne, Verdict, VerdictKind
from orchestrator.verdict.lint import (
    NAME_LIMIT,
    TYPE_LIMIT,
    LintBook,
    LintLike,
    clip,
    joined_fixes,
    joined_reasons,
)
from orchestrator.verdict.plan import FULL_SHARE, NONE_SHARE, PLUMBING_OP_TYPES

MAX_REASONS = 100
SHOWN = 5
PREFIX_SEARCH = (
    "prefix search: profile growing prefixes of the model (its first 1, 2, 4, … ops, then"
    " bisect between the last prefix on the ANE and the first off it) to find the op where"
    " placement breaks; `anefarm probes MODEL DIR --prefix N` writes the first N ops as a model"
)
ANE = str(ComputeUnit.ANE)
CAUSE, CARRIED = "cause", "carried"  # roles of ops off the ANE after context search
# Prefix search stopped at its round cap: work leaves the ANE once these ops are included,
# which of them is the cause is not known (bisect/prefix_search.py).
NOT_ISOLATED = "not isolated"


@dataclass(frozen=True)
class OpRef:
    """One op of the parent model, as the bisection plan keeps it."""

    index: int
    name: str
    type: str
    signature: str | None  # None: no probe could be built (skip reason in ``skipped``)
    flops: int | None = None
    skipped: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OpRef:
        return cls(
            index=int(data["index"]),
            name=str(data["name"]),
            type=str(data["type"]),
            signature=data.get("signature"),
            flops=data.get("flops"),
            skipped=data.get("skipped"),
        )


@dataclass(frozen=True)
class SignatureOutcome:
    """The placement the bisection settled on for one op signature."""

    status: ProbeStatus
    unit: str  # a ComputeUnit value, or "unknown"
    confidence: float | None
    reason: str
    reused: bool  # from the compatibility matrix: no probe run for this parent
    evidence: int = 1


@dataclass(frozen=True)
class OpByProbe:
    index: int
    name: str
    type: str
    unit: str
    status: str
    confidence: float | None
    reason: str


def map_back(
    verdict: Verdict,
    ops: Sequence[OpRef],
    outcomes: dict[str, SignatureOutcome],
    lint: Sequence[LintLike],
    planned: dict[str, str | None] | None = None,
) -> tuple[Verdict, list[OpByProbe]]:
    """The parent's verdict redone with probe placements, and the per-op placements.
    ``planned`` maps op names to the compute plan's preferred unit, when there is a plan."""
    book = LintBook(lint, verdict.chip)
    placed: list[OpByProbe] = []
    for op in ops:
        outcome = outcomes.get(op.signature) if op.signature else None
        if outcome is None:
            why = op.skipped or "no probe result"
            placed.append(OpByProbe(op.index, op.name, op.type, UNKNOWN, "skipped", None, why))
        else:
            placed.append(OpByProbe(op.index, op.name, op.type, outcome.unit,
                                    str(outcome.status), outcome.confidence, outcome.reason))  # fmt: skip
    known = [p for p in placed if p.status == ProbeStatus.PLACED]
    off = [p for p in known if p.unit != ANE]
    unknown = [p for p in placed if p.status != ProbeStatus.PLACED]
    reasons = _summary(placed, known, off, unknown, outcomes)
    share = _share(ops, placed) if known else None
    blocking = [p for p in off if p.type not in PLUMBING_OP_TYPES]
    if verdict.plan_available:
        # The compute plan is the stronger evidence (ARCHITECTURE): it keeps the verdict;
        # the probes confirm it op by op, or say where run time may differ.
        kind, ops_off = verdict.verdict, list(verdict.ops_off_ane)
        reasons += _against_plan(known, planned or {})
    elif off and share is not None and share >= FULL_SHARE and not blocking:
        # The same rule as the compute plan's: a dtype cast at an input is not the work.
        kind, ops_off = VerdictKind.FULL, [_off(p, book) for p in off]
        reasons.append(
            f"only plumbing ops ({_names(off)}) are off the ANE by probe: counted as FULL"
        )
    elif off:
        kind = (
            VerdictKind.NONE if share is not None and share <= NONE_SHARE else VerdictKind.PARTIAL
        )
        if verdict.verdict is VerdictKind.NONE and kind is VerdictKind.PARTIAL:
            reasons.append(
                "context: the model's own timing shows the ANE doing no work under `all`: Core ML"
                " moves the ops around the ones off the ANE to their unit as well (segment"
                " merging), so fixing the ops listed lets the whole model return to the ANE"
            )
        ops_off = [_off(p, book) for p in off]
    elif unknown:
        kind, ops_off, share = verdict.verdict, list(verdict.ops_off_ane), None
        reasons.append(
            f"no probe placed an op off the ANE, but {len(unknown)} op(s) are unknown:"
            f" the verdict stays {verdict.verdict.value}, decided by {_source(verdict)}"
        )
    elif verdict.verdict is VerdictKind.FULL or verdict.verdict is VerdictKind.INCONCLUSIVE:
        kind, ops_off = VerdictKind.FULL, []
        reasons.append(
            "every op runs on the ANE in its probe, and nothing in the model's timing says otherwise"
        )
    else:
        kind, ops_off = verdict.verdict, list(verdict.ops_off_ane)
        reasons.append(
            f"context effect: every op runs on the ANE in its probe, yet the model as a whole is"
            f" {verdict.verdict.value} by {_source(verdict)}; single-op probes do not capture"
            " segment merging or transfer costs. " + PREFIX_SEARCH
        )
    reasons += [r for r in verdict.reasons if not r.startswith("the ops listed are a static")]
    share = share if share is not None else verdict.ane_share
    redone = verdict.model_copy(
        update={
            "verdict": kind,
            "ops_off_ane": ops_off,
            "ane_share": share if not verdict.plan_available else verdict.ane_share,
            "reasons": [clip(r) for r in reasons[:MAX_REASONS]],
        }
    )
    return Verdict.model_validate(redone.model_dump()), placed


def _against_plan(known: Sequence[OpByProbe], planned: dict[str, str | None]) -> list[str]:
    compared = [(p, planned[p.name]) for p in known if planned.get(p.name)]
    if not compared:
        return ["the compute plan places no op the probes placed: nothing to compare"]
    differ = [(p, unit) for p, unit in compared if (p.unit == ANE) != (unit == ANE)]
    lines = [
        f"bisection confirms the compute plan for {len(compared) - len(differ)} of"
        f" {len(compared)} op(s) (on or off the ANE)"
    ]
    if differ:
        shown = ", ".join(f"{p.name} (plan {unit}, probe {p.unit})" for p, unit in differ[:SHOWN])
        more = f" and {len(differ) - SHOWN} more" if len(differ) > SHOWN else ""
        lines.append(
            f"probes and plan disagree on {len(differ)} op(s): {shown}{more}; the verdict follows"
            " the plan: within the whole model Core ML places these ops otherwise than alone"
            " (segment merging, transfer costs), which single-op probes cannot see"
        )
    return lines


def _source(verdict: Verdict) -> str:
    """What decided ``verdict``: the plan, or timing; without a plan a PARTIAL whose listed
    ops are lint's came from lint's prediction while timing showed the ANE at work."""
    if verdict.plan_available:
        return "its compute plan"
    predicted = any(op.source is EvidenceSource.LINT for op in verdict.ops_off_ane)
    if verdict.verdict is VerdictKind.PARTIAL and predicted:
        return "lint's prediction (its timing shows the ANE at work)"
    return "its timing"


def _summary(
    placed: Sequence[OpByProbe],
    known: Sequence[OpByProbe],
    off: Sequence[OpByProbe],
    unknown: Sequence[OpByProbe],
    outcomes: dict[str, SignatureOutcome],
) -> list[str]:
    reused = sum(1 for o in outcomes.values() if o.reused)
    head = (
        f"by probe: {len(known) - len(off)} of {len(placed)} op(s) on the ANE, {len(off)} off it,"
        f" {len(unknown)} unknown ({len(outcomes)} signature(s) probed, {reused} reused from the"
        " compatibility matrix)"
    )
    lines = [head]
    if off:
        lines.append("off the ANE by probe: " + _names(off))
    for p in unknown[:SHOWN]:
        lines.append(f"{p.name} ({p.type}) is unknown by probe: {p.reason}")
    if len(unknown) > SHOWN:
        lines.append(f"and {len(unknown) - SHOWN} more unknown op(s)")
    return lines


def _names(ops: Sequence[OpByProbe]) -> str:
    shown = ", ".join(f"{p.name} → {p.unit}" for p in ops[:SHOWN])
    return shown + (f" and {len(ops) - SHOWN} more" if len(ops) > SHOWN else "")


def _off(p: OpByProbe, book: LintBook) -> OpOffAne:
    findings = book.lookup(p.name, p.index, p.type)
    unit: ComputeUnit | Literal["unknown"] = (
        ComputeUnit(p.unit) if p.unit in {u.value for u in ComputeUnit} else "unknown"
    )
    return OpOffAne(
        name=clip(p.name, NAME_LIMIT),
        type=clip(p.type, TYPE_LIMIT),
        unit=unit,
        reason=joined_reasons(findings) if findings else clip(f"no lint rule explains it; the probe says: {p.reason}"),
        fix=joined_fixes(findings) if findings else "no known fix: try an equivalent op, or report it with the probe",
        source=EvidenceSource.PROBE,
    )  # fmt: skip


def _share(ops: Sequence[OpRef], placed: Sequence[OpByProbe]) -> float | None:
    """FLOP-weighted share of the placed ops on the ANE; when an op's FLOPs are unknown,
    compute ops weigh 1 and plumbing 0 (as the compute plan's share does without costs)."""
    known = [p for p in placed if p.status == ProbeStatus.PLACED]
    if not known:
        return None
    flops = {op.index: op.flops for op in ops}
    if all(flops.get(p.index) for p in known):
        weights = [float(flops[p.index] or 0) for p in known]
    else:
        weights = [0.0 if p.type in PLUMBING_OP_TYPES else 1.0 for p in known]
        if not any(weights):
            weights = [1.0] * len(known)
    on_ane = sum(w for p, w in zip(known, weights, strict=True) if p.unit == ANE)
    return min(1.0, max(0.0, on_ane / sum(weights)))


def redo_with_roles(
    verdict: Verdict,
    ops: Sequence[OpRef],
    placed: Sequence[OpByProbe],
    roles: dict[int, tuple[str, int | None]],
    lint: Sequence[LintLike],
    notes: Sequence[str],
) -> tuple[Verdict, int]:
    """The verdict after context search (bisect/context.py): ``placed`` has the carried
    ops moved to their cause's unit, ``roles`` maps op positions to (role, position of the
    cause carrying it). Each op off the ANE is named with its role; a carried op's fix is
    its cause's. Returns the verdict and how many ops it names off the ANE."""
    book = LintBook(lint, verdict.chip)
    ops_off: list[OpOffAne] = []
    bracket = sorted(i for i, (role, _) in roles.items() if role == NOT_ISOLATED)
    for i, p in enumerate(placed):
        if i in bracket:
            ops_off.append(_not_isolated(p, placed, bracket))
            continue
        if p.status != ProbeStatus.PLACED or p.unit == ANE:
            continue
        role, by = roles.get(i, (CAUSE, None))
        entry = _off(p, book)
        if role == CARRIED and by is not None:
            cause = placed[by]
            entry = entry.model_copy(
                update={
                    "reason": clip(
                        f"carried: the ANE runs it alone, but Core ML moves it to the {p.unit} with"
                        f" {cause.name} (neighbouring ops merged into one segment to save"
                        " hand-overs; found by context search)"
                    ),
                    "fix": clip(f"fix {cause.name}: {_off(cause, book).fix}"),
                    "role": CARRIED,
                    "carried_by": clip(cause.name, NAME_LIMIT),
                }
            )
        else:
            entry = entry.model_copy(update={"role": CAUSE})
        ops_off.append(entry)
    known = [p for p in placed if p.status == ProbeStatus.PLACED]
    share = _share(ops, placed) if known else None
    kind = verdict.verdict
    # Ops not isolated are not known to be off the ANE: they leave the verdict as it was.
    if any(o.role != NOT_ISOLATED for o in ops_off) and share is not None:
        kind = VerdictKind.NONE if share <= NONE_SHARE else VerdictKind.PARTIAL
    carried = sum(1 for o in ops_off if o.role == CARRIED)
    off = len(ops_off) - len(bracket)
    head = (
        f"after context search: {len(known) - off} of {len(placed)} op(s) on the ANE,"
        f" {off} off it ({off - carried} cause, {carried} carried),"
        f" {len(placed) - len(known)} unknown"
    ) + (f"; {len(bracket)} not isolated" if bracket else "")
    reasons = [head, *(f"context search: {n}" for n in notes), *verdict.reasons]
    redone = verdict.model_copy(
        update={
            "verdict": kind,
            "ops_off_ane": ops_off,
            "ane_share": share if share is not None else verdict.ane_share,
            "reasons": [clip(r) for r in reasons[:MAX_REASONS]],
        }
    )
    return Verdict.model_validate(redone.model_dump()), len(ops_off)


def _not_isolated(p: OpByProbe, placed: Sequence[OpByProbe], bracket: list[int]) -> OpOffAne:
    """An op of the bracket prefix search could not narrow further (``NOT_ISOLATED``): one
    reason for them all, so that reports list the bracket as one finding."""
    lo, hi = min(bracket), max(bracket)
    return OpOffAne(
        name=clip(p.name, NAME_LIMIT),
        type=clip(p.type, TYPE_LIMIT),
        unit="unknown",
        reason=clip(
            f"not isolated: work leaves the ANE once ops up to {hi} are included, and prefix"
            f" search could not tell which of ops {_positions(bracket)} is the cause"
        ),
        fix=clip(
            f"profile prefixes ending inside ops {lo}–{hi} (`anefarm probes MODEL DIR --prefix N`,"
            f" N from {lo + 1} to {hi}) to find the one op whose inclusion moves work off the ANE"
        ),
        source=EvidenceSource.PROBE,
        role=NOT_ISOLATED,
    )


def _positions(ops: list[int]) -> str:
    """``2–4`` for a stretch, else the positions listed (the first few)."""
    if ops == list(range(ops[0], ops[-1] + 1)):
        return f"{ops[0]}–{ops[-1]}"
    return ", ".join(str(i) for i in ops[:8]) + (" …" if len(ops) > 8 else "")
