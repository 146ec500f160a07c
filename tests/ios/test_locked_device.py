"""A device locked with a passcode, as a real lockdownd and developer services answer for it
(issue 14, item 9): lockdownd starts services as for an unlocked device and says so in
``PasswordProtected``; pairing, mounting the Developer Disk Image and launching the runner
are refused. The driver reports "locked" (LOCKED_REASON) wherever the refusal shows."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pymobiledevice3.lockdown import create_using_usbmux
from pymobiledevice3.services.diagnostics import DiagnosticsService
from pymobiledevice3.services.installation_proxy import InstallationProxyService

from agents.devices.ios.errors import LOCKED_REASON
from agents.devices.ios.pairing import pair_device
from orchestrator.errors import DeviceNotReady
from tests.ios.conftest import RUNNER, UDID, DeviceFactory, runner_app
from tests.ios.fake_usbmuxd import FakeIPhone, FakeUsbmuxd
from tests.ios.test_driver import manifest_for


def test_lockdownd_of_a_locked_paired_device_starts_services_and_says_it_is_locked(
    fake_mux: FakeUsbmuxd, tmp_path: Path
) -> None:
    fake = fake_mux.attach(FakeIPhone(UDID, locked=True, apps=runner_app()))

    async def talk() -> tuple[bool, object, object, object]:
        lockdown = await create_using_usbmux(
            serial=UDID, autopair=False, usbmux_address=fake_mux.address,
            pairing_records_cache_folder=tmp_path,
        )  # fmt: skip
        try:
            # Services a locked, paired device serves as any other: no PasswordProtected.
            async with InstallationProxyService(lockdown) as proxy:
                apps = await proxy.get_apps(bundle_identifiers=[RUNNER])
            async with DiagnosticsService(lockdown) as diagnostics:
                battery = await diagnostics.get_battery()
            assert battery is not None
            locked = await lockdown.get_value(key="PasswordProtected")
            fake.locked = False  # the person unlocks it: a fresh GetValue says so
            return (
                lockdown.paired,
                set(apps),
                battery["CurrentCapacity"],
                (
                    locked,
                    await lockdown.get_value(key="PasswordProtected"),
                ),
            )
        finally:
            await lockdown.close()

    paired, apps, battery, lock_states = asyncio.run(talk())
    assert paired and apps == {RUNNER} and battery == fake.battery_percent
    assert lock_states == (True, False)


def test_pairing_a_locked_device_says_to_unlock_it(fake_mux: FakeUsbmuxd, tmp_path: Path) -> None:
    # The Trust dialog only shows on an unlocked screen; lockdownd answers PasswordProtected.
    fake = fake_mux.attach(FakeIPhone(UDID, paired=False, locked=True))
    with pytest.raises(DeviceNotReady) as caught:
        pair_device(UDID, usbmux_address=fake_mux.address, timeout_s=0, pair_records_dir=tmp_path)
    assert caught.value.reasons == [LOCKED_REASON] and not fake.paired


def test_a_locked_device_after_boot_is_not_ready_as_locked(ios_device: DeviceFactory) -> None:
    # No image mounted since boot: mobile_image_mounter refuses the mount ("DeviceLocked").
    device, fake, services = ios_device(locked=True)
    assert device.readiness().reasons == [LOCKED_REASON]
    assert services.mounts == 0 and not fake.ddi_mounted


def test_a_device_locked_after_its_image_was_mounted_fails_the_run_as_locked(
    ios_device: DeviceFactory, model: Path
) -> None:
    device, fake, services = ios_device()
    assert device.readiness().ready and fake.ddi_mounted
    fake.locked = True  # Auto-Lock was not Never: SpringBoard refuses the launch
    with pytest.raises(DeviceNotReady) as caught:
        device.run(manifest_for(model), model, timeout_s=10)
    assert caught.value.reasons == [LOCKED_REASON]
    assert services.launched == [] and fake.container == {}  # nothing ran, inbox cleaned
    fake.locked = False
    assert device.run(manifest_for(model, "run2-a1"), model, timeout_s=10).batch_id == "run2-a1"


def test_readiness_sees_a_lock_after_the_image_was_mounted(ios_device: DeviceFactory) -> None:
    device, fake, _ = ios_device()
    assert device.readiness().ready
    fake.locked = True
    assert device.readiness().reasons == [LOCKED_REASON]
