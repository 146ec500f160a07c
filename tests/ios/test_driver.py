"""IOSDevice over the fake usbmuxd/lockdownd and the developer-service fakes."""

from __future__ import annotations

import hashlib
import os
import signal
from pathlib import Path

import pytest

from agents.devices.base import Device
from orchestrator.errors import (
    DeviceError,
    DeviceGone,
    DeviceNotReady,
    ProtocolError,
    RunnerCrashed,
    RunnerTimeout,
)
from orchestrator.protocol import ComputeUnits, ManifestModel, ModelFormat, RunnerManifest
from tests.ios.conftest import UDID, DeviceFactory
from tests.ios.fake_developer import RUNNER_PID


def manifest_for(model: Path, batch: str = "run1-a1") -> RunnerManifest:
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    return RunnerManifest(
        batch_id=batch,
        model=ManifestModel(filename=model.name, sha256=digest, format=ModelFormat.MLMODEL),
        compute_units=[ComputeUnits.ALL, ComputeUnits.CPU_ONLY],
        iterations=10,
        warmup=2,
        time_budget_s=60,
    )


def test_identity_comes_from_lockdown_and_the_catalog(ios_device: DeviceFactory) -> None:
    device, _, _ = ios_device(product_type="iPhone13,2", os_version="17.5.1", build="21F90")
    assert isinstance(device, Device)
    ident = device.identity
    assert (ident.udid, ident.product_type, ident.chip) == (UDID, "iPhone13,2", "A14")
    assert (ident.os_version, ident.os_build) == ("17.5.1", "21F90")
    assert ident.simulated  # the usbmuxd behind it is a fake: labelled SIMULATED


def test_ready_device_reports_battery_temperature_and_runner(ios_device: DeviceFactory) -> None:
    device, _, services = ios_device(battery_percent=55, charging=False, temperature_raw=3170)
    state = device.readiness()
    assert state.ready, state.reasons
    assert (state.battery_percent, state.charging, state.runner_version) == (55.0, False, "7")
    assert state.temperature_c == pytest.approx(31.7)
    assert services.mounts == 1  # the Developer Disk Image is mounted on the way


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ({"paired": False}, f"run `anefarm devices pair {UDID}`"),
        ({"locked": True}, "locked with a passcode"),
        ({"developer_mode": False}, "Settings → Privacy & Security → Developer Mode"),
        ({"ddi_available": False}, "Developer Disk Image is not mounted"),
        ({"apps": {}}, "is not installed: set ANEFARM_IOS_RUNNER_IPA"),
        ({"apps": {"org.anefarm.runner": {"CFBundleVersion": "6"}}}, "version 6, expected 7"),
        ({"battery_percent": 5, "charging": False}, "battery 5% and not charging"),
        ({"temperature_raw": 4550}, "45.5 °C is above the 40 °C limit"),
    ],
)
def test_not_ready_says_what_to_do(
    ios_device: DeviceFactory, model: Path, state: dict[str, object], expected: str
) -> None:
    device, fake, services = ios_device(**state)
    readiness = device.readiness()
    assert not readiness.ready
    assert any(expected in reason for reason in readiness.reasons), readiness.reasons
    with pytest.raises(DeviceNotReady) as caught:
        device.run(manifest_for(model), model, timeout_s=5)
    assert caught.value.infra and caught.value.reasons == readiness.reasons
    assert services.launched == [] and fake.container == {}  # nothing was attempted


def test_run_pushes_launches_pulls_validates_and_cleans(
    ios_device: DeviceFactory, model: Path
) -> None:
    device, fake, services = ios_device()
    result = device.run(manifest_for(model), model, timeout_s=10)
    assert result.batch_id == "run1-a1" and result.simulated is True  # a fake is never real
    assert [s.compute_units for s in result.settings] == [ComputeUnits.ALL, ComputeUnits.CPU_ONLY]
    assert services.launched == [("org.anefarm.runner", ["--batch", "run1-a1"], "run1-a1")]
    assert services.awake == ["anefarm batch run1-a1"]  # kept awake during the run
    assert fake.container == {}  # inbox and outbox cleaned up
    lines = device.diagnostics().log_lines
    assert any("com.apple.espresso" in line for line in lines)
    assert not any("SpringBoard" in line for line in lines)  # other pids filtered out


def test_a_simulated_result_from_a_device_taken_as_real_is_refused(
    ios_device: DeviceFactory, model: Path
) -> None:
    device, _, _ = ios_device(simulated=False)  # the fake runner always says simulated
    assert not device.identity.simulated
    with pytest.raises(ProtocolError, match="simulated=True"):
        device.run(manifest_for(model), model, timeout_s=10)


def test_runner_that_never_writes_the_marker_is_killed(
    ios_device: DeviceFactory, model: Path
) -> None:
    device, fake, services = ios_device(behaviour="hang")
    with pytest.raises(RunnerTimeout, match="within 1s"):
        device.run(manifest_for(model), model, timeout_s=1.0)
    assert services.killed == [RUNNER_PID]
    assert fake.container == {}


def test_runner_crash_carries_the_crash_report_and_log(
    ios_device: DeviceFactory, model: Path
) -> None:
    device, _, _ = ios_device(behaviour="crash")
    with pytest.raises(RunnerCrashed) as caught:
        device.run(manifest_for(model), model, timeout_s=10)
    assert caught.value.infra
    diagnostics = device.diagnostics()
    assert diagnostics.crash_report and "EXC_BAD_ACCESS" in diagnostics.crash_report
    assert any("EXC_BAD_ACCESS" in line for line in diagnostics.log_lines)


def test_malformed_result_is_a_protocol_error(ios_device: DeviceFactory, model: Path) -> None:
    device, fake, _ = ios_device(behaviour="malformed")
    with pytest.raises(ProtocolError, match="does not validate"):
        device.run(manifest_for(model), model, timeout_s=10)
    assert fake.container == {}


def test_detach_mid_run_is_device_gone_then_reattach_recovers(
    ios_device: DeviceFactory, model: Path, fake_mux: object
) -> None:
    device, fake, _ = ios_device(behaviour="detach")
    with pytest.raises(DeviceGone) as caught:
        device.run(manifest_for(model), model, timeout_s=10)
    assert caught.value.infra and caught.value.udid == UDID
    assert not device.readiness().ready  # unplugged: not reachable
    fake.behaviour = "ok"
    fake_mux.attach(fake)  # type: ignore[attr-defined]
    assert device.run(manifest_for(model, "run2-a1"), model, timeout_s=10).batch_id == "run2-a1"


def test_reboot_waits_for_the_device_and_remounts_the_image(ios_device: DeviceFactory) -> None:
    device, fake, services = ios_device()
    assert device.readiness().ready and services.mounts == 1
    device.reboot()
    assert fake.restarts == 1 and fake.attached
    assert services.mounts == 2  # re-established after the restart
    assert device.readiness().ready


def test_closed_device_refuses_work(ios_device: DeviceFactory, model: Path) -> None:
    device, _, _ = ios_device()
    device.close()
    with pytest.raises(DeviceError, match="closed"):
        device.run(manifest_for(model), model, timeout_s=1)
    device.close()  # closing twice is harmless


def test_a_forked_child_opens_its_own_connections(
    ios_device: DeviceFactory, model: Path, fake_mux: object
) -> None:
    # The agent's worker opens the device, then Celery forks the pool child that runs the
    # batches while the worker's heartbeat keeps checking readiness: sharing the parent's
    # event loop and sockets across that fork hangs the heartbeat for good.
    device, _, _ = ios_device()
    assert device.readiness().ready
    seen = fake_mux.requests  # type: ignore[attr-defined]
    sessions_before = seen.count("StartSession")
    pid = os.fork()
    if pid == 0:  # the child: only os._exit, whatever happens
        code = 1
        signal.alarm(30)  # a child that hangs (as it did without its own loop) must end
        try:
            ok = device.readiness().ready
            code = 0 if ok and device.run(manifest_for(model), model, timeout_s=10) else 3
        finally:
            os._exit(code)
    for _ in range(10):  # the parent keeps using its own connections meanwhile
        assert device.readiness().ready
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert seen.count("StartSession") == sessions_before + 1  # the child's own lockdown session
    assert device.readiness().ready
