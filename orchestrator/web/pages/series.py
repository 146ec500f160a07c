"""``/series/{sweep}/{series}/{device_class}?units=all``: one series of a sweep over its
nights — the median latency per night as a line, the baseline's band (the analysis'
baseline ± its gate, from the night's latency check), dots coloured by the night's
status, markers where an alert was raised and where something changed (the model's
sha256, the OS build, the runner), and the verdict and placement timeline under it.

Simulated and real series never share a line (they never share a baseline): ``kind``
chooses, and defaults to the one that has points."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from orchestrator.alerts.report import nights_of
from orchestrator.errors import NotFound, UsageError
from orchestrator.store import models as db
from orchestrator.web.charts import Marker, Point, time_series
from orchestrator.web.deps import SessionDep
from orchestrator.web.pages.common import page
from orchestrator.web.pages.sweeps import find_sweep

router = APIRouter()
SETTINGS = ("all", "cpuAndNeuralEngine", "cpuAndGPU", "cpuOnly")


@dataclass
class Night:
    night: date
    job: uuid.UUID
    run: db.Run | None = None
    p50: float | None = None
    verdict: str | None = None
    ane_share: float | None = None
    status: str | None = None  # the latency check's
    baseline: float | None = None
    gate: float | None = None
    change: float | None = None
    message: str = ""  # the latency check's own words (with the analysis' attribution)
    changed: list[str] = field(default_factory=list)  # what differs from the night before
    alerts: list[tuple[int, str, str]] = field(default_factory=list)  # (id, status, message)

    @property
    def band(self) -> tuple[float, float] | None:
        if self.baseline is None or self.gate is None:
            return None
        return (self.baseline * (1 - self.gate), self.baseline * (1 + self.gate))


def series_nights(
    session: Session, sweep: db.Sweep, series: str, device_class: str, units: str, simulated: bool
) -> list[Night]:
    nights = [Night(d, j) for d, j in sorted(nights_of(session, sweep).items())]
    by_job = {n.job: n for n in nights}
    if not nights:
        return []
    ids = list(by_job)
    rows = session.execute(
        select(db.Run, db.Measurement.p50, db.Verdict.verdict, db.Verdict.ane_share)
        .outerjoin(db.Measurement, and_(db.Measurement.run_id == db.Run.id,
                                        db.Measurement.compute_units == units))
        .outerjoin(db.Verdict, db.Verdict.run_id == db.Run.id)
        .where(db.Run.job_id.in_(ids), db.Run.series == series,
               db.Run.device_class == device_class, db.Run.purpose == "user")
        .order_by(db.Run.created_at)
    ).all()  # fmt: skip
    for run, p50, verdict, share in rows:
        if bool(run.simulated) != simulated and run.simulated is not None:
            continue
        night = by_job[run.job_id]
        if p50 is not None or night.run is None:  # a later run (a confirmation) wins
            night.run, night.p50 = run, p50
            night.verdict, night.ane_share = (str(verdict) if verdict else None), share
    for check in session.scalars(
        select(db.CheckResult).where(
            db.CheckResult.sweep_id == sweep.id,
            db.CheckResult.series == series,
            db.CheckResult.device_class == device_class,
            db.CheckResult.compute_units == units,
            db.CheckResult.check == "latency",
            db.CheckResult.simulated == simulated,
        )
    ):
        checked = by_job.get(check.job_id)
        if checked is not None:
            detail = check.detail or {}
            checked.status = check.status
            checked.baseline = _number(detail.get("baseline"))
            checked.gate = _number(detail.get("gate"))
            checked.change = _number(detail.get("change"))
            checked.message = check.message
    for finding, summary in session.execute(
        select(db.AlertFinding, db.AlertSummary)
        .join(db.AlertSummary, db.AlertSummary.id == db.AlertFinding.summary_id)
        .where(db.AlertFinding.job_id.in_(ids), db.AlertFinding.series == series,
               db.AlertFinding.device_class == device_class,
               db.AlertFinding.simulated == simulated)
    ).all():  # fmt: skip
        if finding.compute_units in (units, "-") and finding.job_id in by_job:
            by_job[finding.job_id].alerts.append((summary.id, str(summary.status), finding.message))
    _changes(nights)
    return nights


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _changes(nights: list[Night]) -> None:
    """What differs from the previous night that ran: the "what changed" annotations."""
    before: db.Run | None = None
    for night in nights:
        run = night.run
        if run is None:
            continue
        if before is not None:
            for name, old, new in (
                ("model sha256", before.model_sha256[:12], run.model_sha256[:12]),
                ("OS build", before.os_build, run.os_build),
                ("runner", before.runner_version, run.runner_version),
                ("device", before.udid, run.udid),
            ):
                if old != new:
                    night.changed.append(f"{name} {old} → {new}")
        before = run


def chart(nights: list[Night], units: str) -> str:
    points = [
        Point(n.night.strftime("%m-%d"), n.p50, n.band, (n.status or "ok").lower()) for n in nights
    ]
    markers = [Marker(i, f"{n.night}: " + "; ".join(n.changed), "change")
               for i, n in enumerate(nights) if n.changed]  # fmt: skip
    markers += [Marker(i, f"{n.night}: alert {a[0]} ({a[1]}): {a[2]}", "alert")
                for i, n in enumerate(nights) for a in n.alerts]  # fmt: skip
    return time_series(points, markers, unit=f"p50 ms ({units})", title="median latency per night")


@router.get("/series/{sweep_name}/{series}/{device_class}", response_class=HTMLResponse)
def series_page(
    request: Request,
    sweep_name: str,
    series: str,
    device_class: str,
    session: SessionDep,
    units: str = "all",
    kind: str | None = None,
) -> HTMLResponse:
    if units not in SETTINGS:
        raise UsageError(f"unknown compute units {units!r}", hint="one of " + ", ".join(SETTINGS))
    sweep = find_sweep(session, sweep_name)
    simulated = kind != "real"
    nights = series_nights(session, sweep, series, device_class, units, simulated)
    if kind is None and not any(n.run for n in nights):  # only the other kind has points
        simulated = False
        nights = series_nights(session, sweep, series, device_class, units, simulated)
    if not any(n.run for n in nights):
        raise NotFound(f"sweep {sweep.name!r} has no series {series!r} on {device_class}",
                       hint=f"the sweep page (/sweeps/{sweep.name}) lists its series")  # fmt: skip
    return page(
        request, "series.html", title=f"{series} on {device_class}", sweep=sweep,
        series=series, device_class=device_class, units=units, settings=SETTINGS,
        simulated=simulated, nights=nights, chart=chart(nights, units),
    )  # fmt: skip
