"""The iOS 17+ developer-service transport: an RSD provider over the userspace tunnel
(17.4+) or through the root tunneld daemon (17.0–17.3).

pymobiledevice3 allows one userspace tunnel per process (a process-global TCP stack, and a
module-global ``_active_tunnel`` that a forked child inherits), which is why each device
has its own worker process and why only the process that runs batches may open one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import cast

from pymobiledevice3.exceptions import (
    InvalidServiceError,
    NotPairedError,
    PyMobileDevice3Exception,
    TunneldConnectionError,
)
from pymobiledevice3.lockdown import UsbmuxLockdownClient, create_using_usbmux
from pymobiledevice3.lockdown_service_provider import LockdownServiceProvider
from pymobiledevice3.remote import tunnel_service, userspace_tunnel
from pymobiledevice3.remote.remote_service_discovery import RemoteServiceDiscoveryService
from pymobiledevice3.remote.userspace_tunnel import (
    UserspaceDialPlane,
    UserspaceRsdTunnel,
    UserspaceTun,
)
from pymobiledevice3.tunneld import api as tunneld_api

from agents.devices.ios.errors import TUNNELD_REASON
from agents.devices.ios.versions import RSD_MIN, USERSPACE_TUNNEL_MIN, os_tuple
from orchestrator.errors import DeviceNotReady

LockdownConnect = Callable[..., Awaitable[UsbmuxLockdownClient]]
TunneldLookup = Callable[[str], Awaitable[LockdownServiceProvider | None]]

STALE_TUNNELD_REASON = (
    "tunneld lists a tunnel for this device that no longer answers (left over from an "
    "unplug or a reboot): restart tunneld (`sudo pymobiledevice3 remote tunneld`)"
)
NO_TUNNEL_REASON = (
    "tunneld runs but has no tunnel for this device: wait a few seconds after plugging it "
    "in, then replug it or restart tunneld (`sudo pymobiledevice3 remote tunneld`)"
)
NO_PROXY_REASON = (
    "the device offers no CoreDeviceProxy service, which iOS 17.4+ has over USB: check its "
    "iOS version, or reach it through tunneld (`sudo pymobiledevice3 remote tunneld`)"
)

# The open userspace tunnels of this process, by id() of the RSD they serve (the RSD is
# kept alongside, so its id cannot be reused while the entry exists).
_TUNNELS: dict[int, tuple[LockdownServiceProvider, UserspaceRsdTunnel]] = {}


async def open_rsd(
    udid: str,
    os_version: str,
    *,
    usbmux_address: str | None = None,
    pair_records_dir: Path | None = None,
    tunneld_address: tuple[str, int] | None = None,
) -> LockdownServiceProvider | None:
    """An RSD provider on iOS 17+ (None below 17: lockdown serves developer services).

    17.4+: a userspace tunnel over the same usbmuxd and pair records as the driver's
    lockdown client, USB only, never pairing. 17.0–17.3: tunneld's tunnel."""
    version = os_tuple(os_version)
    if version < RSD_MIN:
        return None
    if version >= USERSPACE_TUNNEL_MIN:
        tunnel = DriverRsdTunnel(
            udid, usbmux_address=usbmux_address, pair_records_dir=pair_records_dir
        )
        rsd = await tunnel.aopen()
        _TUNNELS[id(rsd)] = (rsd, tunnel)
        return rsd
    address = tunneld_address or tunneld_api.TUNNELD_DEFAULT_ADDRESS

    async def lookup(serial: str) -> LockdownServiceProvider | None:
        # Listed off the event loop first: get_tunneld_device_by_udid asks tunneld on the
        # loop's thread, and a tunneld that is down or hung would stall the worker's loop.
        if serial not in await tunneld_api.get_tunneld_tunnels(address):
            return None
        return await tunneld_api.get_tunneld_device_by_udid(serial, address)

    return await from_tunneld(udid, f"{address[0]}:{address[1]}", lookup)


async def close_rsd(provider: LockdownServiceProvider) -> None:
    _, tunnel = _TUNNELS.pop(id(provider), (None, None))
    if tunnel is not None:
        await tunnel.aclose()  # idempotent: a dead transport may have torn it down already
    else:
        close = getattr(provider, "close", None)
        if close is not None:
            await close()


async def tunnel_lockdown(
    udid: str,
    *,
    usbmux_address: str | None,
    pair_records_dir: Path | None,
    connect: LockdownConnect | None = None,
) -> UsbmuxLockdownClient:
    """The lockdown client a userspace tunnel starts CoreDeviceProxy on.

    autopair=False: pairing would raise the Trust dialog and wait for a tap for ever, in a
    worker; pairing is the explicit `anefarm devices pair`. The driver's usbmuxd and pair
    records, as its own lockdown client uses; USB only, so an unplugged device that usbmuxd
    still sees over Wi-Fi is not reached. ``connect`` is ``create_using_usbmux`` unless a
    test fake stands in for it."""
    lockdown = await (connect or create_using_usbmux)(
        serial=udid,
        autopair=False,
        connection_type="USB",
        usbmux_address=usbmux_address,
        pairing_records_cache_folder=pair_records_dir,
    )
    if not lockdown.paired:
        # Without pairing lockdownd refuses CoreDeviceProxy with a less telling error.
        await lockdown.close()
        raise NotPairedError()
    return lockdown


class DriverRsdTunnel(UserspaceRsdTunnel):
    """pymobiledevice3's userspace tunnel, established on the driver's lockdown client.

    Why a subclass: ``UserspaceRsdTunnel`` builds its lockdown client inside a module
    function that no argument reaches (always the default usbmuxd and pair records, any
    connection type, and pairing on the spot when ``autopair`` is left at its default).
    Only the establishment step is replaced; ``aopen`` (its lifecycle lock), ``aclose`` and
    the transport watcher, which tears the tunnel down when the USB transport dies, are
    pymobiledevice3's own. The tunnel is published as pymobiledevice3's ``_active_tunnel``,
    so its one-tunnel-per-process guard holds in both directions: this tunnel refuses to
    open next to any other, and any other refuses to open next to this one.
    ``test_tunnel_real.py`` checks the private names this relies on still exist."""

    def __init__(
        self,
        udid: str,
        *,
        usbmux_address: str | None,
        pair_records_dir: Path | None,
        connect: LockdownConnect | None = None,
    ) -> None:
        super().__init__(serial=udid, autopair=False, remotepairing_fallback=False)
        self._usbmux_address = usbmux_address
        self._pair_records_dir = pair_records_dir
        self._connect = connect

    async def _aopen_locked(self) -> RemoteServiceDiscoveryService:
        # Runs under pymobiledevice3's lifecycle lock (taken by aopen).
        if userspace_tunnel._active_tunnel is not None:
            raise PyMobileDevice3Exception(
                "A userspace tunnel is already active in this process; only one userspace "
                "tunnel per process is supported."
            )
        udid = cast(str, self.serial)
        # Whatever was acquired is released in reverse order if a later step fails.
        resources = AsyncExitStack()
        # The flag makes the tunnel's create_tun_device() build the no-root userspace stack.
        tunnel_service.USE_USERSPACE_TUNNEL = True
        try:
            lockdown = await tunnel_lockdown(
                udid,
                usbmux_address=self._usbmux_address,
                pair_records_dir=self._pair_records_dir,
                connect=self._connect,
            )
            resources.push_async_callback(lockdown.close)
            try:
                proxy = await tunnel_service.CoreDeviceTunnelProxy.create(lockdown)
            except InvalidServiceError as error:
                raise DeviceNotReady(
                    f"{udid}: {NO_PROXY_REASON}", udid=udid, reasons=[NO_PROXY_REASON]
                ) from error
            resources.push_async_callback(proxy.close)
            established = await resources.enter_async_context(proxy.start_tcp_tunnel())
            tun = cast(UserspaceTun, established.client.tun)
            tun.set_peer(established.address)
            dial = await resources.enter_async_context(UserspaceDialPlane(tun, established.address))
            rsd = RemoteServiceDiscoveryService(
                (established.address, established.port),
                open_connection=dial.dial,
                auxiliary_metadata=established.auxiliary_metadata,
            )
            resources.push_async_callback(rsd.close)
            await rsd.connect()
        except BaseException:
            await resources.aclose()
            tunnel_service.USE_USERSPACE_TUNNEL = False
            raise
        self.tun, self.rsd, self._exit_stack = tun, rsd, resources
        userspace_tunnel._active_tunnel = self
        userspace_tunnel.USERSPACE_ACTIVE = True
        self._transport_watcher = asyncio.create_task(
            self._watch_transport_closed(established.client),
            name=f"anefarm-tunnel-watcher-{udid}",
        )
        return rsd


async def from_tunneld(udid: str, where: str, lookup: TunneldLookup) -> LockdownServiceProvider:
    """tunneld's RSD for the device, or DeviceNotReady saying what to do about tunneld.

    ``lookup`` is pymobiledevice3's ``get_tunneld_device_by_udid`` (a fake in tests)."""
    try:
        found = await lookup(udid)
    except TunneldConnectionError as error:
        raise DeviceNotReady(
            f"{udid}: tunneld does not answer at {where}: {TUNNELD_REASON}",
            udid=udid,
            reasons=[TUNNELD_REASON],
        ) from error
    except IndexError as error:
        # tunneld lists the device, yet none of its tunnels connects: pymobiledevice3 then
        # takes the first of no RSDs.
        raise DeviceNotReady(
            f"{udid}: {STALE_TUNNELD_REASON}", udid=udid, reasons=[STALE_TUNNELD_REASON]
        ) from error
    if found is None:
        raise DeviceNotReady(f"{udid}: {NO_TUNNEL_REASON}", udid=udid, reasons=[NO_TUNNEL_REASON])
    return found
