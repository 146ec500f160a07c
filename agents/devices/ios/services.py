"""The developer-service boundary of the iOS driver: app container files, process control,
crash reports, os_trace, power assertions, Developer Disk Image and iOS 17 tunnels.

These services speak DTX (NSKeyedArchiver) or need a mounted image or a tunnel, none of
which can exist without a device. The driver talks to them only through the small
protocols below; :class:`Pmd3DeveloperServices` is the real implementation and
``tests/ios`` supplies fakes whose method signatures a test compares with the installed
pymobiledevice3 classes (so an upgrade that changes them fails the suite).
Lockdown values, pairing, battery and app installation are *not* behind this seam: they go
through the real pymobiledevice3 client (faked at the usbmuxd socket in tests).
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, Protocol, cast

from pymobiledevice3.lockdown_service_provider import LockdownServiceProvider
from pymobiledevice3.services.os_trace import SyslogEntry

# Re-exported: the driver and its tests read the boundaries from here too.
from agents.devices.ios.versions import RSD_MIN, USERSPACE_TUNNEL_MIN, os_tuple
from orchestrator.errors import ConfigError

__all__ = ["RSD_MIN", "USERSPACE_TUNNEL_MIN", "os_tuple"]


class ContainerFiles(Protocol):
    """The part of ``AfcService`` (via house_arrest) the driver uses, rooted at the app container."""

    async def makedirs(self, filename: str) -> Any: ...
    async def push(
        self, local_path: str, remote_path: str, callback: Any = None, progress_bar: bool = True
    ) -> Any: ...
    async def set_file_contents(self, filename: str, data: bytes, progress: Any = None) -> None: ...
    async def get_file_contents(self, filename: str) -> bytes: ...
    async def exists(self, filename: str) -> Any: ...
    async def rm(self, filename: str, match: Any = None, force: bool = False) -> list[str]: ...
    async def close(self) -> None: ...


class ProcessLauncher(Protocol):
    """The part of DVT ``ProcessControl`` the driver uses."""

    async def launch(
        self,
        bundle_id: str,
        arguments: list[str] | None = None,
        kill_existing: bool = True,
        start_suspended: bool = False,
        environment: dict[str, Any] | None = None,
        extra_options: dict[str, Any] | None = None,
    ) -> int: ...
    async def kill(self, pid: int) -> Any: ...
    async def process_identifier_for_bundle_identifier(self, app_bundle_identifier: str) -> int: ...


class CrashReports(Protocol):
    """The part of ``CrashReportsManager`` the driver uses."""

    async def flush(self) -> None: ...
    async def ls(self, path: str = "/", depth: int = 1) -> list[str]: ...
    async def pull(
        self,
        out: str,
        entry: str = "/",
        erase: bool = False,
        match: str | None = None,
        progress_bar: bool = True,
    ) -> None: ...


class DeveloperServices(Protocol):
    """Opens developer services for one device on the driver's event loop."""

    def container(
        self, provider: LockdownServiceProvider, bundle_id: str
    ) -> AbstractAsyncContextManager[ContainerFiles]: ...
    def process_control(
        self, provider: LockdownServiceProvider
    ) -> AbstractAsyncContextManager[ProcessLauncher]: ...
    def crash_reports(
        self, provider: LockdownServiceProvider
    ) -> AbstractAsyncContextManager[CrashReports]: ...
    def syslog(self, provider: LockdownServiceProvider, pid: int) -> AsyncIterator[SyslogEntry]: ...
    def keep_awake(
        self, provider: LockdownServiceProvider, reason: str, timeout_s: float
    ) -> AbstractAsyncContextManager[None]: ...
    async def mount_developer_image(self, provider: LockdownServiceProvider) -> None: ...
    async def open_rsd(
        self,
        udid: str,
        os_version: str,
        *,
        usbmux_address: str | None = None,
        pair_records_dir: Path | None = None,
    ) -> LockdownServiceProvider | None: ...
    async def close_rsd(self, provider: LockdownServiceProvider) -> None: ...


ServicesFactory = Callable[[str], DeveloperServices]


def load_services_factory(spec: str) -> ServicesFactory:
    """The factory named by ``ANEFARM_IOS_DEVELOPER_SERVICES`` ("package.module:function").

    A hook for tests and bring-up only: ``factory(udid)`` returns the DeveloperServices the
    driver uses for that device instead of :class:`Pmd3DeveloperServices` (the test suite
    points it at fakes so that agent worker processes can run batches on fake devices).
    """
    module_name, _, attribute = spec.partition(":")
    hint = 'ANEFARM_IOS_DEVELOPER_SERVICES is "package.module:function"; unset it on a real farm'
    if not module_name or not attribute:
        raise ConfigError(f"developer services hook {spec!r} is not module:function", hint=hint)
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise ConfigError(f"developer services hook {spec!r}: {error}", hint=hint) from error
    if not callable(factory):
        raise ConfigError(f"developer services hook {spec!r} is not callable", hint=hint)
    return cast(ServicesFactory, factory)


class Pmd3DeveloperServices:
    """The real developer services through pymobiledevice3 (needs a device)."""

    def __init__(self, *, tunneld_address: tuple[str, int] | None = None) -> None:
        self.tunneld_address = tunneld_address

    @asynccontextmanager
    async def container(
        self, provider: LockdownServiceProvider, bundle_id: str
    ) -> AsyncIterator[ContainerFiles]:
        from pymobiledevice3.services.house_arrest import HouseArrestService

        # The whole container (not VendDocuments) needs a development-signed runner
        # (get-task-allow), which is how the runner is built (ios-runner/README.md).
        service = await HouseArrestService.create(provider, bundle_id, documents_only=False)
        try:
            yield service
        finally:
            await service.close()

    @asynccontextmanager
    async def process_control(
        self, provider: LockdownServiceProvider
    ) -> AsyncIterator[ProcessLauncher]:
        from pymobiledevice3.services.dvt.instruments.dvt_provider import DvtProvider
        from pymobiledevice3.services.dvt.instruments.process_control import ProcessControl

        async with DvtProvider(provider) as dvt, ProcessControl(dvt) as control:
            yield control

    @asynccontextmanager
    async def crash_reports(self, provider: LockdownServiceProvider) -> AsyncIterator[CrashReports]:
        from pymobiledevice3.services.crash_reports import CrashReportsManager

        async with CrashReportsManager(provider) as manager:
            yield manager

    async def syslog(
        self, provider: LockdownServiceProvider, pid: int
    ) -> AsyncIterator[SyslogEntry]:
        from pymobiledevice3.services.os_trace import OsTraceService

        async with OsTraceService(provider) as trace:
            async for entry in trace.syslog(pid=pid):
                yield entry

    @asynccontextmanager
    async def keep_awake(
        self, provider: LockdownServiceProvider, reason: str, timeout_s: float
    ) -> AsyncIterator[None]:
        from pymobiledevice3.services.power_assertion import PowerAssertionService

        async with (
            PowerAssertionService(provider) as power,
            power.create_power_assertion("PreventUserIdleSystemSleep", reason, timeout_s),
        ):
            yield

    async def mount_developer_image(self, provider: LockdownServiceProvider) -> None:
        from agents.devices.ios import ddi

        await ddi.mount(provider)

    async def open_rsd(
        self,
        udid: str,
        os_version: str,
        *,
        usbmux_address: str | None = None,
        pair_records_dir: Path | None = None,
    ) -> LockdownServiceProvider | None:
        """An RSD provider on iOS 17+ (None below 17: lockdown serves developer services),
        over the usbmuxd and pair records the driver's lockdown client uses."""
        from agents.devices.ios import tunnel

        return await tunnel.open_rsd(
            udid,
            os_version,
            usbmux_address=usbmux_address,
            pair_records_dir=pair_records_dir,
            tunneld_address=self.tunneld_address,
        )

    async def close_rsd(self, provider: LockdownServiceProvider) -> None:
        from agents.devices.ios import tunnel

        await tunnel.close_rsd(provider)
