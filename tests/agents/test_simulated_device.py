"""The simulated device itself: determinism, noise, faults, caches, budget, heat, time."""

from __future__ import annotations

import math
import statistics
import time
from pathlib import Path

import pytest

from agents.devices.simulated import SimulatedDevice, build_farm
from agents.outcome import classify
from orchestrator.errors import (
    AnefarmError,
    DeviceGone,
    DeviceNotReady,
    ProtocolError,
    RunnerCrashed,
    RunnerTimeout,
)
from orchestrator.protocol import (
    BatchOutcome,
    ComputeUnits,
    RunnerErrorKind,
    RunnerResult,
    ThermalState,
)
from tests.agents.models import conv_net, inventory, manifest, op, write_up_conv

TIMESTAMPS = {"started_at", "finished_at"}  # wall clock, like a real runner


def device(spec: str = "iPhone11,8=1", seed: int = 0, **kw: object) -> SimulatedDevice:
    return build_farm(spec, seed=seed, **kw)[0]  # type: ignore[arg-type]


def measured(result: RunnerResult) -> dict[str, object]:
    return result.model_dump(exclude=TIMESTAMPS)


def test_same_seed_same_results() -> None:
    model = write_up_conv()
    a, b = device(seed=5), device(seed=5)
    for i in range(3):  # device state (compile cache, heat) evolves identically too
        ra = a.simulate_batch(manifest(model, batch_id=f"b{i}"), model, 600)[0]
        rb = b.simulate_batch(manifest(model, batch_id=f"b{i}"), model, 600)[0]
        assert measured(ra) == measured(rb)
    other = device(seed=6).simulate_batch(manifest(model, batch_id="b0"), model, 600)[0]
    assert measured(other) != measured(
        device(seed=5).simulate_batch(manifest(model, batch_id="b0"), model, 600)[0]
    )


def test_different_seeds_differ_within_the_configured_spread() -> None:
    model = write_up_conv()
    runs = [device(seed=s).simulate_batch(manifest(model, iterations=400), model, 600)
            for s in (1, 2)]  # fmt: skip
    (ra, truth), (rb, _) = runs
    a = ra.settings[0].latencies_ms
    b = rb.settings[0].latencies_ms
    assert a != b
    steady = truth.placements[ComputeUnits.ALL].steady_ms
    for latencies in (a, b):
        logs = [math.log(x / steady) for x in latencies]
        assert abs(statistics.fmean(logs)) < 0.01
        assert statistics.stdev(logs) == pytest.approx(truth.noise_sigma, rel=0.2)
        assert all(abs(v) < 6 * truth.noise_sigma for v in logs)


def test_result_shape_loads_and_first_prediction() -> None:
    model = write_up_conv()
    dev = device()
    result, truth = dev.simulate_batch(manifest(model, iterations=30, warmup=4), model, 600)
    assert result.simulated and result.runner_version == "sim-1" and not result.partial
    assert result.device.os_build == dev.identity.os_build
    for setting in result.settings:
        assert setting.stats is not None and setting.stats.count == 30
        assert setting.cold_load_ms is not None and setting.warm_load_ms is not None
        assert setting.cold_load_ms > setting.warm_load_ms
        steady = truth.placements[setting.compute_units].steady_ms
        assert setting.first_prediction_ms is not None and setting.first_prediction_ms > 2 * steady
    assert dev.last_truth is truth


def test_compiled_model_cache_is_keyed_by_model_and_os_build() -> None:
    model, other = write_up_conv(), write_up_conv(dilation=4)
    dev = device()
    cold = dev.simulate_batch(manifest(model), model, 600)[0]
    warm = dev.simulate_batch(manifest(model, batch_id="b2"), model, 600)[0]
    assert not cold.compile_cached and cold.compile_ms and cold.compile_ms > 50
    assert warm.compile_cached and warm.compile_ms == 0
    # Not the same kind of cold load: the provenance says why the second is faster.
    assert [s.cold_load_provenance for s in cold.settings][:2] == ["fresh_compile", "warm_cache"]
    assert [s.cold_load_provenance for s in warm.settings][:2] == ["fresh_process", "warm_cache"]
    assert warm.settings[0].cold_load_ms < cold.settings[0].cold_load_ms  # type: ignore[operator]
    assert not dev.simulate_batch(manifest(other), other, 600)[0].compile_cached
    # The same model on another OS build compiles again.
    older = device("iPhone11,8@17.4=1")
    assert not older.simulate_batch(manifest(model), model, 600)[0].compile_cached


def test_time_budget_cuts_the_batch_short_and_marks_it_partial() -> None:
    model = conv_net()  # ~6 ms per prediction on A12
    result, _ = device().simulate_batch(manifest(model, iterations=2000, budget_s=20), model, 600)
    assert result.partial
    counts = [s.stats.count for s in result.settings if s.stats]
    assert counts and all(c < 2000 for c in counts)
    total_ms = sum(sum(s.latencies_ms) for s in result.settings)
    assert total_ms <= 20_000
    tiny, _ = device().simulate_batch(manifest(model, budget_s=0.05), model, 600)
    assert tiny.partial and all(s.error and s.error.kind == RunnerErrorKind.TIMEOUT
                                for s in tiny.settings)  # fmt: skip


def test_sustained_load_heats_and_throttles() -> None:
    model = conv_net(layers=12, size=256)  # ~40 ms per prediction on A12
    dev = device()
    assert dev.readiness().thermal_state is ThermalState.NOMINAL
    first, _ = dev.simulate_batch(manifest(model, iterations=2000, units=[ComputeUnits.ALL]),
                                  model, 3600)  # fmt: skip
    states = [first.thermal_after]
    for i in range(6):
        later, _ = dev.simulate_batch(
            manifest(model, batch_id=f"hot{i}", iterations=2000, units=[ComputeUnits.ALL]),
            model, 3600,
        )  # fmt: skip
        states.append(later.thermal_after)
    assert ThermalState.SERIOUS in states or ThermalState.CRITICAL in states
    assert later.settings[0].stats.p50 > 1.15 * first.settings[0].stats.p50  # type: ignore[union-attr]
    assert dev.readiness().thermal_state is later.thermal_after
    dev.reboot()  # a restart lets it cool down
    assert dev.readiness().thermal_state is ThermalState.NOMINAL


@pytest.mark.parametrize(
    ("fault", "error"),
    [("crash", RunnerCrashed), ("hang", RunnerTimeout), ("disconnect", DeviceGone),
     ("malformed", ProtocolError)],
)  # fmt: skip
def test_run_faults_raise_infra_errors_on_the_scripted_run(
    fault: str, error: type[AnefarmError]
) -> None:
    model = write_up_conv()
    dev = device(f"iPhone11,8=1!{fault}@2")
    dev.simulate_batch(manifest(model), model, 600)
    with pytest.raises(error) as caught:
        dev.simulate_batch(manifest(model, batch_id="b2"), model, 600)
    assert caught.value.infra and caught.value.hint
    assert dev.diagnostics().log_lines
    dev.simulate_batch(manifest(model, batch_id="b3"), model, 600)  # and it recovers


def test_malformed_result_is_caught_by_protocol_validation() -> None:
    model = write_up_conv()
    dev = device("iPhone11,8=1!malformed")
    with pytest.raises(ProtocolError, match="does not validate"):
        dev.simulate_batch(manifest(model), model, 600)
    assert any("result.json" in line for line in dev.diagnostics().log_lines)


def test_hang_in_instant_mode_reports_the_timeout_at_once() -> None:
    model = write_up_conv()
    started = time.monotonic()
    with pytest.raises(RunnerTimeout, match="within 900s: the runner hung"):
        device("iPhone11,8=1!hang").simulate_batch(manifest(model), model, 900)
    assert time.monotonic() - started < 1


def test_probability_faults_are_seeded() -> None:
    model = write_up_conv()

    def pattern(seed: int) -> list[bool]:
        dev = device("iPhone11,8=1!crash~0.3", seed=seed)
        out = []
        for i in range(40):
            try:
                dev.simulate_batch(manifest(model, batch_id=f"b{i}"), model, 600)
                out.append(False)
            except RunnerCrashed:
                out.append(True)
        return out

    assert pattern(1) == pattern(1) != pattern(2)
    assert 4 <= sum(pattern(1)) <= 20


@pytest.mark.parametrize(
    ("fault", "field", "says"),
    [("battery", "battery_percent", "battery 4%"), ("hot", "temperature_c", "46 °C"),
     ("unpaired", "paired", "not paired"), ("devmode", "developer_mode", "Developer Mode")],
)  # fmt: skip
def test_readiness_faults(fault: str, field: str, says: str) -> None:
    dev = device(f"iPhone11,8=1!{fault}")
    ready = dev.readiness()
    assert not ready.ready and says in ready.reasons[0]
    assert getattr(ready, field) in {4.0, 46.0, False}
    model = write_up_conv()
    with pytest.raises(DeviceNotReady) as caught:
        dev.simulate_batch(manifest(model), model, 600)
    assert caught.value.reasons == ready.reasons


def test_model_failures_are_reported_in_the_result_not_raised() -> None:
    model, other = write_up_conv(), write_up_conv(dilation=4)
    keyed = device(f"iPhone11,8=1!compilefail#{model.sha256[:10]}")
    failed, truth = keyed.simulate_batch(manifest(model), model, 600)
    assert failed.error and failed.error.kind == RunnerErrorKind.COMPILE and not failed.settings
    assert truth.model_fault == RunnerErrorKind.COMPILE
    assert keyed.simulate_batch(manifest(other), other, 600)[0].error is None  # other model: fine
    load, _ = device("iPhone11,8=1!loadfail").simulate_batch(manifest(model), model, 600)
    assert load.error is None
    assert all(s.error and s.error.kind == RunnerErrorKind.LOAD for s in load.settings)
    custom = inventory([op("custom", [[1, 8]], [[1, 8]], type_="MyLayer")], name="custom")
    result, _ = device().simulate_batch(manifest(custom), custom, 600)
    assert result.error and "MyLayer" in result.error.message


def test_realtime_mode_sleeps_the_scaled_duration() -> None:
    model = write_up_conv()
    dev = device(time_mode="realtime", speed=50)
    started = time.monotonic()
    _, truth = dev.simulate_batch(manifest(model), model, 600)
    slept = time.monotonic() - started
    assert truth.device_s / 50 <= slept < truth.device_s / 50 + 0.5


def test_run_inspects_a_real_model_file_once(contract_model: tuple[Path, str]) -> None:
    path, sha = contract_model
    dev = device()
    m = manifest(write_up_conv())
    m = m.model_copy(update={"model": m.model.model_copy(update={"sha256": sha})})
    result = dev.run(m, path, timeout_s=600)
    assert result.model_sha256 == sha and dev.last_truth is not None
    missing = path.parent / "gone.mlpackage"
    again = dev.run(m.model_copy(update={"batch_id": "b2"}), missing, timeout_s=600)
    assert again.compile_cached  # served from the per-sha256 inventory cache


def test_a_closed_device_refuses_work() -> None:
    dev = device()
    dev.close()
    model = write_up_conv()
    with pytest.raises(DeviceGone, match="closed"):
        dev.simulate_batch(manifest(model), model, 600)


def test_fresh_compile_cold_loads_are_all_fresh_and_pay_a_compile_each() -> None:
    model = write_up_conv()
    dev = device()
    dev.simulate_batch(manifest(model), model, 600)  # the compiled model is now cached
    process = dev.simulate_batch(manifest(model, batch_id="b2"), model, 600)[0]
    fresh_manifest = manifest(model, batch_id="b3").model_copy(
        update={"cold_load": "fresh_compile"}
    )
    fresh = dev.simulate_batch(fresh_manifest, model, 600)[0]
    assert fresh.simulated and fresh.compile_cached
    assert {s.cold_load_provenance for s in fresh.settings} == {"fresh_compile"}
    assert fresh.finished_at - fresh.started_at > process.finished_at - process.started_at


def test_background_fault_interrupts_the_last_setting_and_keeps_its_first_samples() -> None:
    model = write_up_conv()
    result, truth = device("iPhone11,8=1!background").simulate_batch(manifest(model), model, 600)
    assert "background" in truth.faults and result.simulated
    *measured, last = result.settings
    assert all(s.error is None for s in measured)
    assert last.error is not None and last.error.kind == "interrupted"
    assert "SIMULATED" in last.error.message
    assert last.latencies_ms and last.stats is not None
    assert last.stats.count == len(last.latencies_ms)
    outcome, failure = classify(result)
    assert outcome is BatchOutcome.INFRA_ERROR and failure is not None and failure.infra
