"""The fakes' iOS 17+ tunnel (the part of FakeDeveloperServices that opens and closes it).

It holds the driver to pymobiledevice3's rules instead of hiding them:

- 17.4+, one userspace tunnel per process: ``_active_tunnel`` is a module global, as in
  ``pymobiledevice3.remote.userspace_tunnel``, so a forked child inherits its parent's open
  tunnel and is refused with the same exception; closing releases it, and so does the death
  of the USB transport (pymobiledevice3's transport watcher does the same).
- The tunnel's lockdown client comes from the driver's own ``tunnel.tunnel_lockdown``, over
  the fake usbmuxd, with pairing made strict: asking to autopair an unpaired device raises
  ``PairingDialogResponsePendingError`` (a real one shows the Trust dialog and waits for a
  tap for ever).
- 17.0–17.3: a fake tunneld per fake usbmuxd (running or not, a stale entry), answering as
  ``get_tunneld_device_by_udid`` does, behind the driver's own ``tunnel.from_tunneld``.

What open_rsd returns is a :class:`FakeRsd`: a provider the developer-service fakes take
(they ignore it, as they ignore the lockdown client below 17).
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pymobiledevice3.exceptions import (
    PairingDialogResponsePendingError,
    PyMobileDevice3Exception,
    TunneldConnectionError,
)
from pymobiledevice3.lockdown import UsbmuxLockdownClient, create_using_usbmux
from pymobiledevice3.lockdown_service_provider import LockdownServiceProvider

from agents.devices.ios.services import RSD_MIN, USERSPACE_TUNNEL_MIN, os_tuple

if TYPE_CHECKING:
    from tests.ios.fake_developer import FakeDeveloperServices

ALREADY_ACTIVE = (
    "A userspace tunnel is already active in this process; only one userspace tunnel per "
    "process is supported."
)

# This process's userspace tunnel (or _OPENING while one is being established).
_active_tunnel: object | None = None
_OPENING = object()


class FakeRsd(LockdownServiceProvider):
    """Stands for a RemoteServiceDiscoveryService: the device's values, and for a userspace
    tunnel the lockdown client it was started on (its stream dies with the USB transport).
    It leaves the service methods abstract (nothing here starts a service over it);
    pymobiledevice3 does not enforce that at runtime, mypy does: hence the ignores."""

    def __init__(
        self, udid: str, values: dict[str, Any], lockdown: UsbmuxLockdownClient | None = None
    ) -> None:
        super().__init__()
        self.udid = udid
        self.all_values = values
        self.product_type = values.get("ProductType")
        self.lockdown = lockdown
        self.closed = False
        self._watcher: asyncio.Task[None] | None = None

    @property
    def product_version(self) -> str:
        return str(self.all_values.get("ProductVersion", ""))

    @property
    def product_build_version(self) -> str | None:
        return self.all_values.get("BuildVersion")

    @property
    def ecid(self) -> int:
        return int(self.all_values.get("UniqueChipID", 0))

    def watch_transport(self) -> None:
        self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        # Nothing is ever read from the tunnel's lockdown stream but its end: usbmuxd closes
        # every stream of a device that is unplugged.
        reader = getattr(getattr(self.lockdown, "service", None), "reader", None)
        if reader is not None:
            with contextlib.suppress(Exception):
                await reader.read()
        await self.close()

    async def close(self) -> None:
        global _active_tunnel  # noqa: PLW0603 -- process-wide, as pymobiledevice3's
        if _active_tunnel is self:
            _active_tunnel = None
        if self.closed:
            return
        self.closed = True
        watcher, self._watcher = self._watcher, None
        if watcher is not None and watcher is not asyncio.current_task():
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
        if self.lockdown is not None:
            with contextlib.suppress(Exception):
                await self.lockdown.close()


async def strict_create_using_usbmux(*, autopair: bool = True, **options: Any) -> Any:
    """``create_using_usbmux`` against the fake usbmuxd, except that an autopair that would
    raise the Trust dialog fails at once instead of waiting for a tap that never comes."""
    lockdown = await create_using_usbmux(autopair=False, **options)
    if autopair and not lockdown.paired:
        await lockdown.close()
        raise PairingDialogResponsePendingError()
    return lockdown


@dataclass
class FakeTunneld:
    """The root tunneld daemon of one fake host (17.0–17.3 devices reach RSD only through it)."""

    running: bool = True
    stale: set[str] = field(default_factory=set)  # listed, but the tunnel no longer answers
    missing: set[str] = field(default_factory=set)  # attached, no tunnel (yet)
    address: str = "127.0.0.1:49151"


_TUNNELDS: weakref.WeakKeyDictionary[Any, FakeTunneld] = weakref.WeakKeyDictionary()
_WORKER_TUNNELD = FakeTunneld()  # a worker process has no fake usbmuxd object to key on


def tunneld(server: Any) -> FakeTunneld:
    """The fake tunneld next to this fake usbmuxd (one per test, as the fake usbmuxd is)."""
    if server is None:
        return _WORKER_TUNNELD
    return _TUNNELDS.setdefault(server, FakeTunneld())


def active_tunnel() -> object | None:
    return _active_tunnel


async def open_rsd(
    services: FakeDeveloperServices,
    udid: str,
    os_version: str,
    usbmux_address: str | None = None,
    pair_records_dir: Path | None = None,
) -> LockdownServiceProvider | None:
    version = os_tuple(os_version)
    if version < RSD_MIN:
        return None
    if version >= USERSPACE_TUNNEL_MIN:
        return await _open_userspace(udid, usbmux_address, pair_records_dir)
    return await _from_tunneld(services, udid)


async def _open_userspace(
    udid: str, usbmux_address: str | None, pair_records_dir: Path | None
) -> FakeRsd:
    global _active_tunnel  # noqa: PLW0603 -- process-wide, as pymobiledevice3's
    from agents.devices.ios import tunnel

    if _active_tunnel is not None:
        raise PyMobileDevice3Exception(ALREADY_ACTIVE)
    _active_tunnel = _OPENING  # pymobiledevice3 serialises opens under a lock
    try:
        lockdown = await tunnel.tunnel_lockdown(
            udid,
            usbmux_address=usbmux_address,
            pair_records_dir=pair_records_dir,
            connect=strict_create_using_usbmux,
        )
    except BaseException:
        _active_tunnel = None
        raise
    rsd = FakeRsd(udid, dict(lockdown.all_values), lockdown)  # type: ignore[abstract]  # see FakeRsd
    _active_tunnel = rsd
    rsd.watch_transport()
    return rsd


async def _from_tunneld(services: FakeDeveloperServices, udid: str) -> LockdownServiceProvider:
    from agents.devices.ios import tunnel

    state = tunneld(services.server)
    device = services.device

    async def lookup(serial: str) -> LockdownServiceProvider | None:
        # get_tunneld_device_by_udid's answers: TunneldConnectionError when nothing listens,
        # IndexError when the listed tunnel does not connect, None when none is listed.
        if not state.running:
            raise TunneldConnectionError()
        if serial in state.stale:
            raise IndexError("list index out of range")
        if serial in state.missing or not await services.reachable():
            return None
        values = {"UniqueDeviceID": serial, "ProductType": device.product_type,
                  "ProductVersion": device.os_version, "BuildVersion": device.build}  # fmt: skip
        return FakeRsd(serial, values)  # type: ignore[abstract]  # see FakeRsd

    return await tunnel.from_tunneld(udid, state.address, lookup)


async def close_rsd(services: FakeDeveloperServices, provider: LockdownServiceProvider) -> None:
    if isinstance(provider, FakeRsd):
        await provider.close()
