"""The SIMULATED farm over many nights (agents/devices/simulation/nights.py): the run-to-run
noise, and every modifier of the timeline visible in the results from its night on and not
before — on the device, through the agent's batch execution, and in the benchmark's helper.
The timeline file and its errors: test_simulation_timeline.py; through real Redis, a
coordinator and Celery workers: test_simulation_nights_e2e.py."""

from __future__ import annotations

import itertools
import math
import statistics
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest

from agents.batch import execute
from agents.devices.simulated import SimulatedDevice, build_farm
from agents.devices.simulation.farm import DeviceSpec, parse_farm
from agents.devices.simulation.nights import (
    RUN_TO_RUN_SIGMA,
    NotInFarm,
    SeriesNight,
    night_samples,
    nights_between,
)
from orchestrator.modelkit.inventory import ModelInventory
from orchestrator.protocol import (
    BatchOutcome,
    ComputeUnit,
    ComputeUnits,
    ModelRef,
    RunBatch,
    RunnerErrorKind,
    RunSpec,
)
from tests.agents.models import conv_net, manifest, write_up_conv
from tests.agents.timeline_farm import (
    A12,
    A17,
    AFTER,
    BEFORE,
    FARM,
    N,
    devices,
    farm_file,
    measured,
    run,
)

# -- no night: the farm exactly as before -----------------------------------------------


def test_without_a_night_a_timeline_changes_nothing(tmp_path: Path) -> None:
    model = write_up_conv(dilation=4)
    plain = build_farm(f"{A17}=1", seed=3)[0]
    timed = devices(tmp_path)["SIM-iPhone16-1-0"]
    for i in range(3):  # same seed, same numbers, batch after batch
        expected = plain.simulate_batch(manifest(model, batch_id=f"b{i}"), model, 600)[0]
        assert measured(run(timed, model, None, f"b{i}")) == measured(expected)
    assert timed.identity == plain.identity


# -- the run-to-run noise ----------------------------------------------------------------

NOISY = f'seed: 1\ndevices: [{{product_type: "{A17}"}}]\nnoise: {{seed: 7}}\n'


def medians(
    spec: DeviceSpec, model: ModelInventory, nights: list[date], seed: int = 0
) -> list[float]:
    out = []
    for night in nights:
        series = night_samples(spec, model.ops, ComputeUnits.ALL, night, sha256=model.sha256,
                               seed=seed)  # fmt: skip
        assert series.median is not None
        out.append(series.median)
    return out


def test_run_to_run_noise_is_reproducible_by_seed_and_has_the_documented_spread(
    tmp_path: Path,
) -> None:
    model = conv_net()
    spec = parse_farm(farm_file(tmp_path, NOISY))[0]
    nights = list(nights_between(date(2026, 1, 1), date(2026, 1, 1) + timedelta(days=399)))
    first = medians(spec, model, nights)
    assert medians(spec, model, nights) == first  # same seed: same numbers
    other = parse_farm(farm_file(tmp_path, NOISY.replace("seed: 7", "seed: 8"), "other.yaml"))
    assert medians(other[0], model, nights[:5]) != first[:5]
    logs = [math.log(m) for m in first]
    # Night-to-night spread of the medians ≈ the documented σ (the 3 % within-run noise
    # of a 50-sample median adds about 0.5 %).
    assert statistics.stdev(logs) == pytest.approx(RUN_TO_RUN_SIGMA, rel=0.15)
    within = night_samples(spec, model.ops, ComputeUnits.ALL, nights[0], sha256=model.sha256)
    assert statistics.stdev(math.log(x) for x in within.samples) < RUN_TO_RUN_SIGMA / 2
    # What regressions.md reports of phones: consecutive nights often differ by > 10 %.
    jumps = [abs(b / a - 1) > 0.10 for a, b in itertools.pairwise(first)]
    assert 0.25 < sum(jumps) / len(jumps) < 0.6


def test_a_night_on_the_device_is_reproducible_by_seed(tmp_path: Path) -> None:
    model = conv_net()
    path = farm_file(tmp_path, NOISY)
    nights = [date(2026, 2, d) for d in (1, 2, 3)]
    first, second = build_farm(path)[0], build_farm(path)[0]
    a = [measured(run(first, model, n, f"b{n}")) for n in nights]
    assert [measured(run(second, model, n, f"b{n}")) for n in nights] == a
    reseeded = build_farm(farm_file(tmp_path, NOISY.replace("seed: 7", "seed: 9"), "o.yaml"))[0]
    assert measured(run(reseeded, model, nights[0], f"b{nights[0]}")) != a[0]


def test_the_device_applies_the_same_run_to_run_factor_as_the_helper(tmp_path: Path) -> None:
    model = conv_net()
    path = farm_file(tmp_path, NOISY)
    dev, spec = build_farm(path)[0], parse_farm(path)[0]
    night = date(2026, 2, 2)
    dev.at_night(night)
    truth = dev.simulate_batch(manifest(model), model, 600)[1]
    helper = night_samples(spec, model.ops, ComputeUnits.ALL, night, sha256=model.sha256)
    assert truth.placements[ComputeUnits.ALL].steady_ms == pytest.approx(helper.steady_ms)
    # A second run the same night (a confirmation) is a new draw, as on a real farm.
    again = dev.simulate_batch(manifest(model, batch_id="b2"), model, 600)[1]
    second = night_samples(spec, model.ops, ComputeUnits.ALL, night, sha256=model.sha256, draw=1)
    assert again.placements[ComputeUnits.ALL].steady_ms == pytest.approx(second.steady_ms)
    assert second.steady_ms != helper.steady_ms


def test_a_new_night_starts_cool_and_a_night_keeps_its_heat(tmp_path: Path) -> None:
    model = conv_net(layers=12, size=256)  # heavy enough to heat the device in a few batches
    dev = devices(tmp_path)["SIM-iPhone11-8-0"]
    night = date(2026, 2, 1)
    batches = 0
    while dev.state.heat.level < 60 and batches < 20:  # until fair: sustained load heats
        run(dev, model, night, f"b{batches}")
        batches += 1
    hot = dev.state.heat.level
    assert 60 <= hot < 180, (batches, hot)
    dev.at_night(night)  # another batch of the same night: still hot
    assert dev.state.heat.level == hot
    dev.at_night(night + timedelta(days=1))
    assert dev.state.heat.level == 0.0


# -- each modifier, from its night on and not before --------------------------------------


def test_os_upgrade_changes_what_the_device_reports_from_its_night(tmp_path: Path) -> None:
    a17 = devices(tmp_path)["SIM-iPhone16-1-0"]
    model = write_up_conv()
    before, after = run(a17, model, BEFORE), run(a17, model, AFTER, "b2")
    assert (before.device.os_version, after.device.os_version) == ("26.1", "26.2")
    assert after.device.os_build == "23C55sim" != before.device.os_build
    assert (a17.identity.os_version, a17.identity.os_build) == ("26.2", "23C55sim")
    assert not after.compile_cached  # a new OS build compiles the model again


def test_slow_scales_the_class_latency_from_its_night(tmp_path: Path) -> None:
    model = conv_net()
    farm = devices(tmp_path)
    a12, a17 = farm["SIM-iPhone11-8-0"], farm["SIM-iPhone16-1-0"]

    def steady(dev: SimulatedDevice, night: date, model: ModelInventory = model) -> float:
        dev.at_night(night)
        truth = dev.simulate_batch(manifest(model, batch_id=str(night)), model, 600)[1]
        return truth.placements[ComputeUnits.ALL].steady_ms

    base = steady(a12, BEFORE)
    assert steady(a12, BEFORE - timedelta(days=5)) == base  # σ 0 in FARM: exact
    assert steady(a12, AFTER) == pytest.approx(base * 1.15)
    other = write_up_conv()  # (convnet* stops compiling on the A17's new build)
    assert steady(a17, AFTER, other) == steady(a17, BEFORE, other)  # another class: as it was
    cool = devices(tmp_path)["SIM-iPhone11-8-1"]  # not heated by the batches above
    result = run(cool, model, AFTER, "median")
    assert result.settings[0].stats is not None
    assert result.settings[0].stats.p50 == pytest.approx(base * 1.15, rel=0.05)


def test_off_ane_moves_the_op_to_the_gpu_on_its_os_build(tmp_path: Path) -> None:
    a17 = devices(tmp_path)["SIM-iPhone16-1-0"]
    model = write_up_conv(dilation=4)  # on the A17 Pro's ANE, normally
    conv_at = [op.kind for op in model.ops].index("conv")

    def conv_placement(night: date) -> tuple[ComputeUnit, ComputeUnit | None]:
        result = run(a17, model, night, str(night))
        assert result.compute_plan is not None
        planned = result.compute_plan.ops[conv_at]
        assert a17.last_truth is not None
        return a17.last_truth.placements[ComputeUnits.CPU_AND_NE].units[conv_at], planned.preferred

    assert conv_placement(BEFORE) == (ComputeUnit.ANE, ComputeUnit.ANE)
    on_ne, planned = conv_placement(AFTER)
    assert on_ne is ComputeUnit.CPU  # cpuAndNeuralEngine: no ANE, so the CPU
    assert planned is ComputeUnit.GPU  # the compute plan shows it
    assert ComputeUnit.ANE not in (run(a17, model, AFTER, "plan").compute_plan or
                                   pytest.fail("no plan")).ops[conv_at].supported  # fmt: skip
    assert conv_placement(BEFORE)[1] is ComputeUnit.ANE  # and the night before is unchanged


def test_off_ane_ignores_a_device_on_another_build(tmp_path: Path) -> None:
    a12 = devices(tmp_path)["SIM-iPhone11-8-0"]
    assert a12.at_night(AFTER).off_ane == frozenset()


def test_compile_fails_on_its_os_build_from_its_night(tmp_path: Path) -> None:
    farm = devices(tmp_path)
    a17, a12 = farm["SIM-iPhone16-1-0"], farm["SIM-iPhone11-8-0"]
    model, other = conv_net(), write_up_conv()  # convnet* matches, conv10x10_d1 does not
    assert run(a17, model, BEFORE).error is None
    failed = run(a17, model, AFTER, "b2")
    assert failed.error is not None and failed.error.kind is RunnerErrorKind.COMPILE
    assert "(SIMULATED compile_fails on 23C55sim)" in failed.error.message
    assert run(a17, other, AFTER, "b3").error is None
    assert run(a12, model, AFTER, "b4").error is None  # another OS build compiles it


def test_a_removed_class_is_absent_on_its_nights_only(tmp_path: Path) -> None:
    a12 = devices(tmp_path)["SIM-iPhone11-8-0"]
    model = write_up_conv()
    run(a12, model, BEFORE)
    runs = a12.runs
    with pytest.raises(NotInFarm, match=f"iPhone11,8 is not in the farm on {N}") as caught:
        run(a12, model, N, "b2")
    assert caught.value.infra and caught.value.kind == "absent"
    assert a12.runs == runs  # an absent night is no run (fault scripts count runs)
    assert run(a12, model, AFTER, "b3").error is None


def test_an_added_class_is_absent_before_its_night(tmp_path: Path) -> None:
    text = FARM.replace("timeline:\n", f'timeline:\n  - {{from: {N}, add: {{class: "{A17}"}}}}\n')
    a17 = devices(tmp_path, text)["SIM-iPhone16-1-0"]
    assert [a17.at_night(n).present for n in (BEFORE, N, AFTER, None)] == [False, True, True, True]


# -- through the agent: the batch's night reaches the device --------------------------------


def batch(device_class: str, model: ModelInventory, night: date | None) -> RunBatch:
    return RunBatch(
        run_id=uuid4(), attempt=1, job_id=uuid4(),
        model=ModelRef(sha256=model.sha256, filename=model.path.name, format="mlpackage",
                       size_bytes=model.size_bytes),
        device_class=device_class, spec=RunSpec(compute_units=[ComputeUnits.ALL], night=night),
        created_at=datetime.now(UTC),
    )  # fmt: skip


def test_the_agent_puts_the_device_on_the_batch_night(tmp_path: Path) -> None:
    farm = devices(tmp_path)
    a17, a12 = farm["SIM-iPhone16-1-0"], farm["SIM-iPhone11-8-0"]
    model = conv_net()
    for dev in (a17, a12):  # the device inspects a model once; here it knows it already
        dev.models.inventories[model.sha256] = model

    def fetch(_: RunBatch) -> Path:
        return tmp_path / "no-such-model.mlpackage"  # the OS gate then leaves it to the device

    late = execute(batch(A17, model, AFTER), a17, agent="a", fetch_model=fetch)
    assert late.device.os_build == "23C55sim"  # what ingest stores per run
    assert late.runner_result is not None and late.runner_result.device.os_build == "23C55sim"
    assert late.outcome is BatchOutcome.MODEL_ERROR  # compile_fails convnet* on 23C55
    plain = execute(batch(A17, model, None), a17, agent="a", fetch_model=fetch)
    assert plain.outcome is BatchOutcome.OK and plain.device.os_version == "26.1"
    absent = execute(batch(A12, model, N), a12, agent="a", fetch_model=fetch)
    assert absent.outcome is BatchOutcome.INFRA_ERROR and absent.failure is not None
    assert absent.failure.kind == "absent"
    assert f"not in the farm on {N} (SIMULATED timeline)" in absent.failure.message


# -- the benchmark's helper -----------------------------------------------------------------


def test_the_helper_shows_every_modifier_like_the_device(tmp_path: Path) -> None:
    specs = {s.udid: s for s in parse_farm(farm_file(tmp_path))}
    a17, a12 = specs["SIM-iPhone16-1-0"], specs["SIM-iPhone11-8-0"]
    dilated, net = write_up_conv(dilation=4), conv_net()

    def series(
        spec: DeviceSpec, model: ModelInventory, night: date, units: ComputeUnits
    ) -> SeriesNight:
        return night_samples(spec, model.ops, units, night, sha256=model.sha256,
                             name=model.path.name, iterations=20)  # fmt: skip

    before, after = (series(a17, dilated, n, ComputeUnits.CPU_AND_NE) for n in (BEFORE, AFTER))
    conv_at = [op.kind for op in dilated.ops].index("conv")
    assert (before.units[conv_at], after.units[conv_at]) == (ComputeUnit.ANE, ComputeUnit.CPU)
    assert (before.os_build, after.os_build) == (before.os_build, "23C55sim")
    assert series(a17, net, BEFORE, ComputeUnits.ALL).failure is None
    assert "compile_fails on 23C55sim" in (series(a17, net, AFTER, ComputeUnits.ALL).failure or "")
    gone = series(a12, net, N, ComputeUnits.ALL)
    assert gone.samples == [] and "not in the farm" in (gone.failure or "")
    slow, fast = (
        series(a12, net, AFTER, ComputeUnits.ALL),
        series(a12, net, BEFORE, ComputeUnits.ALL),
    )
    assert slow.steady_ms == pytest.approx(fast.steady_ms * 1.15)
    assert len(slow.samples) == 20
