"""The crash report attached to a crashed run is this launch's, JetsamEvent included, and is
erased from the device once pulled (issue 14, item 7); the fake crash-report service behaves
as pymobiledevice3's CrashReportsManager does against a real device."""

from __future__ import annotations

import asyncio
import inspect
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from pymobiledevice3.exceptions import AfcFileNotFoundError
from pymobiledevice3.services.crash_reports import CrashReportsManager

from agents.devices.ios.crashes import collect_crash_report
from agents.devices.ios.readiness import RunnerConfig
from agents.devices.ios.runner import RunLog
from orchestrator.errors import RunnerCrashed
from tests.ios.conftest import DeviceFactory
from tests.ios.fake_developer import (
    CRASH_REPORT,
    JETSAM_REPORT,
    RUNNER_PID,
    FakeCrashReports,
    crash_ips,
    jetsam_ips,
)
from tests.ios.fake_usbmuxd import FakeIPhone
from tests.ios.test_driver import manifest_for

# Alphabetically after this launch's report, and of the same process and even the same pid:
# only the listing taken before the launch tells it is old.
OLD_REPORT = "AneFarmRunner-2030-06-01-090000.ips"


def test_a_report_older_than_the_launch_is_not_attached(
    ios_device: DeviceFactory, model: Path
) -> None:
    old = crash_ips(FakeIPhone("x")).replace("EXC_BAD_ACCESS", "OLD-CRASH")
    device, fake, _ = ios_device(behaviour="crash", crash_reports={OLD_REPORT: old})
    with pytest.raises(RunnerCrashed):
        device.run(manifest_for(model), model, timeout_s=10)
    report = device.diagnostics().crash_report or ""
    assert "EXC_BAD_ACCESS" in report and "OLD-CRASH" not in report
    assert '"pid": 4242' in report
    # This launch's report was erased once pulled (and flushed first: it was pending);
    # the old one is not the driver's to erase.
    assert dict(fake.crash_reports) == {OLD_REPORT: old}
    assert dict(fake.pending_crash_reports) == {}


def test_a_memory_kill_attaches_the_jetsam_event_naming_the_runner(
    ios_device: DeviceFactory, model: Path
) -> None:
    device, fake, _ = ios_device(behaviour="oom")
    with pytest.raises(RunnerCrashed):
        device.run(manifest_for(model), model, timeout_s=10)
    report = device.diagnostics().crash_report or ""
    assert "per-process-limit" in report and f'"pid": {RUNNER_PID}' in report
    assert dict(fake.crash_reports) == {} and dict(fake.pending_crash_reports) == {}
    assert any(JETSAM_REPORT in line for line in device.diagnostics().log_lines)


def _collect(fake: FakeIPhone, before: frozenset[str] | None) -> RunLog:
    """collect_crash_report after a launch whose listing from before was ``before``."""

    class Services:
        @asynccontextmanager
        async def crash_reports(self, provider: object) -> AsyncIterator[FakeCrashReports]:
            yield FakeCrashReports(fake)

    log = RunLog()
    runner = RunnerConfig(process_name="AneFarmRunner")
    call = collect_crash_report(
        Services(),  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        runner,
        log,
        pid=RUNNER_PID,
        before=before,
    )
    asyncio.run(call)
    return log


def test_a_jetsam_event_of_another_process_is_not_attached(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("agents.devices.ios.crashes.POLL_S", 0.0)
    fake = FakeIPhone("x")
    # Another process was killed after the launch; the runner is listed, alive, as in
    # every JetsamEvent (they list all processes).
    other = jetsam_ips(fake, killed="Camera", pid=77)
    fake.pending_crash_reports[JETSAM_REPORT] = other
    log = _collect(fake, before=frozenset())
    assert log.crash_report is None
    assert dict(fake.crash_reports) == {JETSAM_REPORT: other}  # left alone, not erased


def test_without_a_listing_from_before_only_a_report_naming_the_pid_counts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("agents.devices.ios.crashes.POLL_S", 0.0)
    fake = FakeIPhone("x")
    fake.crash_reports[OLD_REPORT] = crash_ips(fake, pid=1111)
    fake.pending_crash_reports[CRASH_REPORT] = crash_ips(fake)
    log = _collect(fake, before=None)
    assert log.crash_report is not None and '"pid": 4242' in log.crash_report
    assert list(fake.crash_reports) == [OLD_REPORT]


def test_fake_crash_reports_behave_like_crash_reports_manager() -> None:
    fake = FakeIPhone("x", crash_reports={"Retired/a.ips": "a", "b.ips": "b"})
    fake.pending_crash_reports["c.ips"] = "c"
    reports = FakeCrashReports(fake)

    async def play(out: Path) -> None:
        # Paths under the root, as AfcService.dirlist joins them; depth 1 stops at folders.
        assert await reports.ls("/", 1) == ["/Retired", "/b.ips"]
        assert await reports.ls("/", -1) == ["/Retired", "/Retired/a.ips", "/b.ips"]
        await reports.flush()  # pending reports become visible only now
        assert await reports.ls("/", 1) == ["/Retired", "/b.ips", "/c.ips"]
        with pytest.raises(AfcFileNotFoundError):  # strict: AFC stats the entry first
            await reports.pull(str(out), "/gone.ips")
        await reports.pull(str(out), "/b.ips", erase=False, progress_bar=False)
        assert (out / "b.ips").read_text() == "b" and "b.ips" in fake.crash_reports
        await reports.pull(str(out), "/c.ips", erase=True, progress_bar=False)
        assert "c.ips" not in fake.crash_reports  # erase removes what was pulled, only that
        await reports.pull(str(out), "/Retired", progress_bar=False)
        assert (out / "Retired" / "a.ips").read_text() == "a"

    with tempfile.TemporaryDirectory() as out:
        asyncio.run(play(Path(out)))
    assert sorted(fake.crash_reports) == ["Retired/a.ips", "b.ips"]


def test_fake_flush_keeps_the_installed_signature() -> None:
    def shape(function: object) -> list[tuple[str, object]]:
        parameters = list(inspect.signature(inspect.unwrap(function)).parameters.values())  # type: ignore[arg-type]
        return [(p.name, p.default) for p in parameters[1:]]

    assert inspect.iscoroutinefunction(CrashReportsManager.flush)
    assert shape(FakeCrashReports.flush) == shape(CrashReportsManager.flush)


def test_a_crash_report_service_that_stops_answering_does_not_hold_the_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("agents.devices.ios.crashes.POLL_S", 0.0)
    monkeypatch.setattr("agents.devices.ios.crashes.CALL_TIMEOUT_S", 0.05)

    async def hang(self: FakeCrashReports) -> None:
        await asyncio.sleep(3600)

    monkeypatch.setattr(FakeCrashReports, "flush", hang)
    fake = FakeIPhone("x")
    fake.crash_reports[CRASH_REPORT] = crash_ips(fake)
    log = _collect(fake, before=frozenset())
    assert log.crash_report is None and CRASH_REPORT in fake.crash_reports
    assert any("TimeoutError" in line for line in log.all_lines())
