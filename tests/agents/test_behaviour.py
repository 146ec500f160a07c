"""Evidence that the simulated devices behave like the public facts (issue 4)."""

from __future__ import annotations

import pytest

from agents.devices.simulated import SimulatedDevice, build_farm
from agents.devices.simulation.chips import chip_model
from agents.devices.simulation.profile import profile
from orchestrator.protocol import ComputeUnit, ComputeUnits, RunnerResult
from orchestrator.verdict import EQUIVALENCE, compare
from tests.agents.models import conv, conv_net, inventory, lstm_model, manifest, op, write_up_conv

ANE, GPU, CPU = ComputeUnit.ANE, ComputeUnit.GPU, ComputeUnit.CPU
XR = "iPhone11,8"  # A12, the write-up's device


def device(spec: str = f"{XR}=1", seed: int = 0) -> SimulatedDevice:
    return build_farm(spec, seed=seed)[0]


def samples(result: RunnerResult, units: ComputeUnits) -> list[float]:
    return next(s.latencies_ms for s in result.settings if s.compute_units == units)


def test_write_up_plain_conv_runs_on_the_ane_under_all_on_a12() -> None:
    result, truth = device().simulate_batch(manifest(write_up_conv()), write_up_conv(), 600)
    assert truth.placements[ComputeUnits.ALL].units == [ANE, ANE, ANE]
    assert truth.placements[ComputeUnits.CPU_AND_GPU].units == [GPU, GPU, GPU]
    ratio, _low, high = compare(
        samples(result, ComputeUnits.ALL), samples(result, ComputeUnits.CPU_AND_GPU), seed=1
    )
    assert high < EQUIVALENCE[0], f"all should clearly beat cpuAndGPU (ratio {ratio:.2f})"


def test_write_up_dilated_conv_is_off_the_ane_and_all_matches_cpu_and_gpu() -> None:
    model = write_up_conv(dilation=4)
    result, truth = device().simulate_batch(manifest(model, iterations=100), model, 600)
    placed = truth.placements[ComputeUnits.ALL]
    assert ANE not in placed.units
    # The casts around the convolution follow it to the GPU: no ANE↔GPU hand-overs.
    assert placed.units == truth.placements[ComputeUnits.CPU_AND_GPU].units == [GPU] * 3
    _ratio, low, high = compare(
        samples(result, ComputeUnits.ALL), samples(result, ComputeUnits.CPU_AND_GPU), seed=1
    )
    assert EQUIVALENCE[0] <= low and high <= EQUIVALENCE[1]


def test_dilated_conv_does_run_on_the_ane_from_a13() -> None:
    model = write_up_conv(dilation=4)
    _result, truth = device("iPhone12,1=1").simulate_batch(manifest(model), model, 600)
    assert truth.placements[ComputeUnits.ALL].units[1] is ANE


@pytest.mark.parametrize("product_type", [XR, "iPhone13,2", "iPhone16,1", "iPad16,3"])
def test_lstm_never_uses_the_ane(product_type: str) -> None:
    model = lstm_model()
    result, truth = device(f"{product_type}=1").simulate_batch(manifest(model), model, 600)
    for setting, placed in truth.placements.items():
        assert placed.units[1] is CPU, setting
        assert ANE not in placed.units or setting in {ComputeUnits.ALL, ComputeUnits.CPU_AND_NE}
    assert result.compute_plan is not None
    assert ANE not in result.compute_plan.ops[1].supported


def test_a14_runs_an_ane_friendly_conv_net_faster_by_about_the_tops_ratio() -> None:
    model = conv_net()
    a12, _ = device(f"{XR}=1").simulate_batch(manifest(model), model, 600)
    a14, truth = device("iPhone13,2=1").simulate_batch(manifest(model), model, 600)
    assert set(truth.placements[ComputeUnits.ALL].units) == {ANE}
    speedup = _p50(a12, ComputeUnits.ALL) / _p50(a14, ComputeUnits.ALL)
    tops = 11.0 / 5.0
    assert tops * 0.8 <= speedup <= tops * 1.1, f"A14 speed-up {speedup:.2f} vs TOPS {tops:.2f}"


def _p50(result: RunnerResult, units: ComputeUnits) -> float:
    stats = next(s.stats for s in result.settings if s.compute_units == units)
    assert stats is not None
    return stats.p50


@pytest.mark.parametrize("product_type", [XR, "iPhone13,2", "iPhone17,1"])
def test_cpu_only_is_slower_than_all_for_conv_nets(product_type: str) -> None:
    model = conv_net(layers=3, size=64)
    result, _ = device(f"{product_type}=1").simulate_batch(manifest(model), model, 600)
    assert _p50(result, ComputeUnits.CPU_ONLY) > 3 * _p50(result, ComputeUnits.ALL)


@pytest.mark.parametrize(("os_version", "has_plan"), [("16.7.8", False), ("17.3", False),
                                                      ("17.4", True), ("18.7", True)])  # fmt: skip
def test_compute_plan_only_from_ios_17_4(os_version: str, has_plan: bool) -> None:
    model = write_up_conv(dilation=4)
    result, _ = device(f"{XR}@{os_version}=1").simulate_batch(manifest(model), model, 600)
    assert (result.compute_plan is not None) is has_plan
    if result.compute_plan:
        conv_plan = result.compute_plan.ops[1]
        assert conv_plan.preferred is GPU and ANE not in conv_plan.supported
        assert sum(p.cost or 0 for p in result.compute_plan.ops) == pytest.approx(1, abs=1e-3)


def test_plan_has_no_cost_for_neural_network_models() -> None:
    model = inventory([conv(size=64)], name="nn", model_type="neuralNetwork")
    result, _ = device().simulate_batch(manifest(model), model, 600)
    assert result.compute_plan is not None
    assert all(p.cost is None for p in result.compute_plan.ops)


def test_settings_place_ops_the_way_core_ml_does() -> None:
    # conv (ANE-able), LSTM (CPU only), conv: a model that needs several segments.
    model = inventory([conv(size=128), lstm_model().ops[1], conv(size=128)], name="mixed")
    prof = profile(model.ops, chip_model("A14"))
    assert prof.placements[ComputeUnits.CPU_ONLY].units == [CPU] * 3
    assert prof.placements[ComputeUnits.CPU_AND_GPU].units == [GPU, CPU, GPU]
    assert prof.placements[ComputeUnits.CPU_AND_NE].units == [ANE, CPU, ANE]
    assert [s.unit for s in prof.placements[ComputeUnits.ALL].segments] == [ANE, CPU, ANE]


def test_all_keeps_a_small_ane_island_on_the_gpu_but_not_a_big_one() -> None:
    dilated = conv(size=64, dilation=4)  # GPU-only on A12
    small = op("activation", [[1, 10, 28, 28]], [[1, 10, 28, 28]], flops=7840, type_="relu")
    big = conv(size=400, kernel=7, filters=64, channels=10)
    chip = chip_model("A12")
    island = profile(inventory([dilated, small, dilated]).ops, chip).placements[ComputeUnits.ALL]
    assert island.units == [GPU, GPU, GPU]
    kept = profile(inventory([dilated, big]).ops, chip).placements[ComputeUnits.ALL]
    assert kept.units == [GPU, ANE]


@pytest.mark.parametrize(
    ("bad_op", "chip"),
    [
        (op("pool", [[1, 8, 62, 62]], [[1, 8, 48, 48]], params={"kernel_sizes": [15, 15]}), "A16"),
        (op("pool", [[1, 8, 62, 62]], [[1, 8, 20, 20]], params={"kernel": [3, 3], "strides": [3, 3]}), "A16"),
        (op("upsample", [[1, 8, 62, 62]], [[1, 8, 248, 248]], params={"scale_factor_height": 4}), "A17 Pro"),
        (op("gather", [[100, 64]], [[10, 64]]), "M4"),
        (op("transpose", [[1, 64, 16]], [[1, 16, 64]]), "A12"),
        (op("elementwise", [[1, 64]], [[1, 64]], dtype="float32"), "A15"),
    ],
)  # fmt: skip
def test_ops_the_ane_cannot_run(bad_op: object, chip: str) -> None:
    prof = profile(inventory([bad_op]).ops, chip_model(chip))  # type: ignore[list-item]
    assert ANE not in prof.support[0].units and prof.support[0].reason
    assert prof.placements[ComputeUnits.CPU_AND_NE].units == [CPU]


def test_transpose_runs_on_the_ane_after_a12() -> None:
    prof = profile(
        inventory([op("transpose", [[1, 64, 16]], [[1, 16, 64]])]).ops, chip_model("A15")
    )
    assert prof.placements[ComputeUnits.ALL].units == [ANE]
