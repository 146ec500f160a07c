"""Verdicts decided by the compute plan, with lint findings attached to the ops off the ANE."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from orchestrator.protocol import ComputePlan, EvidenceSource, Verdict, VerdictKind
from orchestrator.verdict import LintLike, decide
from orchestrator.verdict.plan import NO_RULE_FIX, NO_RULE_REASON
from tests.verdict.builders import (
    ANE_UNIT,
    ANE_USED,
    CPU,
    CPU_UNIT,
    GPU_UNIT,
    XR,
    Finding,
    op,
    plan,
    result,
    signature,
)

WRITE_UP = (
    op(0, "cast", ANE_UNIT, 0.01),
    op(1, "conv", ANE_UNIT, 0.98),
    op(2, "cast", ANE_UNIT, 0.01),
)


def on_xr(compute_plan: ComputePlan, lint: Sequence[LintLike] = ()) -> Verdict:
    runner = result(signature(ANE_USED), compute_plan=compute_plan)
    return decide(runner, device_class=XR, chip="A12", simulated=True, lint=lint)


def test_plan_all_on_the_ane_is_full() -> None:
    verdict = on_xr(plan(op(0, "const", None), *WRITE_UP))
    assert verdict.verdict is VerdictKind.FULL
    assert verdict.ane_share == 1.0 and verdict.plan_available
    assert verdict.ops_off_ane == [] and not verdict.plan_timing_disagree
    assert verdict.reasons[0].startswith(
        "compute plan: 100.0% of the estimated cost on the ANE, 0 of 3 ops off it"
    )


def test_a_dilated_conv_on_the_gpu_is_partial_with_the_lint_reason_and_fix() -> None:
    ops = (
        op(0, "conv", ANE_UNIT, 0.5),
        op(1, "conv", GPU_UNIT, 0.4, name="dilated"),
        op(2, "relu", ANE_UNIT, 0.1),
    )
    lint = [Finding(op_index=1, op_name="dilated", op_type="conv")]
    verdict = on_xr(plan(*ops), lint=lint)
    assert verdict.verdict is VerdictKind.PARTIAL
    assert verdict.ane_share == pytest.approx(0.6)
    [off] = verdict.ops_off_ane
    assert (off.name, off.type, off.unit, off.source) == (
        "dilated",
        "conv",
        GPU_UNIT,
        EvidenceSource.PLAN,
    )
    assert (
        off.reason
        == "dilated (atrous) convolution is not taken by the A12-generation ANE (dilated-conv)"
    )
    assert off.fix == "replace with stacked non-dilated convolutions"


def test_an_op_off_the_ane_without_a_rule_says_so_and_suggests_probes() -> None:
    verdict = on_xr(plan(op(0, "conv", ANE_UNIT, 0.7), op(1, "gelu", CPU_UNIT, 0.3)))
    [off] = verdict.ops_off_ane
    assert off.reason.startswith(NO_RULE_REASON) and "supported: cpu" in off.reason
    assert off.fix == NO_RULE_FIX


def test_an_op_the_ane_supports_but_the_plan_puts_elsewhere_says_so() -> None:
    ops = (
        op(0, "conv", ANE_UNIT, 0.7),
        op(1, "softmax", GPU_UNIT, 0.3, supported=[ANE_UNIT, GPU_UNIT]),
    )
    [off] = on_xr(plan(*ops)).ops_off_ane
    assert "the ANE supports it, but the compute plan prefers the gpu" in off.reason


def test_lint_matches_by_name_first_and_by_index_only_when_the_type_agrees() -> None:
    ops = (op(0, "conv", GPU_UNIT, 0.5, name="a"), op(1, "pool", GPU_UNIT, 0.5, name="b"))
    lint = [
        Finding(op_index=7, op_name="a", op_type="conv", reason="by name", rule_id="r1"),
        Finding(op_index=1, op_name="x", op_type="conv", reason="wrong type", rule_id="r2"),
    ]
    a, b = on_xr(plan(*ops), lint=lint).ops_off_ane
    assert a.reason == "by name (r1)"
    assert b.reason.startswith(NO_RULE_REASON)
    lint_b = [
        Finding(op_index=1, op_name="renamed", op_type="pool", reason="by index", rule_id="r3")
    ]
    assert on_xr(plan(*ops), lint=lint_b).ops_off_ane[1].reason == "by index (r3)"


def test_findings_for_another_chip_are_ignored() -> None:
    ops = (op(0, "conv", ANE_UNIT, 0.5), op(1, "conv", GPU_UNIT, 0.5, name="d"))
    lint = [Finding(op_index=1, op_name="d", op_type="conv", chip="A14")]
    assert on_xr(plan(*ops), lint=lint).ops_off_ane[0].reason.startswith(NO_RULE_REASON)


def test_two_findings_for_one_op_are_both_given() -> None:
    ops = (op(0, "transpose", GPU_UNIT, 1.0, name="t"),)
    lint = [
        Finding(
            op_index=0,
            op_name="t",
            op_type="transpose",
            rule_id="transpose-a12",
            reason="r1",
            fix="f1",
        ),
        Finding(
            op_index=0, op_name="t", op_type="transpose", rule_id="layout", reason="r2", fix="f1"
        ),
    ]
    [off] = on_xr(plan(*ops), lint=lint).ops_off_ane
    assert off.reason == "r1 (transpose-a12); r2 (layout)" and off.fix == "f1"


def test_neural_network_plan_without_costs_counts_compute_layers_equally() -> None:
    ops = (
        op(0, "convolution", ANE_UNIT),
        op(1, "reshape", CPU_UNIT),
        op(2, "lstm", CPU_UNIT),
        op(3, "innerProduct", ANE_UNIT),
    )
    verdict = on_xr(plan(*ops))
    assert verdict.verdict is VerdictKind.PARTIAL
    assert verdict.ane_share == pytest.approx(2 / 3)  # the reshape weighs nothing
    assert any("counts compute ops equally" in r for r in verdict.reasons)
    assert {o.name for o in verdict.ops_off_ane} == {"reshape_1", "lstm_2"}


def test_a_cast_off_the_ane_alone_does_not_spoil_full() -> None:
    ops = (op(0, "cast", CPU_UNIT, 0.001), op(1, "conv", ANE_UNIT, 0.999))
    verdict = on_xr(plan(*ops))
    assert verdict.verdict is VerdictKind.FULL
    assert [o.name for o in verdict.ops_off_ane] == ["cast_0"]  # still listed: honest
    assert any("only plumbing ops (cast_0)" in r for r in verdict.reasons)


def test_a_small_compute_op_off_the_ane_makes_it_partial_even_above_the_share() -> None:
    verdict = on_xr(plan(op(0, "gather", CPU_UNIT, 0.001), op(1, "conv", ANE_UNIT, 0.999)))
    assert verdict.verdict is VerdictKind.PARTIAL
    assert verdict.ane_share == pytest.approx(0.999)


def test_plan_with_nothing_on_the_ane_is_none() -> None:
    verdict = on_xr(plan(op(0, "lstm", CPU_UNIT, 0.9), op(1, "linear", GPU_UNIT, 0.1)))
    assert verdict.verdict is VerdictKind.NONE and verdict.ane_share == 0.0
    assert [o.unit for o in verdict.ops_off_ane] == [CPU_UNIT, GPU_UNIT]


def test_a_plan_made_for_another_setting_is_not_used() -> None:
    verdict = on_xr(plan(op(0, "conv", CPU_UNIT, 1.0), units=CPU))
    assert not verdict.plan_available and verdict.ane_share is None
    assert verdict.verdict is VerdictKind.FULL  # timing decides: the ANE signature
    assert "the compute plan was made for `cpuOnly`, not `all`: not used" in verdict.reasons


def test_a_plan_of_only_constants_is_not_used() -> None:
    verdict = on_xr(plan(op(0, "const", None), op(1, "const", None)))
    assert not verdict.plan_available
    assert "the compute plan places no op that does work: not used" in verdict.reasons


def test_lint_predictions_the_plan_contradicts_are_reported() -> None:
    lint = [Finding(op_index=1, op_name="conv_1", op_type="conv")]
    verdict = on_xr(plan(*WRITE_UP), lint=lint)
    assert verdict.verdict is VerdictKind.FULL
    assert any(
        "lint predicted 1 op(s) off the ANE that the plan places on it (conv_1)" in r
        for r in verdict.reasons
    )


def test_model_level_findings_are_given_as_reasons_when_not_full() -> None:
    lint = [Finding(op_index=None, op_name="(model)", op_type="mlProgram", rule_id="float32-precision",
                    reason="the program computes in float32", fix="convert with FLOAT16")]  # fmt: skip
    verdict = on_xr(plan(op(0, "conv", GPU_UNIT, 1.0)), lint=lint)
    assert verdict.verdict is VerdictKind.NONE
    assert (
        "static prediction for the whole model (float32-precision): the program computes in float32; fix: convert with FLOAT16"
        in verdict.reasons
    )
