"""Verdicts from timing alone, plan/timing disagreement, INCONCLUSIVE paths, determinism."""

from __future__ import annotations

import pytest

from orchestrator.errors import UsageError
from orchestrator.protocol import (
    EvidenceSource,
    RunnerError,
    RunnerErrorKind,
    RunnerResult,
    ThermalState,
    Verdict,
    VerdictKind,
)
from orchestrator.verdict import LintLike, decide
from tests.verdict.builders import (
    ALL,
    ANE_AND_GPU,
    ANE_UNIT,
    ANE_UNUSED,
    ANE_USED,
    CPU,
    CPU_UNIT,
    GPU,
    GPU_UNDER_ALL,
    GPU_UNIT,
    NE,
    SHA,
    XR,
    Finding,
    failed,
    op,
    plan,
    result,
    samples,
    setting,
    signature,
)

OLD_OS = "16.7.8"  # no MLComputePlan before iOS 17.4
DILATED = Finding(op_index=1, op_name="conv_1", op_type="conv")


def on_xr(runner: RunnerResult, lint: tuple[LintLike, ...] = (), seed: int = 0) -> Verdict:
    return decide(runner, device_class=XR, chip="A12", simulated=True, lint=lint, seed=seed)


def test_timing_only_none_signature_on_an_old_os() -> None:
    verdict = on_xr(result(signature(ANE_UNUSED), os_version=OLD_OS))
    assert verdict.verdict is VerdictKind.NONE
    assert not verdict.plan_available and verdict.ane_share is None
    assert verdict.reasons[0] == "no compute plan (iOS 16.7.8 is below 17.4): decided by timing"
    assert "the ANE is not doing the work" in verdict.reasons[1]
    by_pair = {(t.a, t.b): t for t in verdict.timing}
    assert by_pair[ALL, GPU].indistinguishable and by_pair[NE, CPU].indistinguishable
    assert not by_pair[ALL, CPU].indistinguishable
    assert (verdict.model_sha256, verdict.device_class, verdict.chip, verdict.os_version) == (
        SHA,
        XR,
        "A12",
        OLD_OS,
    )


def test_timing_only_ane_used_signature_is_full() -> None:
    verdict = on_xr(result(signature(ANE_USED), os_version=OLD_OS))
    assert verdict.verdict is VerdictKind.FULL and verdict.ops_off_ane == []
    assert "the ANE does work under `all`" in verdict.reasons[1]
    assert "timing cannot place single ops" in verdict.reasons[-1]


def test_timing_ane_used_with_lint_predictions_is_partial_by_static_prediction() -> None:
    lint = (DILATED, Finding(op_index=1, op_name="conv_1", op_type="conv", chip="A14"))
    verdict = on_xr(result(signature(ANE_USED), os_version=OLD_OS), lint=lint)
    assert verdict.verdict is VerdictKind.PARTIAL
    [off] = verdict.ops_off_ane
    assert (off.name, off.unit, off.source) == ("conv_1", GPU_UNIT, EvidenceSource.LINT)
    assert any("static prediction" in r for r in verdict.reasons)


def test_timing_none_lists_lint_ops_as_the_probable_reason() -> None:
    lint = (
        Finding(
            op_index=2,
            op_name="lstm_2",
            op_type="lstm",
            expected_unit="cpu",
            rule_id="recurrent-layer",
        ),
    )
    verdict = on_xr(result(signature(ANE_UNUSED), os_version=OLD_OS), lint=lint)
    assert verdict.verdict is VerdictKind.NONE
    assert [(o.name, o.unit, o.source) for o in verdict.ops_off_ane] == [
        ("lstm_2", CPU_UNIT, EvidenceSource.LINT)
    ]


def test_core_ml_preferring_the_gpu_under_all_is_not_on_the_ane() -> None:
    verdict = on_xr(result(signature(GPU_UNDER_ALL), os_version=OLD_OS))
    assert verdict.verdict is VerdictKind.NONE
    assert any(
        "Core ML prefers the GPU under `all`" in r and "cpuAndNeuralEngine would use the ANE" in r
        for r in verdict.reasons
    )


def test_all_beating_cpu_and_neural_engine_means_another_unit_helps() -> None:
    verdict = on_xr(result(signature(ANE_AND_GPU), os_version=OLD_OS))
    assert verdict.verdict is VerdictKind.PARTIAL and verdict.ops_off_ane == []
    assert any("another unit takes part of the work" in r for r in verdict.reasons)


def test_plan_mostly_ane_but_timing_idle_is_flagged_and_follows_the_plan() -> None:
    ane_plan = plan(op(0, "conv", ANE_UNIT, 1.0))
    verdict = on_xr(result(signature(ANE_UNUSED), compute_plan=ane_plan))
    assert verdict.verdict is VerdictKind.FULL and verdict.plan_timing_disagree
    assert any(
        r.startswith("plan and timing disagree: the plan puts 100% of the cost on the ANE")
        for r in verdict.reasons
    )


def test_plan_without_ane_but_timing_shows_it_is_flagged() -> None:
    verdict = on_xr(result(signature(ANE_USED), compute_plan=plan(op(0, "conv", GPU_UNIT, 1.0))))
    assert verdict.verdict is VerdictKind.NONE and verdict.plan_timing_disagree


def test_a_full_plan_with_another_unit_showing_in_timing_is_noted_not_flagged() -> None:
    verdict = on_xr(result(signature(ANE_AND_GPU), compute_plan=plan(op(0, "conv", ANE_UNIT, 1.0))))
    assert verdict.verdict is VerdictKind.FULL and not verdict.plan_timing_disagree
    assert any("differs from `cpuAndNeuralEngine` although the plan" in r for r in verdict.reasons)
    assert not any(
        "differs from `cpuAndNeuralEngine` although" in r
        for r in on_xr(
            result(signature(ANE_USED), compute_plan=plan(op(0, "conv", ANE_UNIT, 1.0)))
        ).reasons
    )


def test_plan_and_timing_agreeing_is_not_flagged() -> None:
    verdict = on_xr(result(signature(ANE_UNUSED), compute_plan=plan(op(0, "conv", GPU_UNIT, 1.0))))
    assert verdict.verdict is VerdictKind.NONE and not verdict.plan_timing_disagree
    assert not any("disagree" in r for r in verdict.reasons)


def test_missing_settings_are_inconclusive_and_say_which() -> None:
    settings = [s for s in signature(ANE_USED) if s.compute_units is not GPU]
    verdict = on_xr(result(settings, os_version=OLD_OS), lint=(DILATED,))
    assert verdict.verdict is VerdictKind.INCONCLUSIVE and verdict.ops_off_ane == []
    assert any(
        "timing cannot tell" in r and "`cpuAndGPU` was not measured" in r for r in verdict.reasons
    )
    assert any(
        "lint predicts 1 op(s) off the ANE on this chip: conv_1" in r for r in verdict.reasons
    )


def test_a_failed_setting_is_inconclusive_with_the_runner_message() -> None:
    settings = [
        *signature({ALL: 2.0, GPU: 5.0, CPU: 20.0}),
        failed(NE, "ANE compiler service crashed"),
    ]
    verdict = on_xr(result(settings, os_version=OLD_OS))
    assert verdict.verdict is VerdictKind.INCONCLUSIVE
    assert any(
        "`cpuAndNeuralEngine` failed (load: ANE compiler service crashed)" in r
        for r in verdict.reasons
    )


def test_too_few_samples_are_inconclusive() -> None:
    verdict = on_xr(result(signature(ANE_USED, n=4), os_version=OLD_OS))
    assert verdict.verdict is VerdictKind.INCONCLUSIVE and verdict.timing == []
    assert any("has 4 samples, fewer than 5" in r for r in verdict.reasons)


def test_four_equally_fast_settings_are_inconclusive() -> None:
    verdict = on_xr(result(signature(dict.fromkeys((ALL, NE, GPU, CPU), 1.0)), os_version=OLD_OS))
    assert verdict.verdict is VerdictKind.INCONCLUSIVE
    assert any("all four settings are equally fast" in r for r in verdict.reasons)


def test_missing_settings_do_not_matter_when_the_plan_decides() -> None:
    verdict = on_xr(
        result([setting(ALL, samples(2.0))], compute_plan=plan(op(0, "conv", ANE_UNIT, 1.0)))
    )
    assert verdict.verdict is VerdictKind.FULL and verdict.timing == []


def test_a_batch_error_is_inconclusive_with_the_error() -> None:
    error = RunnerError(
        kind=RunnerErrorKind.COMPILE, message="coremlcompiler: unsupported op 'foo'"
    )
    verdict = on_xr(result(error=error, compute_plan=plan(op(0, "conv", ANE_UNIT, 1.0))))
    assert verdict.verdict is VerdictKind.INCONCLUSIVE
    assert verdict.reasons == [
        "the runner failed the whole batch (compile): coremlcompiler: unsupported op 'foo'"
    ]


def test_an_interrupted_setting_is_never_a_verdict_about_the_model() -> None:
    # The ANE settings were measured fine and a plan says FULL, but cpuOnly's slot ran while
    # the app was in the background: the comparison is void, so no verdict is drawn.
    away = RunnerError(
        kind=RunnerErrorKind.INTERRUPTED, message="cpuOnly: the app left the foreground"
    )
    settings = [*signature({ALL: 2.0, NE: 2.0}), failed(CPU)]
    settings[-1] = settings[-1].model_copy(update={"error": away})
    verdict = on_xr(result(settings, compute_plan=plan(op(0, "conv", ANE_UNIT, 1.0))))
    assert verdict.verdict is VerdictKind.INCONCLUSIVE
    assert verdict.reasons == [
        "the runner was interrupted in a setting (interrupted): cpuOnly: the app left the foreground"
    ]


def test_same_seed_same_verdict_other_seed_other_intervals() -> None:
    runner = result(signature(ANE_AND_GPU, spread=0.1), os_version=OLD_OS)
    first = on_xr(runner, seed=11)
    assert on_xr(runner, seed=11).model_dump_json() == first.model_dump_json()
    other = on_xr(runner, seed=12)
    assert [t.ratio for t in other.timing] == [t.ratio for t in first.timing]
    assert [(t.low, t.high) for t in other.timing] != [(t.low, t.high) for t in first.timing]


def test_time_budget_and_heat_are_noted() -> None:
    verdict = on_xr(
        result(signature(ANE_USED), os_version=OLD_OS, partial=True, thermal=ThermalState.SERIOUS)
    )
    assert verdict.verdict is VerdictKind.FULL
    assert "the time budget ran out: some settings have fewer samples than asked" in verdict.reasons
    assert any("the device was hot (nominal → serious)" in r for r in verdict.reasons)


def test_the_verdict_survives_a_json_round_trip() -> None:
    verdict = on_xr(
        result(signature(ANE_UNUSED), compute_plan=plan(op(0, "conv", ANE_UNIT, 1.0))),
        lint=(DILATED,),
    )
    assert Verdict.model_validate_json(verdict.model_dump_json()) == verdict


@pytest.mark.parametrize(
    ("device_class", "chip", "seed", "words"),
    [
        ("iPhone XR", "A12", 0, "not a ProductType"),
        (XR, " ", 0, "no chip"),
        (XR, "A12", -3, "negative"),
    ],
)
def test_bad_arguments_are_refused_with_a_clear_error(
    device_class: str, chip: str, seed: int, words: str
) -> None:
    runner = result(signature(ANE_USED))
    with pytest.raises(UsageError, match=words) as caught:
        decide(runner, device_class=device_class, chip=chip, simulated=False, seed=seed)
    assert caught.value.hint
