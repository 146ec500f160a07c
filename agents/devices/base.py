"""The Device interface: what an agent worker needs from any device, real or SIMULATED.

Synchronous on purpose. Each device is driven by its own Celery worker process with
concurrency 1, and Celery tasks are synchronous; the iOS driver owns one asyncio event
loop inside its process (pymobiledevice3 connections belong to the loop that made them)
and hides it behind these blocking calls. A simulated device needs no loop at all.

Failures are raised from the ``orchestrator.errors`` family and are *infra* failures
(``DeviceGone``, ``DeviceNotReady``, ``RunnerCrashed``, ``RunnerTimeout``,
``ProtocolError`` for a malformed result). A model that fails to compile or load on the
device is not an exception: the runner reports it inside the ``RunnerResult``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from orchestrator.protocol import RunnerManifest, RunnerResult, ThermalState

# A device's identity is part of its heartbeat (livestate.DeviceStatus extends it), so it
# is declared beside the heartbeat, in the protocol layer both sides share.
from orchestrator.protocol.livestate import DeviceIdentity

__all__ = ["Device", "DeviceIdentity", "Diagnostics", "Readiness"]


@dataclass(frozen=True)
class Readiness:
    """Whether a device can take work now, and if not, reasons a person can act on."""

    reasons: list[str] = field(default_factory=list)
    paired: bool = True
    developer_mode: bool = True
    runner_version: str | None = None
    battery_percent: float | None = None
    charging: bool | None = None
    temperature_c: float | None = None
    thermal_state: ThermalState | None = None

    @property
    def ready(self) -> bool:
        return not self.reasons


@dataclass(frozen=True)
class Diagnostics:
    """What we can learn after a failure: runner log lines and its crash report."""

    log_lines: list[str] = field(default_factory=list)
    crash_report: str | None = None

    def as_lines(self, limit: int = 200) -> list[str]:
        lines = list(self.log_lines[-limit:])
        if self.crash_report:
            lines.append("crash report: " + self.crash_report[:4000])
        return lines


@runtime_checkable
class Device(Protocol):
    """One device the agent drives. Implementations: ``ios.IOSDevice``, ``simulated``."""

    @property
    def identity(self) -> DeviceIdentity: ...

    def readiness(self, *, deep: bool = True) -> Readiness:
        """Check pairing, developer mode, runner, battery, temperature. Never raises
        for a not-ready device: the reasons say why. ``deep=False`` (the heartbeat, in
        the process that does not run batches) stays at lockdown level: no tunnel, no
        disk-image mount, no install."""
        ...

    def run(self, manifest: RunnerManifest, model_path: Path, timeout_s: float) -> RunnerResult:
        """Run one batch: push model and manifest, launch the runner, wait at most
        ``timeout_s``, pull and validate the result."""
        ...

    def diagnostics(self) -> Diagnostics:
        """Log lines and crash report of the last run (after a failure)."""
        ...

    def reboot(self) -> None:
        """Restart the device and wait until it is back (infra recovery)."""
        ...

    def close(self) -> None:
        """Release connections; the device object is not used afterwards."""
        ...
