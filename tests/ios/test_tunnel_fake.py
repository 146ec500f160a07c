"""The fake iOS 17+ tunnel enforces pymobiledevice3's rules (one userspace tunnel per
process, inherited across a fork; no pairing on the spot; tunneld's answers), and the
driver keeps them: one tunnel opened, reused, closed on drop and on a failed mount."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypedDict

import pytest
from pymobiledevice3.exceptions import (
    NotPairedError,
    PairingDialogResponsePendingError,
    PyMobileDevice3Exception,
)

from agents.devices.ios import tunnel
from agents.devices.ios.errors import TUNNELD_REASON
from tests.ios import fake_tunnel
from tests.ios.conftest import UDID, DeviceFactory
from tests.ios.fake_developer import FakeDeveloperServices
from tests.ios.fake_tunnel import FakeRsd, active_tunnel, strict_create_using_usbmux
from tests.ios.fake_usbmuxd import FakeIPhone, FakeUsbmuxd
from tests.ios.test_driver import manifest_for


class _Identity(TypedDict):
    product_type: str
    os_version: str
    build: str


NEW: _Identity = {"product_type": "iPhone13,2", "os_version": "17.5.1", "build": "21F90"}


@pytest.fixture(autouse=True)
def no_tunnel_left_open() -> Iterator[None]:
    assert active_tunnel() is None
    yield
    left = active_tunnel()
    fake_tunnel._active_tunnel = None  # one leak fails one test, not every later one
    assert left is None, "a test left this process's userspace tunnel open"


@pytest.fixture
def services(fake_mux: FakeUsbmuxd) -> FakeDeveloperServices:
    return FakeDeveloperServices(fake_mux, fake_mux.attach(FakeIPhone(UDID, **NEW)))


def _open(services: FakeDeveloperServices, loop: asyncio.AbstractEventLoop) -> FakeRsd:
    rsd = loop.run_until_complete(
        services.open_rsd(UDID, "17.5.1", usbmux_address=services.server.address)
    )
    assert isinstance(rsd, FakeRsd)
    return rsd


def _in_child(body: Callable[[], int]) -> int:
    """Run ``body`` in a forked child; its exit code (the child only ever leaves by _exit)."""
    pid = os.fork()
    if pid == 0:
        code = 1
        signal.alarm(30)
        try:
            code = body()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_a_forked_child_inherits_the_open_tunnel_and_is_refused(
    services: FakeDeveloperServices,
) -> None:
    loop = asyncio.new_event_loop()
    rsd = _open(services, loop)

    def child() -> int:
        try:
            _open(services, asyncio.new_event_loop())
        except PyMobileDevice3Exception as error:
            return 0 if str(error).startswith(fake_tunnel.ALREADY_ACTIVE) else 3
        return 2  # opened: the fake hides the bug of issue 14 item 2

    try:
        assert _in_child(child) == 0
    finally:
        loop.run_until_complete(services.close_rsd(rsd))
        loop.close()


def test_a_tunnel_opened_only_in_the_child_works(services: FakeDeveloperServices) -> None:
    def child() -> int:
        loop = asyncio.new_event_loop()
        rsd = _open(services, loop)
        ok = active_tunnel() is rsd and rsd.product_version == "17.5.1"
        loop.run_until_complete(services.close_rsd(rsd))
        return 0 if ok and active_tunnel() is None else 3

    assert _in_child(child) == 0
    assert active_tunnel() is None  # the parent never had one


def test_one_tunnel_per_process_and_close_releases_it(services: FakeDeveloperServices) -> None:
    loop = asyncio.new_event_loop()
    try:
        rsd = _open(services, loop)
        with pytest.raises(PyMobileDevice3Exception, match="already active in this process"):
            _open(services, loop)
        loop.run_until_complete(services.close_rsd(rsd))
        loop.run_until_complete(services.close_rsd(_open(services, loop)))
    finally:
        loop.close()


def test_the_death_of_the_usb_transport_releases_the_tunnel(
    services: FakeDeveloperServices, fake_mux: FakeUsbmuxd
) -> None:
    loop = asyncio.new_event_loop()
    try:
        rsd = _open(services, loop)
        fake_mux.detach(UDID)

        async def released() -> bool:
            for _ in range(200):
                if active_tunnel() is None:
                    return True
                await asyncio.sleep(0.01)
            return False

        assert loop.run_until_complete(released())
        loop.run_until_complete(services.close_rsd(rsd))  # the driver's drop(): harmless
    finally:
        loop.close()


def test_the_tunnel_never_pairs_an_unpaired_device(fake_mux: FakeUsbmuxd) -> None:
    fake = fake_mux.attach(FakeIPhone(UDID, paired=False, **NEW))
    services = FakeDeveloperServices(fake_mux, fake)
    loop = asyncio.new_event_loop()
    try:
        with pytest.raises(NotPairedError):
            _open(services, loop)
    finally:
        loop.close()
    assert "Pair" not in fake_mux.requests and not fake.paired


@pytest.mark.parametrize("trust", ["accept", "pending"])
def test_asking_to_autopair_an_unpaired_device_raises(fake_mux: FakeUsbmuxd, trust: str) -> None:
    # A real device shows the Trust dialog and pymobiledevice3 waits for a tap for ever; the
    # fake says so at once instead of blocking (or, with "accept", silently pairing).
    fake = fake_mux.attach(FakeIPhone(UDID, paired=False, trust=trust, **NEW))
    with pytest.raises(PairingDialogResponsePendingError):
        asyncio.run(strict_create_using_usbmux(serial=UDID, usbmux_address=fake_mux.address))
    assert not fake.paired


def test_the_tunnel_goes_through_the_drivers_usbmuxd(services: FakeDeveloperServices) -> None:
    # Without the link's usbmuxd address the tunnel would look for the system's usbmuxd.
    async def scenario() -> None:
        with pytest.raises(PyMobileDevice3Exception):
            await services.open_rsd(UDID, "17.5.1")
        assert active_tunnel() is None  # a failed open releases the process's slot

    asyncio.run(scenario())


# -- the driver over the strict fake ----------------------------------------------------------


def test_the_driver_opens_one_tunnel_reuses_it_and_close_releases_it(
    ios_device: DeviceFactory, model: Path
) -> None:
    device, _, services = ios_device(**NEW)
    assert device.readiness().ready
    opened = active_tunnel()
    assert isinstance(opened, FakeRsd)
    assert device.readiness().ready and active_tunnel() is opened  # reused, not reopened
    assert device.run(manifest_for(model), model, timeout_s=10).batch_id == "run1-a1"
    assert active_tunnel() is opened and services.mounts == 1
    device.close()
    assert active_tunnel() is None


def test_a_failed_mount_closes_the_tunnel_it_opened(ios_device: DeviceFactory) -> None:
    device, fake, _ = ios_device(ddi_available=False, **NEW)
    for _ in range(2):  # the second check is not refused a tunnel the first one left open
        readiness = device.readiness()
        assert any("Developer Disk Image" in reason for reason in readiness.reasons), readiness
        assert active_tunnel() is None
    fake.ddi_available = True
    assert device.readiness().ready


def test_a_reboot_drops_the_tunnel_and_opens_a_new_one(ios_device: DeviceFactory) -> None:
    device, fake, services = ios_device(**NEW)
    assert device.readiness().ready
    before = active_tunnel()
    device.reboot()
    assert fake.restarts == 1 and services.mounts == 2
    assert isinstance(active_tunnel(), FakeRsd) and active_tunnel() is not before
    assert device.readiness().ready


def test_a_batch_runs_in_a_forked_child_only_if_the_parent_opened_no_tunnel(
    ios_device: DeviceFactory, model: Path
) -> None:
    device, _, _ = ios_device(**NEW)
    assert device.readiness(deep=False).ready  # the heartbeat's check: lockdown only
    assert active_tunnel() is None

    def runs() -> int:
        result = device.run(manifest_for(model), model, timeout_s=10)
        return 0 if result.batch_id == "run1-a1" else 3

    assert _in_child(runs) == 0

    assert device.readiness().ready  # a deep check opens the parent's tunnel ...

    def refused() -> int:
        reasons = device.readiness().reasons
        return 0 if any("already active in this process" in r for r in reasons) else 3

    assert _in_child(refused) == 0  # ... which a forked child inherits, and is refused
    device.close()


# -- tunneld (17.0–17.3) ----------------------------------------------------------------------

OLD = {"product_type": "iPhone13,2", "os_version": "17.2", "build": "21C62"}


def test_a_device_tunneld_serves_is_ready(ios_device: DeviceFactory) -> None:
    device, _, _ = ios_device(**OLD)
    assert device.readiness().ready
    assert active_tunnel() is None  # tunneld's tunnel is not this process's


@pytest.mark.parametrize(
    ("tunneld", "reason"),
    [
        ({"running": False}, TUNNELD_REASON),
        ({"stale": {UDID}}, tunnel.STALE_TUNNELD_REASON),
        ({"missing": {UDID}}, tunnel.NO_TUNNEL_REASON),
    ],
)
def test_tunneld_trouble_says_what_to_do(
    ios_device: DeviceFactory,
    fake_mux: FakeUsbmuxd,
    model: Path,
    tunneld: dict[str, object],
    reason: str,
) -> None:
    device, _, services = ios_device(**OLD)
    for name, value in tunneld.items():
        setattr(fake_tunnel.tunneld(fake_mux), name, value)
    assert device.readiness().reasons == [reason]
    with pytest.raises(Exception, match="tunneld"):
        device.run(manifest_for(model), model, timeout_s=5)
    assert services.launched == []
