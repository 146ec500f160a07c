"""One device's connections: lockdown over usbmux, and the developer-service provider
(lockdown below iOS 17, an RSD tunnel from 17.0) with its Developer Disk Image mounted.

Everything here is async and belongs to the event loop of the ``IOSDevice`` that owns
the link; errors are translated into anefarm device errors where they enter.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pymobiledevice3.lockdown import UsbmuxLockdownClient, create_using_usbmux
from pymobiledevice3.lockdown_service_provider import LockdownServiceProvider

from agents.devices.ios.errors import translating
from agents.devices.ios.services import RSD_MIN, DeveloperServices, os_tuple

AMFI_DOMAIN = "com.apple.security.mac.amfi"
DEVELOPER_MODE_MIN = (16, 0)  # Developer Mode exists from iOS 16


@dataclass(frozen=True)
class LockdownFacts:
    udid: str
    product_type: str
    os_version: str
    os_build: str
    name: str


@dataclass(frozen=True)
class Battery:
    percent: float | None
    charging: bool | None
    temperature_c: float | None


def battery_from_ioregistry(entry: dict[str, Any] | None) -> Battery:
    """Read IOPMPowerSource. ``Temperature`` is taken to be in 1/100 °C (3050 → 30.5 °C),
    which is what devices report in practice; values under 200 are read as whole °C so a
    device that reports plain degrees is not mistaken for a freezing one."""
    if not entry:
        return Battery(None, None, None)
    raw_t = entry.get("Temperature")
    temperature = None
    if isinstance(raw_t, int | float):
        temperature = float(raw_t) / 100.0 if abs(raw_t) >= 200 else float(raw_t)
    capacity = entry.get("CurrentCapacity")
    charging = entry.get("IsCharging")
    return Battery(
        percent=float(capacity) if isinstance(capacity, int | float) else None,
        charging=bool(charging) if charging is not None else None,
        temperature_c=temperature,
    )


class DeviceLink:
    """Lockdown and developer connections to one USB device (reopened after a drop)."""

    def __init__(
        self,
        udid: str,
        services: DeveloperServices,
        *,
        usbmux_address: str | None = None,
        pair_records_dir: Path | None = None,
    ) -> None:
        self.udid = udid
        self.services = services
        self.usbmux_address = usbmux_address
        self.pair_records_dir = pair_records_dir
        self._lockdown: UsbmuxLockdownClient | None = None
        self._developer: LockdownServiceProvider | None = None

    def fresh(self) -> DeviceLink:
        """The same device with no connections yet (for a forked process: the open ones
        belong to the parent's event loop)."""
        return DeviceLink(
            self.udid,
            self.services,
            usbmux_address=self.usbmux_address,
            pair_records_dir=self.pair_records_dir,
        )

    async def lockdown(self) -> UsbmuxLockdownClient:
        if self._lockdown is None:
            with translating(self.udid, "connecting to lockdownd"):
                # autopair=False: an agent never raises the Trust dialog; pairing is the
                # explicit provisioning step `anefarm devices pair`.
                self._lockdown = await create_using_usbmux(
                    serial=self.udid,
                    autopair=False,
                    # USB only: a phone just unplugged can still be visible over Wi-Fi,
                    # and a batch must never silently continue over the network.
                    connection_type="USB",
                    usbmux_address=self.usbmux_address,
                    pairing_records_cache_folder=self.pair_records_dir,
                )
        return self._lockdown

    async def facts(self) -> LockdownFacts:
        values = (await self.lockdown()).all_values
        return LockdownFacts(
            udid=str(values.get("UniqueDeviceID") or self.udid),
            product_type=str(values.get("ProductType", "")),
            os_version=str(values.get("ProductVersion", "")),
            os_build=str(values.get("BuildVersion", "")),
            name=str(values.get("DeviceName", "")),
        )

    async def paired(self) -> bool:
        return bool((await self.lockdown()).paired)

    async def locked(self) -> bool:
        """Whether the screen is locked now (read afresh: ``all_values`` is a snapshot
        taken when the session started)."""
        lockdown = await self.lockdown()
        with translating(self.udid, "reading the lock state"):
            return bool(await lockdown.get_value(key="PasswordProtected"))

    async def developer_mode(self, os_version: str) -> bool:
        if os_tuple(os_version) < DEVELOPER_MODE_MIN:
            return True
        lockdown = await self.lockdown()
        with translating(self.udid, "reading Developer Mode"):
            return bool(await lockdown.get_value(domain=AMFI_DOMAIN, key="DeveloperModeStatus"))

    async def battery(self) -> Battery:
        from pymobiledevice3.services.diagnostics import DiagnosticsService

        lockdown = await self.lockdown()
        with translating(self.udid, "reading the battery"):
            async with DiagnosticsService(lockdown) as diagnostics:
                return battery_from_ioregistry(await diagnostics.get_battery())

    async def app_version(self, bundle_id: str) -> str | None:
        """CFBundleVersion of an installed app, None when it is not installed."""
        from pymobiledevice3.services.installation_proxy import InstallationProxyService

        lockdown = await self.lockdown()
        with translating(self.udid, "listing apps"):
            async with InstallationProxyService(lockdown) as proxy:
                apps = await proxy.get_apps(bundle_identifiers=[bundle_id])
        app = apps.get(bundle_id)
        return None if app is None else str(app.get("CFBundleVersion", ""))

    async def install(self, ipa: Path) -> None:
        from pymobiledevice3.services.installation_proxy import InstallationProxyService

        lockdown = await self.lockdown()
        with translating(self.udid, f"installing {ipa.name}"):
            async with InstallationProxyService(lockdown) as proxy:
                # Install replaces an older build in place; the container (and any cached
                # compiled models in it) survives.
                await proxy.install_from_local(ipa)

    async def developer(self, os_version: str) -> LockdownServiceProvider:
        """The provider developer services run on, with the Developer Disk Image mounted.

        Opened once and reused until drop(): on iOS 17.4+ it carries this process's one
        userspace tunnel, and pymobiledevice3 refuses to open a second."""
        if self._developer is not None:
            return self._developer
        lockdown = await self.lockdown()
        with translating(self.udid, "opening the developer-service connection"):
            rsd = await self._open_rsd(os_version)
            provider: LockdownServiceProvider = lockdown if rsd is None else rsd
            try:
                # Mount after every (re)connect: the image is gone after each reboot.
                await self.services.mount_developer_image(provider)
            except BaseException:
                if rsd is not None:
                    # Not kept, so closed now: the next attempt would be refused a tunnel.
                    await self._close_rsd(rsd)
                raise
        self._developer = provider
        return provider

    async def _open_rsd(self, os_version: str) -> LockdownServiceProvider | None:
        """The iOS 17+ RSD, over the same usbmuxd and pair records as lockdown()."""
        if os_tuple(os_version) < RSD_MIN:
            return None
        return await self.services.open_rsd(
            self.udid,
            os_version,
            usbmux_address=self.usbmux_address,
            pair_records_dir=self.pair_records_dir,
        )

    async def _close_rsd(self, rsd: LockdownServiceProvider) -> None:
        # Closing a dead tunnel must not hide the error that made us drop it.
        with contextlib.suppress(Exception):
            await self.services.close_rsd(rsd)

    async def restart(self) -> None:
        from pymobiledevice3.services.diagnostics import DiagnosticsService

        lockdown = await self.lockdown()
        with translating(self.udid, "restarting"):
            # The device goes down when this connection closes, not when it acknowledges.
            async with DiagnosticsService(lockdown) as diagnostics:
                await diagnostics.restart()
        await self.drop()

    async def drop(self) -> None:
        """Forget every connection (after a failure); the next call reconnects."""
        developer, self._developer = self._developer, None
        lockdown, self._lockdown = self._lockdown, None
        if developer is not None and developer is not lockdown:
            await self._close_rsd(developer)  # releases this process's tunnel for a reopen
        if lockdown is not None:
            with contextlib.suppress(Exception):
                await lockdown.close()
