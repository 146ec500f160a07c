"""One batch on a real device: push, launch, wait for the done marker, pull, validate, clean.

File protocol with the Swift runner (inside its app container)::

    Documents/anefarm/inbox/<batch>/<model file>     pushed first (every model of a packed launch)
    Documents/anefarm/inbox/<batch>/manifest.json    pushed last: "the inbox is complete"
    Documents/anefarm/outbox/<batch>/result.json     written by the runner
    Documents/anefarm/outbox/<batch>/done            written last: "result.json is complete"

A packed launch (manifest version 2, docs/bisection.md "Packed probes") is the same
protocol with every model of ``manifest.models`` in the one inbox: the runner
(``Harness.run`` → ``runPacked``) finds each by its ``filename`` there.

Models are pushed *into* the inbox folder under their own name. AFC's push (pymobiledevice3
``AfcService.push``) copies a local folder — an ``.mlpackage`` — to
``<remote>/<its basename>``: pushed to ``inbox/<name>`` it would land one level too deep
(``inbox/<name>/<name>/…``), where Core ML finds no package. A local path whose name is not
the one the manifest says is pushed through a symlink of that name.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError
from pymobiledevice3.lockdown_service_provider import LockdownServiceProvider
from pymobiledevice3.services.os_trace import SyslogEntry

from agents.devices.ios.crashes import collect_crash_report, report_names
from agents.devices.ios.errors import translating
from agents.devices.ios.readiness import RunnerConfig
from agents.devices.ios.services import ContainerFiles, DeveloperServices, ProcessLauncher
from orchestrator.errors import ProtocolError, RunnerCrashed, RunnerTimeout
from orchestrator.protocol import ManifestModel, RunnerManifest, RunnerResult

POLL_S = 0.5  # marker poll interval: AFC stat is ~1 ms over USB, batches take seconds
MAX_RESULT_BYTES = 64 * 1024 * 1024  # far above 4 settings × 10,000 samples + a plan
CORE_ML_SUBSYSTEMS = ("com.apple.espresso", "com.apple.coreml", "com.apple.ane")
MAX_LOG_LINES = 2000


def inbox(batch_id: str) -> str:
    return f"Documents/anefarm/inbox/{batch_id}"


def outbox(batch_id: str) -> str:
    return f"Documents/anefarm/outbox/{batch_id}"


@dataclass
class RunLog:
    """What the last run left behind for diagnosis."""

    lines: deque[str] = field(default_factory=lambda: deque(maxlen=MAX_LOG_LINES))
    core_ml: deque[str] = field(default_factory=lambda: deque(maxlen=MAX_LOG_LINES))
    crash_report: str | None = None

    def add(self, entry: SyslogEntry) -> None:
        subsystem = entry.label.subsystem if entry.label else ""
        category = entry.label.category if entry.label else ""
        line = f"{entry.timestamp:%H:%M:%S.%f} [{subsystem}/{category}] {entry.message}"
        # Core ML lines are kept apart so a chatty app cannot push them out of the window.
        (self.core_ml if subsystem.startswith(CORE_ML_SUBSYSTEMS) else self.lines).append(line)

    def note(self, text: str) -> None:
        """The driver's own account of the run, interleaved with the device's lines."""
        self.lines.append(f"{datetime.now(UTC):%H:%M:%S.%f} [anefarm/driver] {text}")

    def all_lines(self) -> list[str]:
        return [*self.lines, *self.core_ml]


async def run_batch(
    services: DeveloperServices,
    provider: LockdownServiceProvider,
    *,
    udid: str,
    runner: RunnerConfig,
    manifest: RunnerManifest,
    model_paths: list[Path],
    timeout_s: float,
    log: RunLog,
    simulated: bool = False,
) -> RunnerResult:
    """One runner launch: ``model_paths`` are the manifest's models in its order (one for
    a version 1 manifest, every model of a packed one), pushed once each."""
    batch = manifest.batch_id
    manifest = on_device_names(manifest)
    entries = manifest.all_models
    if len(entries) != len(model_paths):
        raise ValueError(f"{len(model_paths)} model files for {len(entries)} models in {batch}")
    with translating(udid, f"running batch {batch}"):
        async with (
            services.keep_awake(provider, f"anefarm batch {batch}", timeout_s + 60.0),
            services.container(provider, runner.bundle_id) as files,
        ):
            try:
                await files.makedirs(inbox(batch))
                for entry, path in zip(entries, model_paths, strict=True):
                    await _push_model(files, path, inbox(batch), entry.filename)
                if len(entries) > 1:
                    log.note(f"pushed {len(entries)} models for one launch of batch {batch}")
                await files.set_file_contents(
                    f"{inbox(batch)}/manifest.json", manifest.model_dump_json().encode()
                )
                async with services.process_control(provider) as control:
                    await _launch_and_wait(
                        services, provider, control, files, udid, runner, batch, timeout_s, log
                    )
                raw = await files.get_file_contents(f"{outbox(batch)}/result.json")
            finally:
                await _clean(files, batch)
    return _validate(raw, batch, udid, simulated)


def on_device_names(manifest: RunnerManifest) -> RunnerManifest:
    """The manifest with a file name per model that no other model of the launch has: the
    models share one inbox, and two probes may be stored under the same name. Results are
    matched by sha256, so a renamed model's result is still its run's."""
    if manifest.models is None:
        return manifest
    seen: set[str] = set()
    renamed: list[ManifestModel] = []
    for entry in manifest.models:
        name = entry.filename
        if name in seen or name == "manifest.json":
            name = f"{entry.sha256[:16]}-{name}"
        seen.add(name)
        renamed.append(entry.model_copy(update={"filename": name}))
    return manifest.model_copy(update={"model": renamed[0], "models": renamed})


async def _push_model(files: ContainerFiles, local: Path, folder: str, name: str) -> None:
    """``local`` (a file or an .mlpackage folder) as ``<folder>/<name>`` (module docstring)."""
    if local.name == name:
        await files.push(str(local), folder, progress_bar=False)
        return
    with tempfile.TemporaryDirectory(prefix="anefarm-push-") as scratch:
        alias = Path(scratch) / name
        alias.symlink_to(local.resolve(), target_is_directory=local.is_dir())
        await files.push(str(alias), folder, progress_bar=False)


async def _launch_and_wait(
    services: DeveloperServices,
    provider: LockdownServiceProvider,
    control: ProcessLauncher,
    files: ContainerFiles,
    udid: str,
    runner: RunnerConfig,
    batch: str,
    timeout_s: float,
    log: RunLog,
) -> None:
    loop = asyncio.get_running_loop()
    # The crash reports already on the device, right before the launch: a report that
    # appears after it is this launch's (crashes.py).
    reports_before = await report_names(services, provider)
    with translating(udid, f"launching {runner.bundle_id}"):
        pid = await control.launch(
            runner.bundle_id,
            arguments=["--batch", batch],
            kill_existing=True,  # a runner left over from a crashed agent would hold the ANE
            environment={"ANEFARM_BATCH_ID": batch},
        )
    log.note(f"launched {runner.bundle_id} as pid {pid} for batch {batch}")
    tracer = loop.create_task(_follow_log(services, provider, pid, log))
    done = f"{outbox(batch)}/done"
    deadline = loop.time() + timeout_s
    try:
        while not await files.exists(done):
            if loop.time() >= deadline:
                log.note(f"no done marker after {timeout_s:.1f}s; killing pid {pid}")
                with contextlib.suppress(Exception):
                    await control.kill(pid)
                raise RunnerTimeout(
                    f"no result from {udid} within {timeout_s:.0f}s for batch {batch}; runner killed",
                    udid=udid,
                    hint="the batch is retried on another device; raise the run timeout for big models",
                )
            running = await control.process_identifier_for_bundle_identifier(runner.bundle_id)
            if running == 0 and not await files.exists(done):
                log.note(f"pid {pid} exited without a done marker")
                await collect_crash_report(
                    services, provider, runner, log, pid=pid, before=reports_before
                )
                raise RunnerCrashed(
                    f"the runner on {udid} exited without finishing batch {batch}",
                    udid=udid,
                    diagnostics=log.all_lines()[-50:],
                    hint="see the crash report in the run's diagnostics; retried on another device",
                )
            # Never sleep past the deadline: a short timeout must be honoured.
            await asyncio.sleep(max(0.0, min(POLL_S, deadline - loop.time())))
    finally:
        tracer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await tracer


async def _follow_log(
    services: DeveloperServices, provider: LockdownServiceProvider, pid: int, log: RunLog
) -> None:
    """Collect the runner's os_trace lines; losing the log must never fail the run."""
    with contextlib.suppress(Exception):
        async for entry in services.syslog(provider, pid):
            if entry.pid == pid:
                log.add(entry)


async def _clean(files: ContainerFiles, batch: str) -> None:
    """Remove the batch's inbox and outbox; a device that is gone is cleaned next time."""
    for path in (inbox(batch), outbox(batch)):
        with contextlib.suppress(Exception):
            await files.rm(path, force=True)


def _validate(raw: bytes, batch: str, udid: str, simulated: bool) -> RunnerResult:
    if len(raw) > MAX_RESULT_BYTES:
        raise ProtocolError(f"result.json from {udid} is {len(raw)} bytes; refusing it")
    try:
        result = RunnerResult.model_validate_json(raw)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(root)"
        raise ProtocolError(
            f"result.json from {udid} for batch {batch} does not validate: {where}: {first['msg']}",
            hint="the runner and agent disagree on the protocol; rebuild the runner from this checkout",
        ) from error
    if result.batch_id != batch:
        raise ProtocolError(
            f"result.json from {udid} is for batch {result.batch_id}, expected {batch}",
            hint="a stale outbox; the batch is retried",
        )
    if result.simulated != simulated:
        # A real device must never hand back numbers labelled simulated, nor the reverse.
        raise ProtocolError(
            f"result.json from {udid} says simulated={result.simulated}, the device is "
            f"{'simulated' if simulated else 'real'}",
            hint="a test runner build is installed on a farm device; install the real runner",
        )
    return result
