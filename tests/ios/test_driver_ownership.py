"""Issue 14 (items 3, 4, 9): who opens what, and the driver's state after a failure.

The heartbeat's readiness (the worker's parent process) stays at lockdown level; a device
that was not ready is looked at through a new lockdown session next time (so a pairing
made meanwhile is seen); any library exception drops the connections and ends as a device
error; a restart counts only once the device has left the bus and come back.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import DeviceError
from tests.ios.conftest import DeviceFactory
from tests.ios.test_driver import manifest_for


def test_a_pairing_made_after_a_not_paired_answer_is_seen(ios_device: DeviceFactory) -> None:
    device, fake, _ = ios_device(paired=False)
    assert any("devices pair" in r for r in device.readiness().reasons)
    fake.paired = True  # `anefarm devices pair` succeeded meanwhile
    assert device.readiness().ready, device.readiness().reasons


def test_the_heartbeat_check_opens_no_developer_connection(ios_device: DeviceFactory) -> None:
    device, _, services = ios_device()
    shallow = device.readiness(deep=False)
    assert shallow.ready and shallow.runner_version == "7"
    assert services.mounts == 0  # no tunnel, no disk image: the batch process owns those
    assert device.readiness().ready and services.mounts == 1


def test_the_heartbeat_check_still_sees_what_a_person_must_fix(ios_device: DeviceFactory) -> None:
    device, _, services = ios_device(developer_mode=False)
    assert any("Developer Mode" in r for r in device.readiness(deep=False).reasons)
    device, _, services = ios_device("00008020-000A11112222444F", apps={})
    reasons = device.readiness(deep=False).reasons
    assert any("not installed" in r for r in reasons) and services.mounts == 0


def test_an_unexpected_library_exception_is_a_device_error_and_drops_connections(
    ios_device: DeviceFactory, model: Path, fake_mux: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    device, _, services = ios_device()
    assert device.readiness().ready
    sessions = fake_mux.requests.count("StartSession")  # type: ignore[attr-defined]

    def broken(provider: object) -> object:
        raise KeyError("NSLocalizedDescription")  # what a DTX reply without a key raises

    monkeypatch.setattr(services, "process_control", broken)
    with pytest.raises(DeviceError, match="KeyError"):
        device.run(manifest_for(model), model, timeout_s=5)
    monkeypatch.undo()
    assert device.run(manifest_for(model, "run2-a1"), model, timeout_s=10).batch_id == "run2-a1"
    # The failed run's lockdown session was dropped: the next one is new.
    assert fake_mux.requests.count("StartSession") == sessions + 1  # type: ignore[attr-defined]


def test_a_restart_that_never_leaves_the_bus_is_not_counted_done(
    ios_device: DeviceFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pymobiledevice3.usbmux

    device, _, _ = ios_device()

    async def still_listed(serial: str, timeout: float | None = None, **_: object) -> bool:
        return False  # what wait_for_device_detach answers when the timeout elapses

    monkeypatch.setattr(pymobiledevice3.usbmux, "wait_for_device_detach", still_listed)
    with pytest.raises(DeviceError, match="did not restart"):
        device.reboot()
