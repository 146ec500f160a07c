"""The runner's crash report after it died mid-batch, for the run's diagnostics."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from pymobiledevice3.lockdown_service_provider import LockdownServiceProvider

from agents.devices.ios.services import DeveloperServices

if TYPE_CHECKING:
    from agents.devices.ios.readiness import RunnerConfig
    from agents.devices.ios.runner import RunLog

POLL_S = 0.5


async def collect_crash_report(
    services: DeveloperServices,
    provider: LockdownServiceProvider,
    runner: RunnerConfig,
    log: RunLog,
) -> None:
    # ReportCrash writes the .ips a moment after the process dies.
    for _ in range(6):
        with contextlib.suppress(Exception):
            async with services.crash_reports(provider) as reports:
                names = sorted(n for n in await reports.ls("/", 1) if runner.process_name in n)
                if names:
                    with tempfile.TemporaryDirectory() as out:
                        await reports.pull(out, names[-1], progress_bar=False)
                        files = sorted(Path(out).rglob("*"))
                        texts = [f.read_text(errors="replace") for f in files if f.is_file()]
                        log.crash_report = "\n".join(texts)[:200_000] or None
                    return
        await asyncio.sleep(POLL_S)
