"""Fakes of the developer services at the Python boundary (AFC via house_arrest, DVT
process control, crash reports, os_trace, power assertions, DDI, tunnels), sharing state
with the fake device in ``fake_usbmuxd``. Their method signatures are compared with the
installed pymobiledevice3 classes in ``test_signatures.py``; the long ones are not restated
here but bound against the real method at each call (``mirror.py``).

The fake device plays a tiny runner: when launched it reads manifest.json from its
container and writes a RunnerResult marked ``simulated=True`` — a fake device is not a
real measurement, whatever driver carried it.
"""

from __future__ import annotations

import asyncio
import posixpath
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pymobiledevice3.dtx.exceptions import DTXNsError
from pymobiledevice3.dtx.ns_types import NSError
from pymobiledevice3.exceptions import (
    AfcFileNotFoundError,
    AppNotInstalledError,
    DeveloperDiskImageNotFoundError,
    PyMobileDevice3Exception,
)
from pymobiledevice3.lockdown_service_provider import LockdownServiceProvider
from pymobiledevice3.services.afc import AfcError
from pymobiledevice3.services.crash_reports import CrashReportsManager
from pymobiledevice3.services.dvt.instruments.process_control import ProcessControl
from pymobiledevice3.services.os_trace import SyslogEntry, SyslogLabel, SyslogLogLevel

from agents.devices.ios.services import Pmd3DeveloperServices
from tests.ios import fake_tunnel
from tests.ios.fake_container import FakeContainer
from tests.ios.fake_container import require_reachable as _require_reachable
from tests.ios.fake_runner import (
    CRASH_REPORT,
    JETSAM_REPORT,
    RUNNER_PID,
    crash_ips,
    fake_result,
    jetsam_ips,
    play,
)
from tests.ios.fake_runner import state as _state
from tests.ios.fake_usbmuxd import FakeIPhone, FakeUsbmuxd
from tests.ios.mirror import Call, mirrors

__all__ = ["CRASH_REPORT", "JETSAM_REPORT", "RUNNER_PID", "FakeContainer", "crash_ips",
           "fake_result", "jetsam_ips"]  # fmt: skip


def launch_refused(bundle_id: str, reason: str, why: str) -> DTXNsError:
    """What DVT ProcessControl raises when SpringBoard refuses a launch: the NSError of a
    real device (reason "Locked" or "Security"), as pymobiledevice3 decodes it."""
    underlying = NSError(7 if reason == "Locked" else 3, "FBSOpenApplicationErrorDomain",
                         {"BSErrorCodeDescription": reason,
                          "NSLocalizedDescription": f"Unable to launch {bundle_id} because {why}."})  # fmt: skip
    return DTXNsError(NSError(1, "FBSOpenApplicationServiceErrorDomain", {
        "NSLocalizedDescription": f'The request to open "{bundle_id}" failed.',
        "NSLocalizedFailureReason": "The request was denied by service delegate "
        f'(SBMainWorkspace) for reason: {reason} ("Unable to launch {bundle_id} because {why}").',
        "BSErrorCodeDescription": "RequestDenied",
        "NSUnderlyingError": underlying,
    }))  # fmt: skip


class FakeProcessControl:
    """DVT ProcessControl: launching the runner runs the fake device's behaviour."""

    def __init__(self, services: FakeDeveloperServices) -> None:
        self.services = services
        self.device = services.device

    @mirrors(ProcessControl.launch)
    async def launch(self, call: Call) -> int:
        bundle_id = call["bundle_id"]
        await _require_reachable(self.services)
        if bundle_id not in self.device.apps:
            raise AppNotInstalledError(bundle_id)
        if _state(self.device, "locked", False):
            why = "the device was not, or could not be, unlocked"
            raise launch_refused(bundle_id, "Locked", why)
        if not _state(self.device, "profile_trusted", True):
            why = ("it has an invalid code signature, inadequate entitlements or its profile "
                   "has not been explicitly trusted by the user")  # fmt: skip
            raise launch_refused(bundle_id, "Security", why)
        batch = (call["environment"] or {})["ANEFARM_BATCH_ID"]
        self.services.launched.append((bundle_id, list(call["arguments"] or []), batch))
        previous = self.services.runner_task
        if self.services.running and previous is not None and not previous.done():
            if not call["kill_existing"]:
                # SpringBoard brings the running app to the front: it started once, with
                # its own arguments, and does not read this launch's batch.
                return RUNNER_PID
            previous.cancel()  # kill_existing: the old instance is terminated first
        self.services.running = True
        self.services.runner_task = asyncio.get_running_loop().create_task(
            play(self.services, batch)
        )
        return RUNNER_PID

    async def kill(self, pid: int) -> Any:
        self.services.killed.append(pid)
        self.services.running = False

    async def process_identifier_for_bundle_identifier(self, app_bundle_identifier: str) -> int:
        await _require_reachable(self.services)
        return RUNNER_PID if self.services.running else 0


class FakeCrashReports:
    """CrashReportsManager over the fake device's reports, strict as the real one: ``ls``
    gives paths under "/" (AfcService.dirlist joins them to the root it lists, and ``ls``
    drops the root itself); ``pull`` of a missing entry raises AfcFileNotFoundError (AFC
    stat, before anything is copied); ``erase`` removes exactly the files pulled; reports
    are visible only after ``flush`` moved them (com.apple.crashreportmover)."""

    def __init__(self, device: FakeIPhone) -> None:
        self.device = device
        self.flushes = 0

    async def ls(self, path: str = "/", depth: int = 1) -> list[str]:
        root = path.strip("/")
        listed: set[str] = set()
        for key in self.device.crash_reports:
            if root and not key.startswith(root + "/"):
                continue
            parts = key.split("/")
            start = len(root.split("/")) if root else 0
            # Each directory on the way, down to depth levels (-1: all of them).
            stop = len(parts) if depth == -1 else min(len(parts), start + depth)
            listed.update("/" + "/".join(parts[: i + 1]) for i in range(start, stop))
        return sorted(listed)

    @mirrors(CrashReportsManager.pull)
    async def pull(self, call: Call) -> None:
        out, entry, match = call["out"], call["entry"], call["match"]
        key, reports = entry.strip("/"), self.device.crash_reports
        if key in reports:  # a file: into out, under its own name when out is a folder
            targets = {
                key: Path(out) / posixpath.basename(key) if Path(out).is_dir() else Path(out)
            }
        else:  # a folder: copied into a folder of its name ("/": into out itself)
            inside = [k for k in reports if not key or k.startswith(key + "/")]
            if key and not inside:
                raise AfcFileNotFoundError(
                    f"No such file on the device: {entry}", AfcError.OBJECT_NOT_FOUND, entry
                )
            base = Path(out) / posixpath.basename(key)
            targets = {k: base / k[len(key) :].lstrip("/") for k in inside}
        for name, target in targets.items():
            if match is not None and not re.search(match, posixpath.basename(name)):
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(reports[name])
            if call["erase"]:
                del reports[name]

    async def flush(self) -> None:
        self.flushes += 1
        pending = _state(self.device, "pending_crash_reports", {})
        for name in list(pending):
            self.device.crash_reports[name] = pending.pop(name)


class FakeDeveloperServices:
    """DeveloperServices for one fake device; records what the driver asked for."""

    def __init__(self, server: FakeUsbmuxd, device: FakeIPhone) -> None:
        self.server = server
        self.device = device
        self.running = False
        self.runner_task: asyncio.Task[None] | None = None
        self.launched: list[tuple[str, list[str], str]] = []
        self.killed: list[int] = []
        self.dirs: set[str] = set()  # folders made in the app container (fake_container)
        self.awake: list[str] = []
        self.mounts = 0
        self.entries: asyncio.Queue[SyslogEntry] | None = None
        self.logged: list[SyslogEntry] = []

    async def reachable(self) -> bool:
        """Whether the device is still there (in a worker process: usbmuxd's device list)."""
        return self.device.attached

    def log(self, message: str, subsystem: str, pid: int = RUNNER_PID) -> None:
        entry = SyslogEntry(pid=pid, timestamp=datetime.now(UTC), level=SyslogLogLevel.INFO,
                            image_name="AneFarmRunner", image_offset=0, filename="AneFarmRunner",
                            message=message, label=SyslogLabel(subsystem=subsystem, category="run"))  # fmt: skip
        self.logged.append(entry)
        if self.entries is not None:
            self.entries.put_nowait(entry)

    @asynccontextmanager
    async def container(
        self, provider: LockdownServiceProvider, bundle_id: str
    ) -> AsyncIterator[FakeContainer]:
        if bundle_id not in self.device.apps:
            raise AppNotInstalledError(bundle_id)
        yield FakeContainer(self)

    @asynccontextmanager
    async def process_control(
        self, provider: LockdownServiceProvider
    ) -> AsyncIterator[FakeProcessControl]:
        yield FakeProcessControl(self)

    @asynccontextmanager
    async def crash_reports(
        self, provider: LockdownServiceProvider
    ) -> AsyncIterator[FakeCrashReports]:
        yield FakeCrashReports(self.device)

    async def syslog(
        self, provider: LockdownServiceProvider, pid: int
    ) -> AsyncIterator[SyslogEntry]:
        self.entries = asyncio.Queue()
        # Another process's line, which the driver must filter out.
        self.log("SpringBoard noise", "com.apple.springboard", pid=1)
        while True:
            yield await self.entries.get()

    @asynccontextmanager
    async def keep_awake(
        self, provider: LockdownServiceProvider, reason: str, timeout_s: float
    ) -> AsyncIterator[None]:
        self.awake.append(reason)
        yield

    async def mount_developer_image(self, provider: LockdownServiceProvider) -> None:
        if not self.device.ddi_available:
            raise DeveloperDiskImageNotFoundError()
        if _state(self.device, "locked", False) and not _state(self.device, "ddi_mounted", True):
            # mobile_image_mounter refuses a mount on a locked device with "DeviceLocked"
            # (libimobiledevice's ideviceimagemounter: "Device is locked, can't mount");
            # pymobiledevice3 11.45 raises its answer inside a plain exception. Already
            # mounted, auto_mount stops at AlreadyMountedError before asking.
            raise PyMobileDevice3Exception(
                "The device failed to mount the Developer image: "
                "{'Error': 'DeviceLocked', 'Status': 'Failed'}"
            )
        if isinstance(self.device, FakeIPhone):  # a shared view has no mount state
            self.device.ddi_mounted = True
        self.mounts += 1

    @mirrors(Pmd3DeveloperServices.open_rsd)
    async def open_rsd(self, call: Call) -> LockdownServiceProvider | None:
        return await fake_tunnel.open_rsd(self, call["udid"], call["os_version"],
                                          call["usbmux_address"], call["pair_records_dir"])  # fmt: skip

    async def close_rsd(self, provider: LockdownServiceProvider) -> None:
        await fake_tunnel.close_rsd(self, provider)
