"""Fakes of the developer services at the Python boundary (AFC via house_arrest, DVT
process control, crash reports, os_trace, power assertions, DDI, tunnels), sharing state
with the fake device in ``fake_usbmuxd``. Their method signatures are compared with the
installed pymobiledevice3 classes in ``test_signatures.py``.

The fake device plays a tiny runner: when launched it reads manifest.json from its
container and writes a RunnerResult marked ``simulated=True`` — a fake device is not a
real measurement, whatever driver carried it.
"""

from __future__ import annotations

import asyncio
import json
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
    ConnectionTerminatedError,
    DeveloperDiskImageNotFoundError,
    PyMobileDevice3Exception,
)
from pymobiledevice3.lockdown_service_provider import LockdownServiceProvider
from pymobiledevice3.services.afc import AfcError
from pymobiledevice3.services.os_trace import SyslogEntry, SyslogLabel, SyslogLogLevel

from orchestrator.protocol import (
    DeviceFacts,
    LatencyStats,
    RunnerManifest,
    RunnerResult,
    SettingResult,
    ThermalState,
)
from orchestrator.stats import summarize
from tests.ios import fake_tunnel
from tests.ios.fake_usbmuxd import FakeIPhone, FakeUsbmuxd

RUNNER_PID = 4242
CRASH_REPORT = "AneFarmRunner-2026-01-01-120000.ips"
JETSAM_REPORT = "JetsamEvent-2026-01-01-120000.ips"


def _state(device: Any, name: str, default: Any) -> Any:
    """A FakeIPhone field the worker-side DeviceView (fake_shared.py) may not share."""
    return getattr(device, name, default)


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


async def _require_reachable(services: FakeDeveloperServices) -> None:
    """A device that is gone fails every service call, as pymobiledevice3 does over USB."""
    if not await services.reachable():
        raise ConnectionTerminatedError()


class FakeContainer:
    """AfcService (house_arrest) over the fake device's container (a mapping of paths)."""

    def __init__(self, services: FakeDeveloperServices) -> None:
        self.services = services
        self.device = services.device

    async def _check(self) -> None:
        await _require_reachable(self.services)

    async def makedirs(self, filename: str) -> Any:
        await self._check()

    async def push(
        self,
        local_path: str,
        remote_path: str,
        callback: Any = None,
        progress_bar: bool = True,
    ) -> Any:
        await self._check()
        source = Path(local_path)
        files = [source] if source.is_file() else [p for p in source.rglob("*") if p.is_file()]
        for path in files:
            relative = "" if path == source else "/" + path.relative_to(source).as_posix()
            self.device.container[remote_path + relative] = path.read_bytes()

    async def set_file_contents(self, filename: str, data: bytes, progress: Any = None) -> None:
        await self._check()
        self.device.container[filename] = data

    async def get_file_contents(self, filename: str) -> bytes:
        await self._check()
        if filename not in self.device.container:
            raise AfcFileNotFoundError(f"No such file on the device: {filename}", 8, filename)
        return self.device.container[filename]

    async def exists(self, filename: str) -> Any:
        await self._check()
        return any(p == filename or p.startswith(filename + "/") for p in self.device.container)

    async def rm(self, filename: str, match: Any = None, force: bool = False) -> list[str]:
        await self._check()
        gone = [p for p in self.device.container if p == filename or p.startswith(filename + "/")]
        for path in gone:
            del self.device.container[path]
        return gone

    async def close(self) -> None:
        return None


class FakeProcessControl:
    """DVT ProcessControl: launching the runner runs the fake device's behaviour."""

    def __init__(self, services: FakeDeveloperServices) -> None:
        self.services = services
        self.device = services.device

    async def launch(
        self,
        bundle_id: str,
        arguments: list[str] | None = None,
        kill_existing: bool = True,
        start_suspended: bool = False,
        environment: dict[str, Any] | None = None,
        extra_options: dict[str, Any] | None = None,
    ) -> int:
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
        batch = (environment or {})["ANEFARM_BATCH_ID"]
        self.services.launched.append((bundle_id, list(arguments or []), batch))
        self.services.running = True
        self.services.runner_task = asyncio.get_running_loop().create_task(self._play(batch))
        return RUNNER_PID

    async def _play(self, batch: str) -> None:
        device, services = self.device, self.services
        await asyncio.sleep(0.05)
        services.log(f"batch {batch}: manifest read", "com.anefarm.runner")
        if device.behaviour == "hang":
            return
        if device.behaviour in ("crash", "oom"):
            if device.behaviour == "crash":
                services.log("EXC_BAD_ACCESS in MLModel predict", "com.apple.espresso")
                name, report = CRASH_REPORT, crash_ips(device)
            else:  # killed by jetsam for memory: no crash of its own, a JetsamEvent
                name, report = JETSAM_REPORT, jetsam_ips(device)
            # ReportCrash writes it where only crashreportmover (flush) moves it from; the
            # worker-side view of a shared fake has no such place: visible at once there.
            reports = _state(device, "pending_crash_reports", device.crash_reports)
            reports[name] = report
            services.running = False
            return
        if device.behaviour == "detach":
            services.server.detach(device.udid)
            return
        manifest = RunnerManifest.model_validate_json(
            device.container[f"Documents/anefarm/inbox/{batch}/manifest.json"]
        )
        # Measuring takes time: 2 ms per prediction is quick, but not instantaneous.
        await asyncio.sleep(
            0.002 * (manifest.iterations + manifest.warmup) * len(manifest.compute_units)
        )
        out = f"Documents/anefarm/outbox/{batch}"
        if device.behaviour == "malformed":
            device.container[f"{out}/result.json"] = b'{"batch_id": "truncated'
        else:
            device.container[f"{out}/result.json"] = fake_result(device, manifest).encode()
        services.log("compiled model, espresso plan ready", "com.apple.espresso")
        device.container[f"{out}/done"] = b""
        services.running = False

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

    async def pull(
        self,
        out: str,
        entry: str = "/",
        erase: bool = False,
        match: str | None = None,
        progress_bar: bool = True,
    ) -> None:
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
            if erase:
                del reports[name]

    async def flush(self) -> None:
        self.flushes += 1
        pending = _state(self.device, "pending_crash_reports", {})
        for name in list(pending):
            self.device.crash_reports[name] = pending.pop(name)


def crash_ips(device: FakeIPhone, pid: int = RUNNER_PID) -> str:
    """An iOS 15+ .ips crash report: a JSON header line, then the JSON body."""
    header = {"app_name": "AneFarmRunner", "bug_type": "309", "name": "AneFarmRunner",
              "os_version": f"iPhone OS {device.os_version} ({device.build})",
              "timestamp": "2026-01-01 12:00:00.00 +0000"}  # fmt: skip
    body = {"pid": pid, "procName": "AneFarmRunner", "modelCode": device.product_type,
            "exception": {"type": "EXC_BAD_ACCESS", "signal": "SIGSEGV"},
            "termination": {"indicator": "EXC_BAD_ACCESS (SIGSEGV)"}}  # fmt: skip
    return json.dumps(header) + "\n" + json.dumps(body, indent=2)


def jetsam_ips(device: FakeIPhone, killed: str = "AneFarmRunner", pid: int = RUNNER_PID) -> str:
    """A JetsamEvent report (bug_type 298): every process, the killed one with its reason."""
    header = {"bug_type": "298", "timestamp": "2026-01-01 12:00:00.00 +0000",
              "os_version": f"iPhone OS {device.os_version} ({device.build})"}  # fmt: skip
    alive = [("SpringBoard", 34), ("AneFarmRunner", RUNNER_PID)]
    processes: list[dict[str, Any]] = [{"name": n, "pid": p, "rpages": 9000}
                                       for n, p in alive if (n, p) != (killed, pid)]  # fmt: skip
    processes.append({"name": killed, "pid": pid, "rpages": 180000, "reason": "per-process-limit"})
    body = {"product": device.product_type, "largestProcess": "AneFarmRunner",
            "processes": processes}  # fmt: skip
    return json.dumps(header) + "\n" + json.dumps(body, indent=2)


def fake_result(device: FakeIPhone, manifest: RunnerManifest) -> str:
    now = datetime.now(UTC)
    settings = []
    for index, units in enumerate(manifest.compute_units):
        samples = [1.0 + index + i * 0.01 for i in range(manifest.iterations)]
        # As the Swift harness labels them: the launch's first load, then loads of a model
        # the process already holds.
        provenance = "fresh_process" if index == 0 else "warm_cache"
        settings.append(SettingResult(compute_units=units, cold_load_ms=20.0, warm_load_ms=5.0,
                                      cold_load_provenance=provenance,
                                      first_prediction_ms=3.0, latencies_ms=samples,
                                      stats=LatencyStats(**summarize(samples))))  # fmt: skip
    facts = DeviceFacts(product_type=device.product_type, os_version=device.os_version,
                        os_build=device.build)  # fmt: skip
    result = RunnerResult(batch_id=manifest.batch_id, runner_version="fake-1", simulated=True,
                          device=facts, model_sha256=manifest.model.sha256,
                          thermal_before=ThermalState.NOMINAL, thermal_after=ThermalState.NOMINAL,
                          settings=settings, started_at=now, finished_at=now)  # fmt: skip
    return result.model_dump_json()


class FakeDeveloperServices:
    """DeveloperServices for one fake device; records what the driver asked for."""

    def __init__(self, server: FakeUsbmuxd, device: FakeIPhone) -> None:
        self.server = server
        self.device = device
        self.running = False
        self.runner_task: asyncio.Task[None] | None = None
        self.launched: list[tuple[str, list[str], str]] = []
        self.killed: list[int] = []
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

    async def open_rsd(
        self,
        udid: str,
        os_version: str,
        *,
        usbmux_address: str | None = None,
        pair_records_dir: Path | None = None,
    ) -> LockdownServiceProvider | None:
        return await fake_tunnel.open_rsd(self, udid, os_version, usbmux_address, pair_records_dir)

    async def close_rsd(self, provider: LockdownServiceProvider) -> None:
        await fake_tunnel.close_rsd(self, provider)
