"""Packed probes on the iOS driver (issue 21 item 1): one runner launch for every model of
a packed batch, over the strict fakes of the developer services (fake_container: AFC
push semantics; fake_runner: the app's inbox as the Swift mailbox reads it)."""

from __future__ import annotations

import asyncio
import hashlib
import math
from pathlib import Path
from typing import Any, cast

import pytest

from agents.batch import execute_all
from agents.devices.ios import IOSDevice, RunnerConfig
from agents.devices.ios import runner as ios_runner
from agents.devices.simulated import SimulatedDevice, build_farm
from bench.packed_probes import PackedFarm, chain_model
from orchestrator import modelkit
from orchestrator.protocol import BatchOutcome, ComputeUnits, RunBatch, RunPurpose
from tests.bisect.packed_farms import XR_IOS16, placements
from tests.contract.batches import run_batch
from tests.ios.conftest import RUNNER, UDID, DeviceFactory, runner_app
from tests.ios.fake_container import FakeContainer
from tests.ios.fake_developer import FakeDeveloperServices
from tests.ios.fake_usbmuxd import FakeIPhone, FakeUsbmuxd

PROBED = (ComputeUnits.ALL, ComputeUnits.CPU_ONLY)


@pytest.fixture(autouse=True)
def quick_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    # The driver polls the done marker every 0.5 s (fine over USB); the fake answers at once.
    monkeypatch.setattr(ios_runner, "POLL_S", 0.02)


def _package(folder: Path, name: str, payload: bytes) -> Path:
    """A stand-in .mlpackage: a folder with its Manifest.json at the top (the fake runner
    checks where it lands, never parses it)."""
    package = folder / name
    (package / "Data" / "com.apple.CoreML").mkdir(parents=True)
    (package / "Manifest.json").write_bytes(b'{"fileFormatVersion": "1.0.0"}')
    (package / "Data" / "com.apple.CoreML" / "model.mlmodel").write_bytes(payload)
    return package


def _sha(path: Path) -> str:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()


def _probe_batches(models: list[Path]) -> list[RunBatch]:
    return [run_batch(_sha(path), filename=path.name.split("@")[0], units=PROBED, iterations=10,
                      warmup=2, timeout_s=30, purpose=RunPurpose.PROBE, pinned_udid=UDID)
            for path in models]  # fmt: skip


@pytest.fixture
def four_models(tmp_path: Path) -> list[Path]:
    """Two packages and two files; two of them stored under the same name (they share
    the one inbox of the launch)."""
    out = tmp_path / "models"
    out.mkdir()
    files = []
    for i in range(2):
        (out / f"p{i}@").mkdir()
        files.append(_package(out / f"p{i}@", f"probe{i}.mlpackage", f"package {i}".encode()))
    for i in range(2):
        path = out / f"same.mlmodel@{i}"  # the batch names both "same.mlmodel"
        path.write_bytes(f"model file {i}".encode())
        files.append(path)
    return files


def _fetch(models: list[Path]) -> Any:
    by_sha = {_sha(p): p for p in models}
    return lambda batch: by_sha[batch.model.sha256]


def test_a_packed_batch_is_one_launch_with_every_model_pushed_once(
    ios_device: DeviceFactory, four_models: list[Path]
) -> None:
    device, fake, services = ios_device()
    batches = _probe_batches(four_models)
    assert batches[2].model.filename == batches[3].model.filename  # the premise
    results = execute_all(
        RunBatch.pack(batches), device, agent="a", fetch_model=_fetch(four_models)
    )
    assert services.launched == [(RUNNER, ["--batch", batches[0].batch_id], batches[0].batch_id)]
    assert [r.run_id for r in results] == [b.run_id for b in batches]
    for batch, result in zip(batches, results, strict=True):
        # OK means the fake runner found each model where the manifest says: a package
        # with its Manifest.json at the top of inbox/<name>, a file at inbox/<name>.
        assert result.outcome is BatchOutcome.OK, result.failure
        assert result.runner_result is not None
        assert result.runner_result.model_sha256 == batch.model.sha256
        assert result.runner_result.schema_version == 1  # what ingest stores, as before
        assert result.runner_result.batch_id == batch.batch_id
        assert [s.compute_units for s in result.runner_result.settings] == [
            ComputeUnits.ALL, ComputeUnits.CPU_ONLY,
        ]  # fmt: skip
        assert result.launch == batches[0].batch_id
    assert fake.container == {}  # inbox and outbox cleaned up
    assert not any(d.startswith("Documents/anefarm/inbox/") for d in services.dirs)


def test_a_package_pushed_to_its_own_name_lands_one_level_too_deep_as_on_a_device(
    ios_device: DeviceFactory, four_models: list[Path]
) -> None:
    """The fake's AFC push does what pymobiledevice3's does: a folder goes to
    <remote>/<its basename>. The driver pushes into the inbox folder because of it."""
    _, fake, services = ios_device()
    package = four_models[0]

    async def push() -> None:
        files = FakeContainer(services)
        await files.makedirs("Documents/anefarm/inbox/b")
        await files.push(str(package), f"Documents/anefarm/inbox/b/{package.name}")

    asyncio.run(push())
    assert (
        f"Documents/anefarm/inbox/b/{package.name}/{package.name}/Manifest.json" in fake.container
    )
    assert f"Documents/anefarm/inbox/b/{package.name}/Manifest.json" not in fake.container


def test_a_model_the_runner_crashes_on_is_split_off_and_the_others_are_measured(
    ios_device: DeviceFactory, four_models: list[Path]
) -> None:
    batches = _probe_batches(four_models)
    bad = batches[2]
    device, fake, services = ios_device(crash_models=[bad.model.sha256])
    results = execute_all(
        RunBatch.pack(batches), device, agent="a", fetch_model=_fetch(four_models)
    )
    by_run = {r.run_id: r for r in results}
    assert len(results) == 4 and set(by_run) == {b.run_id for b in batches}
    crashed = by_run[bad.run_id]
    assert crashed.outcome is BatchOutcome.INFRA_ERROR and crashed.failure is not None
    assert crashed.failure.kind == "runner_crash"
    assert any("EXC_BAD_ACCESS" in line for line in crashed.failure.diagnostics)
    for batch in batches:
        if batch is not bad:
            result = by_run[batch.run_id]
            assert result.outcome is BatchOutcome.OK, result.failure
            assert result.runner_result is not None
            assert result.runner_result.model_sha256 == batch.model.sha256
    # The pack, its halves, the bad half's halves: 1 + 2 log2(4) launches at most.
    assert 3 <= len(services.launched) <= 1 + 2 * math.ceil(math.log2(4))
    assert [r.counts_against_device for r in results if r.failure] == [True]
    assert fake.container == {}


class CountedIOSDevice(IOSDevice):
    """The iOS driver as bench/packed_probes.py counts a device: launches (on the fake
    device) and device-seconds (the behaviour model's, which measured for the fake runner)."""

    services: FakeDeveloperServices
    model: SimulatedDevice

    @property
    def runs(self) -> int:
        return len(self.services.launched)

    @property
    def busy_s(self) -> float:
        return self.model.busy_s


def _ios_farm(
    home: Path, redis_url: str, mux: FakeUsbmuxd, *, packing: bool
) -> tuple[PackedFarm, CountedIOSDevice]:
    farm = PackedFarm.start(home, redis_url, packing=packing, farm=XR_IOS16)
    [model] = build_farm(XR_IOS16, seed=7)  # the simulated farm's own device
    ident = model.identity
    fake = mux.attach(FakeIPhone(UDID, product_type=ident.product_type,
                                 os_version=ident.os_version, build=ident.os_build,
                                 apps=runner_app(), runner_model=model))  # fmt: skip
    services = FakeDeveloperServices(mux, fake)
    device = CountedIOSDevice(UDID, runner=RunnerConfig(bundle_id=RUNNER, expected_version="7"),
                              services=services, usbmux_address=mux.address,
                              pair_records_dir=home / "pair-records", simulated=True)  # fmt: skip
    device.services, device.model = services, model
    # PackedFarm drives any device with runs and busy_s (see CountedIOSDevice).
    farm.devices = cast(list[SimulatedDevice], [device])
    return farm, device


def test_twenty_signatures_take_at_most_three_launches_through_the_ios_driver(
    tmp_path: Path, redis_url: str, fake_mux: FakeUsbmuxd
) -> None:
    model = chain_model(tmp_path / "chain.mlpackage", 22, seed=3)
    ops = modelkit.inspect_model(model).ops
    assert len({modelkit.op_signature(op) for op in ops} - {None}) == 20  # the premise
    ios, device = _ios_farm(tmp_path / "ios", redis_url, fake_mux, packing=True)
    simulated = PackedFarm.start(tmp_path / "sim", redis_url, packing=False, farm=XR_IOS16)
    try:
        ios.submit(model, iterations=20)
        ios.run_all()
        single_op = [launch for launch in ios.probe_launches(repeat=1) if not launch.window]
        assert sum(launch.runs for launch in single_op) == 20  # every signature probed
        assert len(single_op) <= 3
        # Every probe went through the driver's runner launches, none around it.
        assert device.runs == len(ios.launches)
        simulated.submit(model, iterations=20)
        simulated.run_all()
        # The same placements as unpacked probes on the simulated device itself.
        assert placements(ios) == placements(simulated)
        assert len(placements(ios)) == 20
        assert all(o == "stored" for o in ios.outcomes)
    finally:
        ios.close()
        simulated.close()
