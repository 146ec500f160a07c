"""``IOSDevice``: a real USB iPhone or iPad behind the synchronous Device interface.

pymobiledevice3 is asyncio throughout and a connection belongs to the loop that opened
it, so the driver owns one event loop per process and runs every coroutine on it
(``run_until_complete``). The worker that holds an ``IOSDevice`` is a Celery worker with
concurrency 1 (one per device), so blocking calls are the right shape, and keeping one
loop lets connections and the iOS 17.4+ userspace tunnel survive between batches instead
of being rebuilt for each.

Two processes use the same ``IOSDevice``: the worker opens it and checks readiness from its
heartbeat thread, and the prefork pool child that Celery forks from it runs the batches.
An event loop must never cross a fork (the child would share the parent's epoll instance
and sockets, and each would steal the other's I/O events: the parent's heartbeat then
hangs for good), so a forked child starts from a loop and connections of its own. Calls
from the heartbeat thread and the main thread are serialised by a lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import Coroutine
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

from agents.devices.base import DeviceIdentity, Diagnostics, Readiness
from agents.devices.ios import readiness as ready
from agents.devices.ios.connection import DeviceLink
from agents.devices.ios.errors import translate, translating
from agents.devices.ios.readiness import HealthLimits, RunnerConfig
from agents.devices.ios.runner import RunLog, run_batch
from agents.devices.ios.services import (
    DeveloperServices,
    Pmd3DeveloperServices,
    load_services_factory,
)
from orchestrator import catalog
from orchestrator.errors import AnefarmError, DeviceError, DeviceGone
from orchestrator.protocol import RunnerManifest, RunnerResult
from orchestrator.settings import Settings

T = TypeVar("T")
REBOOT_TIMEOUT_S = 300.0  # an iPhone XS takes ~60 s to boot; old iPads and updates longer
# In a forked child: the parent's loops and connections, never closed nor collected here
# (closing a loop unregisters its fds from the epoll instance the parent still uses).
_INHERITED: list[object] = []


class IOSDevice:
    """One device over usbmuxd. ``simulated`` is False for hardware; it is True only when
    the usbmuxd behind it is a fake (tests, demos) or the developer services come from the
    test/bring-up hook (``ANEFARM_IOS_DEVELOPER_SERVICES``), so identity and results say
    SIMULATED. A runner result whose ``simulated`` disagrees is refused (ProtocolError)."""

    def __init__(
        self,
        udid: str,
        *,
        runner: RunnerConfig | None = None,
        limits: HealthLimits | None = None,
        services: DeveloperServices | None = None,
        usbmux_address: str | None = None,
        pair_records_dir: Path | None = None,
        reboot_timeout_s: float = REBOOT_TIMEOUT_S,
        simulated: bool = False,
    ) -> None:
        self.simulated = simulated
        self.runner = runner or RunnerConfig()
        self.limits = limits or HealthLimits()
        self.reboot_timeout_s = reboot_timeout_s
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._link = DeviceLink(
            udid,
            services or Pmd3DeveloperServices(),
            usbmux_address=usbmux_address,
            pair_records_dir=pair_records_dir,
        )
        self._log = RunLog()
        try:
            self._identity = self._call(self._read_identity())
        except BaseException:
            self.close()
            raise

    @classmethod
    def from_settings(cls, udid: str, settings: Settings, **overrides: Any) -> IOSDevice:
        runner = RunnerConfig(
            bundle_id=settings.ios_runner_bundle_id,
            expected_version=settings.ios_runner_version,
            ipa_path=settings.ios_runner_ipa,
        )
        limits = HealthLimits(
            min_battery_percent=settings.ios_min_battery_percent,
            max_temperature_c=settings.ios_max_temperature_c,
        )
        overrides.setdefault("runner", runner)
        overrides.setdefault("limits", limits)
        if settings.ios_developer_services and "services" not in overrides:
            # The test/bring-up hook: whatever plays the device's developer side is not
            # Apple's, so nothing measured through it may pass for a real measurement.
            factory = load_services_factory(settings.ios_developer_services)
            overrides["services"] = factory(udid)
            overrides.setdefault("simulated", True)
        return cls(udid, **overrides)

    def _own_loop(self) -> asyncio.AbstractEventLoop:
        """This process's loop: a fresh one, with fresh connections, after a fork."""
        if os.getpid() != self._pid:
            _INHERITED.append((self._loop, self._link))
            closed = self._loop.is_closed()
            self._pid, self._lock = os.getpid(), threading.Lock()  # the lock may be held
            self._loop = asyncio.new_event_loop()
            self._link = self._link.fresh()
            if closed:
                self._loop.close()
        return self._loop

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        loop = self._own_loop()
        with self._lock:
            if loop.is_closed():
                coroutine.close()
                raise DeviceError("this IOSDevice is closed", udid=self._link.udid)
            return loop.run_until_complete(coroutine)

    async def _read_identity(self) -> DeviceIdentity:
        facts = await self._link.facts()
        try:
            chip = catalog.device(facts.product_type).chip
        except AnefarmError:
            chip = "unknown"  # a device newer than the catalog still lists; dispatch skips it
        # Lockdown's facts are the identity's, but for the chip and the simulated flag.
        return DeviceIdentity(**asdict(facts), chip=chip, simulated=self.simulated)

    @property
    def identity(self) -> DeviceIdentity:
        return self._identity

    def readiness(self, *, deep: bool = True) -> Readiness:
        if self._own_loop().is_closed():
            raise DeviceError("this IOSDevice is closed", udid=self._link.udid)
        try:
            state = self._call(
                ready.check(
                    self._link, self._identity.os_version, self.runner, self.limits, deep=deep
                )
            )
        except DeviceGone as error:
            self._drop()
            return Readiness(reasons=[f"not reachable: {error.message}"])
        except Exception as error:  # noqa: BLE001 - a check never raises for a sick device
            self._drop()
            failure = translate(error, self._link.udid, "checking readiness")
            return Readiness(reasons=[failure.one_line()])
        if not state.ready:
            # Whatever a person does next (trust this Mac, enable Developer Mode, unlock)
            # is only seen by a new lockdown session: the cached one keeps its old answers.
            self._drop()
        return state

    def run(self, manifest: RunnerManifest, model_path: Path, timeout_s: float) -> RunnerResult:
        return self._launch(manifest, [model_path], timeout_s)

    def run_packed(
        self, manifest: RunnerManifest, model_paths: list[Path], timeout_s: float
    ) -> RunnerResult:
        """One runner launch for every model of a packed (version 2) manifest, ``model_paths``
        in its models' order: each pushed once, the runner launched once, one result with a
        ``models`` entry each. A runner that crashes raises ``RunnerCrashed`` like ``run``;
        agents/batch.py then splits the launch."""
        return self._launch(manifest, model_paths, timeout_s)

    def _launch(
        self, manifest: RunnerManifest, model_paths: list[Path], timeout_s: float
    ) -> RunnerResult:
        self._log = RunLog()
        state = self.readiness()
        ready.require_ready(state, self._identity.udid)
        try:
            return self._call(self._run(manifest, model_paths, timeout_s))
        except BaseException as error:
            # Whatever broke, the next call starts from fresh connections (and a fresh
            # tunnel); a library exception the driver did not expect still ends as a
            # device error, never as a crash of the worker.
            self._drop()
            if isinstance(error, Exception) and not isinstance(error, AnefarmError):
                raise translate(error, self._link.udid, "running a batch") from error
            raise

    def _drop(self) -> None:
        with contextlib.suppress(Exception):
            self._call(self._link.drop())

    async def _run(
        self, manifest: RunnerManifest, model_paths: list[Path], timeout_s: float
    ) -> RunnerResult:
        provider = await self._link.developer(self._identity.os_version)
        return await run_batch(
            self._link.services,
            provider,
            udid=self._identity.udid,
            runner=self.runner,
            manifest=manifest,
            model_paths=model_paths,
            timeout_s=timeout_s,
            log=self._log,
            simulated=self.simulated,
        )

    def diagnostics(self) -> Diagnostics:
        return Diagnostics(log_lines=self._log.all_lines(), crash_report=self._log.crash_report)

    def reboot(self) -> None:
        """Restart, wait for the device to leave and come back, then re-establish the
        Developer Disk Image and tunnel (they do not survive a reboot)."""
        self._call(self._reboot())

    async def _reboot(self) -> None:
        from pymobiledevice3.usbmux import wait_for_device_detach

        udid = self._identity.udid
        await self._link.restart()
        with translating(udid, "waiting for the device to restart"):
            left = await wait_for_device_detach(
                udid, timeout=60.0, usbmux_address=self._link.usbmux_address
            )
        if not left:
            # A restart that never took the device off the bus did not happen: counting
            # it as done would send the next batch to the same stuck state.
            raise DeviceError(
                f"{udid} did not restart: it stayed attached for 60s after the request",
                udid=udid,
                hint="restart it by hand (or unplug it); the coordinator quarantines it if it keeps failing",
            )
        deadline = time.monotonic() + self.reboot_timeout_s
        while True:
            try:
                # Back on the bus (usbmuxd lists it again), then lockdown and developer
                # services answer: only then is the restart over.
                await self._link.lockdown()
                await self._link.developer(self._identity.os_version)
                return
            except DeviceError as error:
                await self._link.drop()
                if time.monotonic() >= deadline:
                    raise DeviceGone(
                        f"{udid} did not come back within {self.reboot_timeout_s:.0f}s of a restart",
                        udid=udid,
                        hint="check the device screen; it may be waiting for a passcode after boot",
                    ) from error
                await asyncio.sleep(1.0)

    def close(self) -> None:
        loop = self._own_loop()
        with self._lock:
            if loop.is_closed():
                return
            try:
                loop.run_until_complete(self._link.drop())
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()
