"""The SIMULATED farm over many nights (agents/devices/simulation/nights.py): the timeline of
a farm file, its one-line errors, the run-to-run noise, and every modifier visible in the
results from its night on and not before — on the device, through the agent's batch
execution, and in the benchmark's helper."""

from __future__ import annotations

import itertools
import math
import statistics
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest
from sqlalchemy import select

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
from orchestrator.errors import UsageError
from orchestrator.modelkit.inventory import ModelInventory
from orchestrator.protocol import (
    BatchOutcome,
    ComputeUnit,
    ComputeUnits,
    ModelRef,
    RunBatch,
    RunnerErrorKind,
    RunnerResult,
    RunSpec,
)
from tests.agents.models import conv_net, manifest, write_up_conv

A12, A17 = "iPhone11,8", "iPhone16,1"
N = date(2026, 3, 18)  # the night the timeline's changes start
BEFORE, AFTER = N - timedelta(days=1), N + timedelta(days=3)
FARM = f"""\
seed: 3
devices:
  - {{product_type: "{A12}", count: 2}}
  - {{product_type: "{A17}"}}
noise: {{seed: 7, run_to_run_sigma: 0}}
timeline:
  - {{from: {N}, os_upgrade: {{class: "{A17}", version: "26.2", build: 23C55}}}}
  - {{from: {N}, slow: {{class: "{A12}", factor: 1.15}}}}
  - {{from: {N}, off_ane: {{op: conv_dilated, os_build: 23C55}}}}
  - {{from: {N}, compile_fails: {{model: "convnet*", os_build: 23C55}}}}
  - {{from: {N}, remove: {{class: "{A12}"}}, until: {N + timedelta(days=2)}}}
"""


def farm_file(tmp_path: Path, text: str = FARM, name: str = "farm.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def devices(tmp_path: Path, text: str = FARM) -> dict[str, SimulatedDevice]:
    return {d.identity.udid: d for d in build_farm(farm_file(tmp_path, text))}


def run(
    dev: SimulatedDevice, model: ModelInventory, night: date | None, batch: str = "b"
) -> RunnerResult:
    dev.at_night(night)
    return dev.simulate_batch(manifest(model, batch_id=batch), model, 600)[0]


def measured(result: RunnerResult) -> dict[str, object]:
    return result.model_dump(exclude={"started_at", "finished_at"})


# -- the timeline in the farm file ------------------------------------------------------


def test_a_timeline_reaches_every_device_and_a_night_picks_its_state(tmp_path: Path) -> None:
    specs = parse_farm(farm_file(tmp_path))
    assert [s.timeline is specs[0].timeline for s in specs] == [True] * 3
    timeline = specs[0].timeline
    assert timeline is not None and len(timeline.timeline) == 5
    assert [e.action for e in timeline.timeline] == [
        "os_upgrade", "slow", "off_ane", "compile_fails", "remove",
    ]  # fmt: skip
    a17 = devices(tmp_path)["SIM-iPhone16-1-0"]
    assert a17.at_night(BEFORE).os_build == a17.at_night(None).os_build != "23C55sim"
    assert (a17.at_night(N).os_version, a17.at_night(N).os_build) == ("26.2", "23C55sim")
    assert a17.at_night(N).off_ane == {"conv_dilated"}
    a12 = devices(tmp_path)["SIM-iPhone11-8-1"]
    assert [a12.at_night(n).present for n in (BEFORE, N, N + timedelta(days=1), AFTER)] == [
        True, False, False, True,
    ]  # fmt: skip
    assert [a12.at_night(n).slow for n in (BEFORE, AFTER)] == [1.0, 1.15]


def test_a_farm_without_nights_is_unchanged(tmp_path: Path) -> None:
    plain = 'devices: [{product_type: "iPhone11,8"}]\n'
    assert parse_farm(farm_file(tmp_path, plain))[0].timeline is None
    assert parse_farm("iPhone11,8=1")[0] == DeviceSpec(A12, "18.7", 0)


ENTRY = 'devices: [{{product_type: "iPhone11,8"}}]\ntimeline:\n  - {entry}\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (ENTRY.format(entry='{from: 2026-03-18, slow: {class: "iPhone11,8", factor: 0}}'),
         "{path} timeline entry 1: slow.factor: Input should be greater than 0"),
        (ENTRY.format(entry='{from: 2026-03-18, slow: {class: "iPhone11,8", speed: 2}}'),
         "{path} timeline entry 1: slow: unknown keys ['speed'] (allowed: class, factor)"),
        (ENTRY.format(entry="{from: 2026-03-18, slo: {}}"),
         "{path} timeline entry 1: unknown keys ['slo'] (allowed: from, until, os_upgrade, slow,"
         " off_ane, compile_fails, add, remove)"),
        (ENTRY.format(entry='{slow: {class: "iPhone11,8", factor: 2}}'),
         "{path} timeline entry 1: from: missing"),
        (ENTRY.format(entry='{from: 20260318, remove: {class: "iPhone11,8"}}'),
         "{path} timeline entry 1: from: must be a date like 2026-03-18, not 20260318"),
        (ENTRY.format(entry="{from: 2026-03-18}"),
         "{path} timeline entry 1: needs exactly one of os_upgrade, slow, off_ane,"
         " compile_fails, add, remove, has none"),
        (ENTRY.format(entry='{from: 2026-03-18, add: {class: "iPhone11,8"},'
                            ' remove: {class: "iPhone11,8"}}'),
         "{path} timeline entry 1: needs exactly one of os_upgrade, slow, off_ane,"
         " compile_fails, add, remove, has ['add', 'remove']"),
        (ENTRY.format(entry='{from: 2026-03-18, until: 2026-03-18, remove: {class: "iPhone11,8"}}'),
         "{path} timeline entry 1: until 2026-03-18 is not after from 2026-03-18"),
        (ENTRY.format(entry='{from: 2026-03-18, until: 2026-03-19, add: {class: "iPhone11,8"}}'),
         "{path} timeline entry 1: add has no until: write a remove entry from that night"),
        (ENTRY.format(entry='{from: 2026-03-18, os_upgrade: {class: "iPhone11,8", version: "18.2",'
                            ' udid: SIM-iPhone11-8-1}}'),
         "{path} timeline entry 1: os_upgrade.udid 'SIM-iPhone11-8-1' is not a device of class"
         " iPhone11,8 here (that class has SIM-iPhone11-8-0)"),
        (ENTRY.format(entry='{from: 2026-03-18, remove: {class: "iPhone12,1"}}'),
         "{path} timeline entry 1: remove.class 'iPhone12,1' is not a device class of this farm"
         " (the farm has iPhone11,8; add its devices to 'devices')"),
        (ENTRY.format(entry='{from: 2026-03-18, os_upgrade: {class: "iPhone11,8", version: 19}}'),
         "{path} timeline entry 1: os_upgrade.version: iPhone11,8 (iPhone XR) runs OS 12.0 to"
         ' 18.x, not 19 (quote it: version: "18.2")'),
        (ENTRY.format(entry='{from: 2026-03-18, os_upgrade: {class: "iPhone11,8", version: "18.2",'
                            " build: 22c152}}"),
         "{path} timeline entry 1: os_upgrade.build: String should match pattern"),
        (ENTRY.format(entry="{from: 2026-03-18, off_ane: {op: conv_dilatd}}"),
         "{path} timeline entry 1: off_ane.op: unknown op 'conv_dilatd' (did you mean"
         " conv_dilated"),
        (ENTRY.format(entry="{from: 2026-03-18, compile_fails: {os_build: 22C152}}"),
         "{path} timeline entry 1: compile_fails: give model (a file name pattern) or"
         " model_sha256, one of them"),
        (ENTRY.format(entry='{from: 2026-03-18, compile_fails: {model_sha256: "XYZ"}}'),
         "{path} timeline entry 1: compile_fails.model_sha256: String should match pattern"),
        (ENTRY.format(entry="- nested"),
         "{path} timeline entry 1: must be a mapping, not ['nested']"),
        ('devices: [{product_type: "iPhone11,8"}]\ntimeline: {from: 2026-03-18}\n',
         "{path}: timeline must be a list of entries"),
        ('devices: [{product_type: "iPhone11,8"}]\nnoise: {run_to_run_sigma: 2}\n',
         "farm file {path}: noise.run_to_run_sigma: Input should be less than or equal to 1"),
        ('devices: [{product_type: "iPhone11,8"}]\nnoise: {sigma: 0.1}\n',
         "farm file {path}: noise: unknown keys ['sigma'] (allowed: seed, run_to_run_sigma)"),
    ],
)  # fmt: skip
def test_a_bad_timeline_is_one_line_naming_the_entry_and_key(
    tmp_path: Path, text: str, message: str
) -> None:
    path = farm_file(tmp_path, text)
    with pytest.raises(UsageError) as caught:
        parse_farm(path)
    line = caught.value.one_line()
    assert "\n" not in line
    assert line.startswith(message.format(path=path)), line


@pytest.mark.slow  # a CLI process and the sample models
def test_the_cli_says_what_is_wrong_with_a_timeline_in_one_line(
    tmp_path: Path, samples: dict[str, Path]
) -> None:
    import os
    import subprocess
    import sys

    bad = farm_file(tmp_path, ENTRY.format(entry='{from: 2026-03-18, slow: {class: "iPhone11,8"}}'))
    out = subprocess.run(
        [sys.executable, "-m", "orchestrator", "profile", str(samples["conv10x10.mlpackage"]),
         "--simulate", str(bad)],
        env={**os.environ, "ANEFARM_HOME": str(tmp_path / "home")},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip() == f"anefarm: error: {bad} timeline entry 1: slow.factor: missing"


def test_the_devices_are_judged_before_the_timeline(tmp_path: Path) -> None:
    path = farm_file(tmp_path, "timeline: [{from: 2026-03-18}]\ndevices: []\n")
    with pytest.raises(UsageError, match="needs a non-empty 'devices' list"):
        parse_farm(path)


def test_the_farm_files_of_the_docs_are_valid(tmp_path: Path) -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "simulation.md"
    section = docs.read_text().split("## Many nights", 1)[1].split("\n## ", 1)[0]
    blocks = [b.split("```", 1)[0] for b in section.split("```yaml\n")[1:]]
    assert len(blocks) >= 2
    for i, block in enumerate(blocks):
        specs = parse_farm(farm_file(tmp_path, block, f"doc{i}.yaml"))
        assert specs[0].timeline is not None and specs[0].timeline.timeline
    # The issue-18 farm: the slowdown from night 18, the new build and the moved op from 21.
    farm = {d.identity.udid: d for d in build_farm(tmp_path / "doc1.yaml")}
    a15 = farm["SIM-iPhone14-2-0"]
    assert [a15.at_night(date(2026, 3, d)).slow for d in (17, 18)] == [1.0, 1.15]
    states = [a15.at_night(date(2026, 3, d)) for d in (20, 21)]
    assert [(s.os_build, s.off_ane) for s in states] == [
        (states[0].os_build, frozenset()),
        ("23C55sim", frozenset({"conv_dilated"})),
    ]


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


# -- end to end: real Redis, coordinator and Celery workers on a farm file with a timeline --

E2E_FARM = f"""\
devices: [{{product_type: "{A17}"}}]
noise: {{seed: 7}}
timeline:
  - {{from: {N}, os_upgrade: {{class: "{A17}", version: "26.2", build: 23C55}}}}
  - {{from: {N}, off_ane: {{op: conv_dilated, os_build: 23C55}}}}
"""


@pytest.mark.slow
@pytest.mark.celery  # Farm starts the agent's Celery workers in the test body
def test_a_night_after_the_os_upgrade_moves_the_dilated_conv_off_the_ane_end_to_end(
    tmp_path: Path, redis_url: str, samples: dict[str, Path]
) -> None:
    from orchestrator.dispatch import SubmitOptions, prepare, submit
    from orchestrator.protocol.transport import create_app
    from tests.pipeline.farm import Farm

    farm = Farm.at(tmp_path, redis_url)
    try:
        farm.start_coordinator()
        farm.start_agent(str(farm_file(tmp_path, E2E_FARM)), wait_for=1)
        settings = farm.settings()
        app = create_app(settings)
        model = samples["conv10x10_dilated4.mlpackage"]
        options = SubmitOptions(selector=A17, iterations=20, warmup=2, bisect="never")
        rows = {}
        for night in (BEFORE, N):  # what a sweep's night does: RunSpec.night set
            prepared = prepare([model], options, None)
            prepared.spec = prepared.spec.model_copy(update={"night": night})
            job = submit(prepared, settings=settings, sessions=farm.sessions(), app=app).job_id
            rows[night] = farm.wait_job(str(job))["rows"][0]
        before, after = rows[BEFORE], rows[N]
        assert (before["os_version"], after["os_version"]) == ("26.1", "26.2")
        assert after["os_build"] == "23C55sim" != before["os_build"]
        assert before["verdict"] == "FULL" and not before["ops_off_ane"]
        assert after["verdict"] in {"PARTIAL", "NONE"}
        # The conv leaves the ANE; the casts around it follow it to the GPU (one region).
        moved = {op["type"]: op["unit"] for op in after["ops_off_ane"]}
        assert moved.get("conv") == "gpu", after["ops_off_ane"]
        assert before["simulated"] is after["simulated"] is True
    finally:
        farm.stop()


SWEEP_NIGHTS = ("2026-11-24T02:00", "2026-11-25T02:00", "2026-11-26T02:00")
SWEEP_FARM = f"""\
devices: [{{product_type: "{A12}"}}, {{product_type: "{A17}"}}]
noise: {{run_to_run_sigma: 0}}
timeline:
  - {{from: 2026-11-25, os_upgrade: {{class: "{A17}", version: "26.2", build: 23C55}}}}
  - {{from: 2026-11-25, off_ane: {{op: conv_dilated, os_build: 23C55}}}}
  - {{from: 2026-11-25, slow: {{class: "{A12}", factor: 1.5}}}}
  - {{from: 2026-11-26, remove: {{class: "{A12}"}}}}
"""


@pytest.mark.slow
@pytest.mark.celery  # Farm starts the agent's Celery workers in the test body
def test_sweep_nights_on_a_timeline_farm_show_each_change_in_the_history(
    tmp_path: Path, redis_url: str, samples: dict[str, Path]
) -> None:
    """`anefarm sweep run --at` (orchestrator/sweeps sets RunSpec.night) over three nights."""
    import json
    import shutil

    from tests.pipeline.farm import Farm

    models = tmp_path / "models"
    models.mkdir()
    shutil.copytree(samples["conv10x10_dilated4.mlpackage"], models / "dilated.mlpackage")
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(
        'name: sim-nights\nschedule: "0 2 * * *"\nmodels:\n  - path: models/*.mlpackage\n'
        f'devices: "{A12},{A17}"\ncompute_units: [all]\niterations: 20\nbisect: never\n'
    )
    farm = Farm.at(tmp_path, redis_url)
    try:
        farm.start_coordinator()
        farm.start_agent(str(farm_file(tmp_path, SWEEP_FARM)), wait_for=2)
        farm.cli("sweep", "add", str(sweep))
        for at in SWEEP_NIGHTS:
            farm.cli("sweep", "run", "sim-nights", "--at", at, "--wait", check=False, timeout=240)
        out = farm.cli("sweep", "history", "sim-nights", "--json")
        points = {(p["night"], p["device_class"]): p for p in json.loads(out.stdout)["points"]}
        n1, n2, n3 = (at[:10] for at in SWEEP_NIGHTS)
        # The OS upgrade and the op it moves off the ANE, from their night on.
        assert points[(n1, A17)]["os_build"] != "23C55sim"
        assert points[(n2, A17)]["os_build"] == points[(n3, A17)]["os_build"] == "23C55sim"
        assert points[(n1, A17)]["verdict"] == "FULL"
        assert points[(n2, A17)]["verdict"] in {"PARTIAL", "NONE"}
        # The SIMULATED slowdown of the A12 (no run-to-run noise in this farm).
        ratio = points[(n2, A12)]["median_ms"] / points[(n1, A12)]["median_ms"]
        assert ratio == pytest.approx(1.5, rel=0.05)
        # The A12 removed on night 3: a hole with its cause.
        gone = points[(n3, A12)]
        assert gone["status"] == "missing", gone
        assert gone["reason"].startswith("device_class_absent: "), gone
        assert f"not in the farm on {n3}" in gone["reason"], gone
        # Not the device's fault: one attempt, and nothing counted against the device.
        assert len(farm.attempts(str(gone["run_id"]))) == 1
        from orchestrator.store import models as db

        with farm.sessions()() as session:
            a12 = session.scalars(select(db.Device).where(db.Device.product_type == A12)).all()
            assert a12 and all(d.infra_failures_in_row == 0 for d in a12)
    finally:
        farm.stop()
