"""Mapping probe placements back onto the parent model's verdict (pure)."""

from __future__ import annotations

from orchestrator.bisect.mapping import OpRef, SignatureOutcome, map_back
from orchestrator.bisect.placement import ProbeStatus
from orchestrator.protocol import ComputeUnit, EvidenceSource, VerdictKind
from orchestrator.verdict import decide
from tests.verdict.builders import ANE_USED, GPU_UNDER_ALL, XR, Finding, result, signature

OPS = [
    OpRef(0, "conv_in", "conv", "sig-plain", flops=100),
    OpRef(1, "conv_dilated", "conv", "sig-dilated", flops=100),
    OpRef(2, "conv_out", "conv", "sig-plain", flops=100),
]
LINT = [Finding(op_index=1, op_name="conv_dilated", op_type="conv")]


def placed(unit: ComputeUnit, *, reused: bool = False) -> SignatureOutcome:
    return SignatureOutcome(ProbeStatus.PLACED, unit.value, 0.9, f"on {unit}", reused)


def unknown(status: ProbeStatus = ProbeStatus.INCONCLUSIVE) -> SignatureOutcome:
    return SignatureOutcome(status, "unknown", None, "the op is too small to time", False)


def parent(medians, lint=LINT):
    return decide(result(signature(medians), os_version="16.7.8"), device_class=XR, chip="A12",
                  simulated=True, lint=lint)  # fmt: skip


def test_a_dilated_conv_between_plain_ones_is_partial_by_probe_with_the_lint_fix() -> None:
    before = parent(GPU_UNDER_ALL)
    assert before.verdict is VerdictKind.NONE
    outcomes = {"sig-plain": placed(ComputeUnit.ANE), "sig-dilated": placed(ComputeUnit.GPU)}
    verdict, ops = map_back(before, OPS, outcomes, LINT)
    assert verdict.verdict is VerdictKind.PARTIAL
    [off] = verdict.ops_off_ane
    assert (off.name, off.unit, off.source) == (
        "conv_dilated",
        ComputeUnit.GPU,
        EvidenceSource.PROBE,
    )
    assert "dilated (atrous)" in off.reason and "non-dilated" in off.fix
    assert [o.unit for o in ops] == ["neuralEngine", "gpu", "neuralEngine"]
    assert verdict.ane_share is not None and abs(verdict.ane_share - 2 / 3) < 1e-9
    assert any("segment merging" in r for r in verdict.reasons)
    assert verdict.reasons[0].startswith("by probe: 2 of 3 op(s) on the ANE, 1 off it")


def test_an_op_off_the_ane_that_no_lint_rule_explains_says_so() -> None:
    outcomes = {"sig-plain": placed(ComputeUnit.ANE), "sig-dilated": placed(ComputeUnit.CPU)}
    verdict, _ = map_back(parent(GPU_UNDER_ALL, lint=[]), OPS, outcomes, [])
    [off] = verdict.ops_off_ane
    assert off.unit is ComputeUnit.CPU and off.reason.startswith("no lint rule explains it")


def test_every_op_off_the_ane_is_none() -> None:
    outcomes = {"sig-plain": placed(ComputeUnit.GPU), "sig-dilated": placed(ComputeUnit.GPU)}
    verdict, _ = map_back(parent(GPU_UNDER_ALL), OPS, outcomes, LINT)
    assert verdict.verdict is VerdictKind.NONE and len(verdict.ops_off_ane) == 3
    assert verdict.ane_share == 0.0


def test_all_probes_on_the_ane_while_the_model_is_not_is_a_context_effect() -> None:
    before = parent(GPU_UNDER_ALL)
    outcomes = {"sig-plain": placed(ComputeUnit.ANE), "sig-dilated": placed(ComputeUnit.ANE)}
    verdict, _ = map_back(before, OPS, outcomes, LINT)
    assert verdict.verdict is before.verdict
    effect = next(r for r in verdict.reasons if r.startswith("context effect"))
    assert "prefix search" in effect


def test_all_probes_on_the_ane_and_timing_agreeing_is_full() -> None:
    outcomes = {"sig-plain": placed(ComputeUnit.ANE), "sig-dilated": placed(ComputeUnit.ANE)}
    verdict, _ = map_back(parent(ANE_USED, lint=[]), OPS, outcomes, [])
    assert verdict.verdict is VerdictKind.FULL and verdict.ops_off_ane == []


def test_inconclusive_and_failed_probes_leave_ops_unknown_and_the_verdict_as_it_was() -> None:
    before = parent(GPU_UNDER_ALL)
    outcomes = {"sig-plain": placed(ComputeUnit.ANE), "sig-dilated": unknown()}
    verdict, ops = map_back(before, OPS, outcomes, LINT)
    assert verdict.verdict is before.verdict
    assert ops[1].status == "inconclusive" and ops[1].unit == "unknown"
    assert any("conv_dilated (conv) is unknown by probe" in r for r in verdict.reasons)
    failed = {"sig-plain": placed(ComputeUnit.ANE), "sig-dilated": unknown(ProbeStatus.FAILED)}
    verdict, ops = map_back(before, OPS, failed, LINT)
    assert ops[1].status == "failed" and verdict.verdict is before.verdict


def test_an_op_without_a_probe_is_unknown_with_the_skip_reason() -> None:
    ops = [*OPS[:2], OpRef(2, "loop", "while_loop", None, skipped="ops with nested blocks")]
    outcomes = {"sig-plain": placed(ComputeUnit.ANE), "sig-dilated": placed(ComputeUnit.GPU)}
    verdict, placed_ops = map_back(parent(GPU_UNDER_ALL), ops, outcomes, LINT)
    assert placed_ops[2].status == "skipped" and "nested blocks" in placed_ops[2].reason
    assert verdict.verdict is VerdictKind.PARTIAL


def test_reuse_is_counted_in_the_summary() -> None:
    outcomes = {
        "sig-plain": placed(ComputeUnit.ANE, reused=True),
        "sig-dilated": placed(ComputeUnit.GPU, reused=True),
    }
    verdict, _ = map_back(parent(GPU_UNDER_ALL), OPS, outcomes, LINT)
    assert "2 signature(s) probed, 2 reused" in verdict.reasons[0]


def test_only_a_cast_off_the_ane_is_still_full_as_with_a_compute_plan() -> None:
    ops = [OpRef(0, "x_to_fp16", "cast", "sig-cast", flops=10),
           OpRef(1, "conv", "conv", "sig-plain", flops=100_000)]  # fmt: skip
    outcomes = {"sig-cast": placed(ComputeUnit.CPU), "sig-plain": placed(ComputeUnit.ANE)}
    verdict, _ = map_back(parent(ANE_USED, lint=[]), ops, outcomes, [])
    assert verdict.verdict is VerdictKind.FULL and [o.name for o in verdict.ops_off_ane] == [
        "x_to_fp16"
    ]
    assert any("only plumbing ops" in r for r in verdict.reasons)


def test_a_tiny_op_on_the_ane_beside_a_big_one_off_it_is_none() -> None:
    ops = [OpRef(0, "conv", "conv", "sig-dilated", flops=10**9),
           OpRef(1, "out", "cast", "sig-cast", flops=10)]  # fmt: skip
    outcomes = {"sig-dilated": placed(ComputeUnit.GPU), "sig-cast": placed(ComputeUnit.ANE)}
    verdict, _ = map_back(parent(GPU_UNDER_ALL), ops, outcomes, LINT)
    assert verdict.verdict is VerdictKind.NONE and verdict.ane_share is not None
    assert verdict.ane_share < 0.01


def test_when_a_run_is_bisected() -> None:
    from orchestrator.bisect.plan import trigger

    timing_none = parent(GPU_UNDER_ALL)
    timing_full = parent(ANE_USED, lint=[])
    assert "without a compute plan" in (trigger("auto", timing_none) or "")
    assert trigger("auto", timing_full) is None
    assert trigger("always", timing_full) == "requested (--bisect)"
    assert trigger("never", timing_none) is None
    disagree = timing_full.model_copy(update={"plan_available": True, "plan_timing_disagree": True})
    assert trigger("auto", disagree) == "plan and timing disagree"
    by_plan = timing_none.model_copy(update={"plan_available": True})
    assert trigger("auto", by_plan) is None  # the plan already places every op


def test_with_a_compute_plan_the_plan_keeps_the_verdict_and_probes_confirm_or_disagree() -> None:
    from tests.verdict.builders import ANE_UNIT, GPU_UNIT, op, plan

    with_plan = decide(
        result(signature(ANE_USED), compute_plan=plan(
            op(0, "conv", ANE_UNIT, 0.4, name="conv_in"),
            op(1, "conv", GPU_UNIT, 0.2, name="conv_dilated"),
            op(2, "conv", ANE_UNIT, 0.4, name="conv_out"))),
        device_class=XR, chip="A12", simulated=True, lint=LINT,
    )  # fmt: skip
    assert with_plan.plan_available and with_plan.verdict is VerdictKind.PARTIAL
    planned: dict[str, str | None] = {
        "conv_in": "neuralEngine",
        "conv_dilated": "gpu",
        "conv_out": "neuralEngine",
    }
    agree = {"sig-plain": placed(ComputeUnit.ANE), "sig-dilated": placed(ComputeUnit.GPU)}
    verdict, _ = map_back(with_plan, OPS, agree, LINT, planned)
    assert verdict.verdict is VerdictKind.PARTIAL and verdict.ane_share == with_plan.ane_share
    assert any("confirms the compute plan for 3 of 3" in r for r in verdict.reasons)
    differ = {"sig-plain": placed(ComputeUnit.ANE), "sig-dilated": placed(ComputeUnit.ANE)}
    verdict, _ = map_back(with_plan, OPS, differ, LINT, planned)
    assert verdict.verdict is VerdictKind.PARTIAL  # the plan is the stronger evidence
    assert any("disagree on 1 op(s): conv_dilated (plan gpu, probe neuralEngine)" in r
               for r in verdict.reasons)  # fmt: skip


def test_all_probes_on_the_ane_while_lint_made_it_partial_says_lint_decided() -> None:
    # Timing shows the ANE at work; the PARTIAL comes from lint's prediction, not timing.
    before = parent(ANE_USED)
    assert before.verdict is VerdictKind.PARTIAL
    outcomes = {"sig-plain": placed(ComputeUnit.ANE), "sig-dilated": placed(ComputeUnit.ANE)}
    verdict, _ = map_back(before, OPS, outcomes, LINT)
    effect = next(r for r in verdict.reasons if r.startswith("context effect"))
    assert "PARTIAL by lint's prediction" in effect and "by its timing" not in effect
