"""``anefarm sweep report``: one night of a sweep, for people and for CI.

Read from what the night's analysis stored (``check_results``, ``alert_summaries``):
text, JSON, CSV (one row per check) and JUnit XML, written with junitparser:

- one ``testsuite`` per device class (``SIMULATED`` in its name when it is),
- one ``testcase`` per (series, check) — latency per compute-units setting —,
  ``classname`` ``<sweep>.<device class>``,
- ``failure`` for a REGRESSION, ``error`` for a run that FAILED or is MISSING,
  ``skipped`` for INSUFFICIENT_DATA; SAME, IMPROVEMENT and UNKNOWN pass (their message
  is in ``system-out``). Every message names the cause and the figures.

``--fail-on regression`` exits 3 when a check regressed tonight; ``--fail-on alert`` when
an alert summary is open (untriaged or acknowledged) and was raised or updated tonight.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.errors import NotFound
from orchestrator.store import models as db
from orchestrator.sweeps.definition import SweepDefinition

FAIL_ON = ("regression", "alert", "none")
FINDINGS_EXIT = 3  # as `anefarm lint`: something to act on (CI gates on it)
CSV_FIELDS = ("night", "device_class", "series", "compute_units", "simulated", "check",
              "status", "message")  # fmt: skip


@dataclass(frozen=True)
class CheckRow:
    night: str
    device_class: str
    series: str
    compute_units: str
    simulated: bool
    check: str
    status: str
    message: str
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def explained(self) -> str:
        """The figures and the cause: what differed from the baseline (attribution)."""
        cause = self.detail.get("attribution")
        return f"{self.message}; {cause}" if cause and self.status != "SAME" else self.message

    @property
    def case_name(self) -> str:
        units = f" [{self.compute_units}]" if self.compute_units != "-" else ""
        return f"{self.series} {self.check}{units}"


@dataclass
class NightReport:
    sweep: str
    night: str
    job_id: str
    analysis: str  # analysed | confirming | error | not analysed
    checks: list[CheckRow]
    alerts: list[dict[str, Any]]

    @property
    def regressions(self) -> list[CheckRow]:
        return [c for c in self.checks if c.status == "REGRESSION"]

    def open_alerts(self) -> list[dict[str, Any]]:
        return [a for a in self.alerts if a["status"] in ("untriaged", "acknowledged")]

    def fails(self, fail_on: str) -> bool:
        if fail_on == "regression":
            return bool(self.regressions)
        if fail_on == "alert":
            return bool(self.open_alerts())
        return False

    def to_json(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for check in self.checks:
            counts[check.status] = counts.get(check.status, 0) + 1
        return {
            "sweep": self.sweep, "night": self.night, "job": self.job_id,
            "analysis": self.analysis, "counts": counts, "alerts": self.alerts,
            "checks": [asdict(c) for c in self.checks],
        }  # fmt: skip


def nights_of(session: Session, sweep: db.Sweep) -> dict[date, UUID]:
    """The sweep's nights: logical date (in its timezone) → job id."""
    definition = SweepDefinition.model_validate(sweep.definition)
    rows = session.execute(
        select(db.Job.id, db.Job.scheduled_for)
        .where(db.Job.sweep_id == sweep.id, db.Job.scheduled_for.is_not(None))
        .order_by(db.Job.scheduled_for)
    ).all()
    return {definition.night_of(_aware(when)): job_id for job_id, when in rows if when}


def _aware(when: datetime) -> datetime:
    from datetime import UTC

    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def build(session: Session, sweep: db.Sweep, night: date | None) -> NightReport:
    nights = nights_of(session, sweep)
    if not nights:
        raise NotFound(f"sweep {sweep.name!r} has no night yet",
                       hint=f"`anefarm sweep run {sweep.name}` runs one now")  # fmt: skip
    if night is None:
        analysed = set(session.scalars(
            select(db.NightAnalysis.job_id).where(db.NightAnalysis.sweep_id == sweep.id)
        ))  # fmt: skip
        done = [d for d, j in nights.items() if j in analysed]
        night = max(done) if done else max(nights)
    job_id = nights.get(night)
    if job_id is None:
        latest = ", ".join(d.isoformat() for d in sorted(nights)[-5:])
        raise NotFound(f"sweep {sweep.name!r} has no night of {night.isoformat()}",
                       hint=f"its latest nights: {latest}")  # fmt: skip
    state = session.get(db.NightAnalysis, job_id)
    rows = session.scalars(
        select(db.CheckResult)
        .where(db.CheckResult.job_id == job_id)
        .order_by(db.CheckResult.device_class, db.CheckResult.series,
                  db.CheckResult.check, db.CheckResult.compute_units)
    )  # fmt: skip
    checks = [
        CheckRow(night.isoformat(), r.device_class, r.series, r.compute_units, r.simulated,
                 r.check, r.status, r.message, dict(r.detail or {}))
        for r in rows
    ]  # fmt: skip
    summaries = session.scalars(
        select(db.AlertSummary)
        .where(db.AlertSummary.sweep_id == sweep.id, db.AlertSummary.last_job_id == job_id)
        .order_by(db.AlertSummary.id)
    )
    alerts = [
        {"id": s.id, "status": s.status.value, "kind": s.kind, "cause": s.cause,
         "new": s.job_id == job_id, "nights": s.nights, "raised": s.raised,
         "simulated": s.simulated}
        for s in summaries
    ]  # fmt: skip
    return NightReport(sweep.name, night.isoformat(), str(job_id),
                       state.state if state else "not analysed", checks, alerts)  # fmt: skip


def to_csv(report: NightReport) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for check in report.checks:
        writer.writerow(asdict(check))
    return out.getvalue()


def write_junit(report: NightReport, path: Path) -> None:
    """The night as JUnit XML (junitparser), one suite per device class."""
    from junitparser import Error, Failure, JUnitXml, Skipped, TestCase, TestSuite

    xml = JUnitXml(name=f"anefarm sweep {report.sweep} {report.night}")
    by_class: dict[str, list[CheckRow]] = {}
    for check in report.checks:
        by_class.setdefault(check.device_class, []).append(check)
    for device_class, checks in sorted(by_class.items()):
        label = " SIMULATED" if any(c.simulated for c in checks) else ""
        suite = TestSuite(f"{report.sweep} {device_class}{label} {report.night}")
        for check in checks:
            case = TestCase(check.case_name, classname=f"{report.sweep}.{device_class}", time=0.0)
            text = check.explained
            if check.status == "REGRESSION":
                case.result = [Failure(text, "regression")]
            elif check.status in ("FAILED", "MISSING"):
                case.result = [Error(text, check.status.lower())]
            elif check.status == "INSUFFICIENT_DATA":
                case.result = [Skipped(text)]
            else:
                case.system_out = f"{check.status}: {text}"
            suite.add_testcase(case)
        suite.update_statistics()  # type: ignore[no-untyped-call]
        xml.add_testsuite(suite)
    xml.update_statistics()  # type: ignore[no-untyped-call]
    xml.write(str(path), pretty=True)


# The header's word for the night's analysis state (NightReport.analysis).
ANALYSIS_SHOWN = {
    "analysed": "analysed",
    "confirming": "a confirmation run is pending",
    "error": "its analysis failed",
    "not analysed": "not analysed yet",
}


def to_text(report: NightReport) -> str:
    state = ANALYSIS_SHOWN.get(report.analysis, report.analysis)
    lines = [f"sweep {report.sweep}, night {report.night} (job {report.job_id}): {state}"]
    counts = report.to_json()["counts"]
    lines.append("  " + (", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no checks"))
    # Too little history is every series' state for its first nights: one line, not one per
    # check (a new sweep of two models printed 76); --json and --junit list each.
    short = counts.get("INSUFFICIENT_DATA", 0)
    if short:
        lines.append(f"  {short} check{'s' if short != 1 else ''} with too little history"
                     " to compare yet (INSUFFICIENT_DATA; --json lists them)")  # fmt: skip
    for check in report.checks:
        if check.status not in ("SAME", "INSUFFICIENT_DATA"):
            sim = " SIMULATED" if check.simulated else ""
            lines.append(f"  {check.status:<17} {check.device_class}{sim} {check.case_name}:"
                         f" {check.explained}")  # fmt: skip
    for alert in report.alerts:
        nights = alert["nights"]
        new = "new" if alert["new"] else f"open {nights} night{'s' if nights != 1 else ''}"
        lines.append(f"  alert {alert['id']} [{alert['status']}, {new}] {alert['kind']}:"
                     f" {alert['cause']}")  # fmt: skip
    return "\n".join(lines)
