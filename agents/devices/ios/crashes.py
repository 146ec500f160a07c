"""The runner's crash report after it died mid-batch, for the run's diagnostics.

Only a report of *this* launch is attached, and it is taken off the device:

* :func:`report_names` lists the reports right before the launch; after the runner died,
  only names that were not there then are candidates (the directory keeps every report of
  every earlier crash until someone erases it);
* ``flush()`` first: ``com.apple.crashreportmover`` moves pending reports into the directory
  the crash-report AFC service shows (libimobiledevice's idevicecrashreport does the same);
* a candidate is the runner's own report (``<process>-<date>.ips``, or ``<process>.<kind>-…``
  for resource kills) or a memory kill, ``JetsamEvent-<date>.ips``, which lists every
  process on the device: it counts only if it lists the runner's pid as the one killed;
* what is attached is erased from the device (pulled again with ``erase=True``, which
  removes exactly the files it pulled), so the next crash is never confused with this one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import posixpath
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pymobiledevice3.lockdown_service_provider import LockdownServiceProvider

from agents.devices.ios.services import CrashReports, DeveloperServices

if TYPE_CHECKING:
    from agents.devices.ios.readiness import RunnerConfig
    from agents.devices.ios.runner import RunLog

POLL_S = 0.5
ATTEMPTS = 6  # ReportCrash writes the .ips a moment after the process dies: ~3 s in all
# One listing or one collection attempt (flush, ls, a few small pulls) takes well under a
# second over USB; a crash-report service that stops answering must not hold the batch.
CALL_TIMEOUT_S = 15.0
MAX_REPORT_CHARS = 200_000
JETSAM_PREFIX = "JetsamEvent-"


async def report_names(
    services: DeveloperServices, provider: LockdownServiceProvider
) -> frozenset[str] | None:
    """The crash reports on the device now (None when they cannot be listed: the report
    is then attached only if it names the runner's pid)."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(CALL_TIMEOUT_S), services.crash_reports(provider) as reports:
            await reports.flush()  # a report still pending now is an old one
            return frozenset(await reports.ls("/", 1))
    return None


async def collect_crash_report(
    services: DeveloperServices,
    provider: LockdownServiceProvider,
    runner: RunnerConfig,
    log: RunLog,
    *,
    pid: int,
    before: frozenset[str] | None,
) -> None:
    """Attach the report(s) of launch ``pid`` to ``log`` and erase them from the device.
    Never raises (but for cancellation): losing a crash report must not hide the crash."""
    for attempt in range(ATTEMPTS):
        if attempt:
            await asyncio.sleep(POLL_S)
        try:
            async with asyncio.timeout(CALL_TIMEOUT_S), services.crash_reports(provider) as reports:
                await reports.flush()
                names = await reports.ls("/", 1)
                candidates = _candidates(names, before, runner.process_name)
                texts = await _take_ours(reports, candidates, runner.process_name, pid, before)
        except Exception as error:  # noqa: BLE001 - diagnostics only
            log.note(f"reading crash reports failed: {type(error).__name__}: {error}")
            continue
        if texts:
            log.crash_report = "\n".join(texts.values())[:MAX_REPORT_CHARS]
            log.note(f"crash report(s) of pid {pid}: {', '.join(sorted(texts))}")
            return
    log.note(f"no crash report of pid {pid} appeared")


def _candidates(names: Iterable[str], before: frozenset[str] | None, process: str) -> list[str]:
    """New names that may be this launch's: the runner's own reports, then memory kills."""
    new = [name for name in names if before is None or name not in before]
    own = [n for n in new if posixpath.basename(n).startswith((f"{process}-", f"{process}."))]
    jetsam = [n for n in new if posixpath.basename(n).startswith(JETSAM_PREFIX)]
    return sorted(own) + sorted(jetsam)


async def _take_ours(
    reports: CrashReports,
    candidates: list[str],
    process: str,
    pid: int,
    before: frozenset[str] | None,
) -> dict[str, str]:
    ours: dict[str, str] = {}
    for name in candidates:
        text = await _pull_text(reports, name, erase=False)
        jetsam = posixpath.basename(name).startswith(JETSAM_PREFIX)
        if _belongs(text, process, pid, jetsam=jetsam, strict=before is None):
            ours[name] = text
    for name in ours:
        await _pull_text(reports, name, erase=True)  # erases exactly this one file
    return ours


async def _pull_text(reports: CrashReports, name: str, *, erase: bool) -> str:
    with tempfile.TemporaryDirectory(prefix="anefarm-crash-") as out:
        await reports.pull(out, name, erase=erase, progress_bar=False)
        files = sorted(p for p in Path(out).rglob("*") if p.is_file())
        return "\n".join(f.read_text(errors="replace") for f in files)


def _belongs(text: str, process: str, pid: int, *, jetsam: bool, strict: bool) -> bool:
    """Whether a report is of launch ``pid``. A JetsamEvent must list the runner with its
    pid as killed (it lists every process); the runner's own report must not name another pid (a
    late report of an earlier launch). ``strict``: no listing from before the launch, so
    only a report that names the pid counts."""
    docs = _json_docs(text)
    if jetsam:
        processes = [p for doc in docs for p in doc.get("processes", []) if isinstance(p, dict)]
        if not processes:
            return process in text and str(pid) in text  # unparsable: at least both named
        mine = [p for p in processes if p.get("pid") == pid and p.get("name", process) == process]
        if any("reason" in p for p in processes):
            # The killed processes carry the kill's "reason" (per-process-limit, …); the
            # runner merely listed alive in another process's kill is not this crash.
            return any("reason" in p for p in mine)
        return bool(mine)
    pids = {doc["pid"] for doc in docs if isinstance(doc.get("pid"), int)}
    if pids:
        return pid in pids
    return not strict


def _json_docs(text: str) -> list[dict[str, Any]]:
    """An .ips report: one JSON header line then a JSON body (older ones: one JSON object)."""
    with contextlib.suppress(ValueError):
        whole = json.loads(text)
        return [whole] if isinstance(whole, dict) else []
    docs = []
    for part in text.partition("\n")[::2]:
        with contextlib.suppress(ValueError):
            doc = json.loads(part)
            if isinstance(doc, dict):
                docs.append(doc)
    return docs
