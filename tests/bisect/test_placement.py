"""Placing one probe from its timing signature and compute plan (pure)."""

from __future__ import annotations

import pytest

from orchestrator.bisect.placement import DIRECT, INFERRED, PLAN_ONLY, ProbeStatus, read_probe
from orchestrator.protocol import ComputeUnit, RunnerError, RunnerErrorKind
from tests.verdict.builders import (
    ALL,
    ANE_UNIT,
    CPU,
    GPU,
    GPU_UNIT,
    NE,
    failed,
    op,
    plan,
    result,
    signature,
)

ON_ANE = {ALL: 2.0, NE: 2.0, GPU: 5.0, CPU: 20.0}
OFF_ANE_ON_GPU = {ALL: 5.0, NE: 20.0, GPU: 5.0, CPU: 20.0}
OFF_ANE_ON_CPU = {ALL: 20.0, NE: 20.0, GPU: 5.0, CPU: 20.0}  # Core ML keeps it on the CPU
ANE_BUT_GPU_UNDER_ALL = {ALL: 5.0, NE: 2.0, GPU: 5.0, CPU: 20.0}
TOO_SMALL = {ALL: 0.25, NE: 0.25, GPU: 0.25, CPU: 0.25}
NEAR_THE_BAND = {ALL: 0.25, NE: 0.25, GPU: 0.23, CPU: 0.25}  # GPU 8 % faster: the band edge


@pytest.mark.parametrize(
    ("medians", "unit", "confidence"),
    [
        (ON_ANE, ComputeUnit.ANE, DIRECT),
        (ANE_BUT_GPU_UNDER_ALL, ComputeUnit.GPU, DIRECT),
        (OFF_ANE_ON_GPU, ComputeUnit.GPU, INFERRED),
        (OFF_ANE_ON_CPU, ComputeUnit.CPU, INFERRED),
    ],
)
def test_timing_places_the_op(medians, unit, confidence) -> None:
    reading = read_probe(result(signature(medians)))
    assert (reading.status, reading.unit, reading.confidence) == (
        ProbeStatus.PLACED,
        unit,
        confidence,
    )
    assert not reading.too_small and reading.reason


def test_an_op_too_small_to_time_is_inconclusive_and_liftable() -> None:
    reading = read_probe(result(signature(TOO_SMALL)))
    assert reading.status is ProbeStatus.INCONCLUSIVE and reading.unit is None
    assert reading.too_small and "too small to time" in reading.reason
    lifted = read_probe(result(signature(TOO_SMALL)), repeat=16, baseline_ms=0.2)
    assert lifted.status is ProbeStatus.INCONCLUSIVE and not lifted.too_small  # final
    assert "even with 16 copies of it (16 copies take 1.2× the time of one)" in lifted.reason


OVERHEAD_BOUND = {ALL: 0.25, NE: 0.25, GPU: 0.6, CPU: 0.25}  # the GPU's fixed cost dominates


def test_an_op_an_accelerator_loses_on_is_lifted_not_called_off_the_ane() -> None:
    reading = read_probe(result(signature(OVERHEAD_BOUND)))
    assert reading.status is ProbeStatus.INCONCLUSIVE and reading.too_small
    assert "fixed cost of an accelerator outweighs the op" in reading.reason


def test_a_lifted_probe_whose_copies_weigh_places_the_op() -> None:
    # 16 copies take 8× the single op: the op's time dominates. Every setting as fast as
    # the CPU at that scale: off the ANE, on the GPU or the CPU (an LSTM, say).
    same = {ALL: 2.0, NE: 2.0, GPU: 2.0, CPU: 2.0}
    reading = read_probe(result(signature(same)), repeat=16, baseline_ms=0.25)
    assert (reading.status, reading.unit, reading.confidence) == (
        ProbeStatus.PLACED,
        None,
        INFERRED,
    )
    assert reading.unit_name == "gpu-or-cpu"
    assert "16 copies take 8.0× the time of one" in reading.reason
    # The GPU still loses to the CPU, the ANE changes nothing: off the ANE, on the CPU.
    cpu = read_probe(result(signature({ALL: 2.0, NE: 2.0, GPU: 3.0, CPU: 2.0})), repeat=16,
                     baseline_ms=0.25)  # fmt: skip
    assert (cpu.status, cpu.unit) == (ProbeStatus.PLACED, ComputeUnit.CPU)
    assert cpu.reason.startswith("off the ANE")


def test_an_interval_on_the_band_edge_asks_for_a_lift() -> None:
    reading = read_probe(result(signature(NEAR_THE_BAND, spread=0.08, n=30)))
    assert reading.status is ProbeStatus.INCONCLUSIVE and reading.too_small
    assert "straddles" in reading.reason


def test_a_missing_setting_is_inconclusive_but_not_liftable() -> None:
    settings = [*signature(ON_ANE)[:3], failed(CPU)]
    reading = read_probe(result(settings))
    assert reading.status is ProbeStatus.INCONCLUSIVE and not reading.too_small
    assert "`cpuOnly` failed" in reading.reason


def test_a_runner_error_is_a_failed_probe() -> None:
    error = RunnerError(kind=RunnerErrorKind.COMPILE, message="unsupported op")
    reading = read_probe(result(error=error))
    assert reading.status is ProbeStatus.FAILED and reading.unit_name == "unknown"
    assert "compile" in reading.reason


def test_the_plan_places_and_timing_raises_or_lowers_confidence() -> None:
    on_gpu = plan(op(0, "conv", GPU_UNIT))
    agree = read_probe(result(signature(OFF_ANE_ON_GPU), compute_plan=on_gpu))
    assert (agree.unit, agree.confidence) == (ComputeUnit.GPU, DIRECT)
    disagree = read_probe(result(signature(ON_ANE), compute_plan=on_gpu))
    assert (disagree.unit, disagree.confidence) == (ComputeUnit.GPU, INFERRED)
    assert "placed by the plan" in disagree.reason
    alone = read_probe(result(signature(TOO_SMALL), compute_plan=plan(op(0, "conv", ANE_UNIT))))
    assert (alone.status, alone.unit, alone.confidence) == (
        ProbeStatus.PLACED,
        ComputeUnit.ANE,
        PLAN_ONLY,
    )
