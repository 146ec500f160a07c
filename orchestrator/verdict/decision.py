"""``decide()``: one verdict from the compute plan, the timing signature and lint, strongest
evidence first, with every piece of evidence and every reason kept on the verdict.

Rules (ARCHITECTURE "How it is decided"):

* a batch-level runner error → INCONCLUSIVE, with the error as the reason; so is a setting
  ``interrupted`` (the app left the foreground): never a verdict about the model (agents
  report such a batch as an infra failure and it is retried; this guards other callers);
* a usable compute plan decides (see ``plan``); timing is still measured, and when it
  contradicts the plan (plan mostly ANE, timing says the ANE is idle under `all`, or plan
  ≈ no ANE, timing says it works) ``plan_timing_disagree`` is set and said;
* without a plan, timing decides (see ``timing``): ANE idle, or the GPU preferred under
  `all` → NONE; ANE at work → PARTIAL when there is evidence of work elsewhere (lint
  predicts ops off the ANE, or `all` differs from `cpuAndNeuralEngine`), else FULL — timing
  cannot place single ops, so FULL here means "the ANE does the work and nothing says
  otherwise"; a signature timing cannot read → INCONCLUSIVE with why;
* lint findings are the probable reason and fix of ops off the ANE; without a plan, and
  when timing says "not FULL", the ops lint names are listed with ``source=lint``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from orchestrator.catalog.osversion import major_minor
from orchestrator.errors import UsageError
from orchestrator.protocol import (
    OpOffAne,
    RunnerErrorKind,
    RunnerResult,
    ThermalState,
    Verdict,
    VerdictKind,
)
from orchestrator.verdict.lint import LintBook, LintLike, clip
from orchestrator.verdict.plan import MOSTLY_ANE_SHARE, NONE_SHARE, SHOWN_NAMES, read_plan
from orchestrator.verdict.timing import Signature, TimingEvidence, read_timing

PRODUCT_TYPE = re.compile(r"^(iPhone|iPad|iPod)[0-9]{1,3},[0-9]{1,3}$")
PLAN_MIN_OS = (17, 4)  # MLComputePlan exists from iOS 17.4
MAX_REASONS = 100  # protocol.Verdict.reasons
HOT = (ThermalState.SERIOUS, ThermalState.CRITICAL)
STATIC = "the ops listed are a static prediction (lint), not a measurement"


def _check_args(device_class: str, chip: str, seed: int) -> None:
    if not PRODUCT_TYPE.match(device_class):
        raise UsageError(
            f"device class {device_class!r} is not a ProductType",
            hint="pass the class as the device reports it, e.g. iPhone11,8",
        )
    if not chip.strip():
        raise UsageError("no chip given for the verdict", hint="pass the catalog chip, e.g. A12")
    if seed < 0:
        raise UsageError(f"bootstrap seed {seed} is negative", hint="use a seed ≥ 0")


def _context(result: RunnerResult) -> list[str]:
    notes = []
    if result.partial:
        notes.append("the time budget ran out: some settings have fewer samples than asked")
    if result.thermal_after in HOT or result.thermal_before in HOT:
        notes.append(
            f"the device was hot ({result.thermal_before} → {result.thermal_after}): throttling may blur timing"
        )
    return notes


def _disagreement(share: float, timing: TimingEvidence) -> str | None:
    idle = timing.signature in (Signature.ANE_UNUSED, Signature.GPU_UNDER_ALL)
    if share >= MOSTLY_ANE_SHARE and idle:
        said = "does no work" if timing.signature is Signature.ANE_UNUSED else "loses to the GPU"
        return (
            f"plan and timing disagree: the plan puts {share:.0%} of the cost on the ANE, but timing says the ANE {said} under `all`;"
            " the verdict follows the plan (an anticipation, not a measurement): check with probe runs"
        )
    if share <= NONE_SHARE and timing.signature is Signature.ANE_USED:
        return (
            f"plan and timing disagree: the plan puts {share:.0%} of the cost on the ANE, but timing says the ANE does work under `all`;"
            " the verdict follows the plan: check with probe runs"
        )
    return None


def _by_timing(
    timing: TimingEvidence, book: LintBook, reasons: list[str]
) -> tuple[VerdictKind, list[OpOffAne]]:
    predicted = book.predicted_ops()
    if timing.signature is Signature.UNKNOWN:
        if predicted:
            names = ", ".join(op.name for op in predicted[:SHOWN_NAMES])
            reasons.append(
                f"lint predicts {len(predicted)} op(s) off the ANE on this chip: {names}"
            )
        return VerdictKind.INCONCLUSIVE, []
    if timing.signature in (Signature.ANE_UNUSED, Signature.GPU_UNDER_ALL):
        if predicted:
            reasons.append(STATIC)
        return VerdictKind.NONE, predicted
    if predicted:
        reasons.append("the ANE does work, but lint predicts some ops stay off it: " + STATIC)
        return VerdictKind.PARTIAL, predicted
    if timing.other_units_under_all:
        reasons.append(
            "`all` differs from `cpuAndNeuralEngine`, so another unit takes part of the work;"
            " timing cannot name the ops: bisection (probe runs) names them"
        )
        return VerdictKind.PARTIAL, []
    reasons.append(
        "timing cannot place single ops: FULL means the ANE does the work under `all` and no evidence says otherwise"
    )
    return VerdictKind.FULL, []


def decide(
    result: RunnerResult,
    *,
    device_class: str,
    chip: str,
    simulated: bool,
    lint: Sequence[LintLike] = (),
    seed: int = 0,
) -> Verdict:
    """The verdict for one runner result; deterministic for a given ``seed``."""
    _check_args(device_class, chip, seed)
    base: dict[str, Any] = {
        "model_sha256": result.model_sha256,
        "device_class": device_class,
        "chip": chip,
        "os_version": result.device.os_version,
        "simulated": simulated,
    }
    away = [
        s.error for s in result.settings if s.error and s.error.kind == RunnerErrorKind.INTERRUPTED
    ]
    if result.error is not None or away:
        error = result.error or away[0]
        what = "failed the whole batch" if result.error else "was interrupted in a setting"
        reason = f"the runner {what} ({error.kind}): {error.message}"
        return Verdict(
            **base,
            verdict=VerdictKind.INCONCLUSIVE,
            plan_available=False,
            reasons=[clip(reason)],
        )
    book = LintBook(lint, chip)
    timing = read_timing(result, seed=seed)
    reasons: list[str] = []
    plan = read_plan(result.compute_plan, book, reasons)
    disagree = False
    if plan is not None:
        kind, ops_off, share = plan.kind, plan.ops_off, plan.share
        reasons[:0] = plan.reasons
        note = _disagreement(plan.share, timing)
        disagree = note is not None
        if note:
            reasons.append(note)
        elif kind is VerdictKind.FULL and timing.other_units_under_all:
            # Not a contradiction (the plan is an anticipation), but worth a look.
            reasons.append(
                "timing: `all` differs from `cpuAndNeuralEngine` although the plan puts all the work on the ANE;"
                " Core ML may place work differently at run time"
            )
        reasons += timing.reasons
    else:
        share = None
        if result.compute_plan is None:
            if major_minor(result.device.os_version) < PLAN_MIN_OS:
                reasons.append(
                    f"no compute plan (iOS {result.device.os_version} is below 17.4): decided by timing"
                )
            else:
                reasons.append("no compute plan in the result: decided by timing")
        reasons += timing.reasons
        kind, ops_off = _by_timing(timing, book, reasons)
    if kind is not VerdictKind.FULL:
        reasons += book.model_notes()
    reasons += _context(result)
    return Verdict(
        **base,
        verdict=kind,
        ane_share=share,
        plan_available=plan is not None,
        timing=timing.comparisons,
        plan_timing_disagree=disagree,
        ops_off_ane=ops_off,
        reasons=[clip(r) for r in reasons[:MAX_REASONS]],
    )
