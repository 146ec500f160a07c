"""A sweep's history: one typed point per (night, series, device class, compute units,
simulated), whether it ran or not.

A point that ran carries tonight's conditions (model sha256, OS version and build, runner
version, udid) beside its median and verdict; its raw samples stay with its run
(``run_id``: `anefarm report`, the ``measurements`` row). A point that did not run is
``missing`` with its stored reason (``sweep_missing``), or ``failed`` with its run's
error: history shows a hole with a cause, never silence. Simulated and real points are
different series (``simulated`` is part of the key) and never mix.

``points`` is what the CLI (`sweep history`), the report's last-night column and the
regression checks (issue 18) read.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from orchestrator import catalog
from orchestrator.protocol import ABSENT_FROM_FARM
from orchestrator.store import models as db

Status = Literal["ok", "failed", "missing", "pending"]
FINAL_FAILED = (db.RunStatus.FAILED, db.RunStatus.CANCELLED)
UNFINISHED = (db.RunStatus.WAITING, db.RunStatus.QUEUED, db.RunStatus.RUNNING)


class Point(BaseModel):
    """One series on one night."""

    model_config = ConfigDict(frozen=True)

    night: date  # the logical date of scheduled_for in the sweep's timezone
    scheduled_for: datetime
    job_id: UUID
    late: bool
    # the series key
    series: str
    device_class: str | None  # None: a missing record that concerns every class
    compute_units: str | None
    simulated: bool | None  # None: never ran, so neither
    # what was measured
    status: Status
    reason: str | None = None  # why failed or missing (missing: its kind first)
    run_id: UUID | None = None
    median_ms: float | None = None
    samples: int | None = None  # how many timed samples the run kept (see run_id)
    verdict: str | None = None
    ane_share: float | None = None
    # tonight's conditions
    chip: str | None = None
    model_sha256: str | None = None
    os_version: str | None = None
    os_build: str | None = None
    runner_version: str | None = None
    udid: str | None = None

    def key(self) -> tuple[str, str | None, str | None, bool | None]:
        return (self.series, self.device_class, self.compute_units, self.simulated)


FIELDS = list(Point.model_fields)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _units(spec: dict[str, Any]) -> list[str]:
    return [str(u) for u in spec.get("compute_units", [])] or [None]  # type: ignore[list-item]


def points(
    session: Session,
    sweep: db.Sweep,
    *,
    series: str | None = None,
    device_class: str | None = None,
    since: date | None = None,
    simulated: bool | None = None,
    jobs: Sequence[UUID] | None = None,
) -> list[Point]:
    """The sweep's points, oldest night first, then series, class, compute units."""
    zone = zoneinfo.ZoneInfo(sweep.timezone)
    query = select(db.Job).where(db.Job.sweep_id == sweep.id, db.Job.scheduled_for.is_not(None))
    if jobs is not None:
        query = query.where(db.Job.id.in_(list(jobs)))
    nights = {}
    for job in session.scalars(query.order_by(db.Job.scheduled_for)):
        assert job.scheduled_for is not None
        night = _aware(job.scheduled_for).astimezone(zone).date()
        if since is None or night >= since:
            nights[job.id] = (job, night)
    if not nights:
        return []
    key = Filter(series, device_class)
    out = [*_ran(session, nights, key), *_missing(session, nights, key)]
    if simulated is not None:
        out = [p for p in out if p.simulated is simulated]
    out.sort(key=lambda p: (p.scheduled_for, p.series, p.device_class or "",
                            p.compute_units or "", bool(p.simulated)))  # fmt: skip
    return out


@dataclass(frozen=True)
class Filter:
    series: str | None
    device_class: str | None

    def on(self, query: Select[Any], table: Any) -> Select[Any]:
        """Narrowed in SQL: a year of a big sweep is far more than one series wants."""
        if self.series is not None:
            query = query.where(table.series == self.series)
        if self.device_class is not None:
            query = query.where(table.device_class == self.device_class)
        return query


def _ran(session: Session, nights: dict[UUID, tuple[db.Job, date]], key: Filter) -> Iterable[Point]:
    # Joined on the runs of the nights, never an IN list of run ids (a long history has
    # more than SQLite's bound parameters); only the columns a point needs (no samples).
    mine = key.on(
        select(db.Run.id).where(
            db.Run.job_id.in_(list(nights)), db.Run.series.is_not(None), db.Run.purpose == "user"
        ),
        db.Run,
    ).subquery()
    runs = list(session.scalars(select(db.Run).where(db.Run.id.in_(select(mine.c.id)))))
    measured: dict[UUID, dict[str, Any]] = {}
    for m in session.execute(
        select(db.Measurement.run_id, db.Measurement.compute_units, db.Measurement.p50,
               db.Measurement.count, db.Measurement.error_kind, db.Measurement.error_message)
        .join(mine, mine.c.id == db.Measurement.run_id)
    ):  # fmt: skip
        measured.setdefault(m.run_id, {})[m.compute_units] = m
    verdicts = {
        v.run_id: v
        for v in session.execute(
            select(db.Verdict.run_id, db.Verdict.verdict, db.Verdict.ane_share).join(
                mine, mine.c.id == db.Verdict.run_id
            )
        )
    }
    for run in runs:
        job, night = nights[run.job_id]
        verdict = verdicts.get(run.id)
        chip = (
            catalog.DEVICES[run.device_class].chip if run.device_class in catalog.DEVICES else None
        )
        base: dict[str, Any] = {
            "night": night,
            "scheduled_for": _aware(job.scheduled_for or job.created_at),
            "job_id": job.id,
            "late": bool(job.late),
            "series": run.series,
            "device_class": run.device_class,
            "simulated": run.simulated,
            "run_id": run.id,
            "verdict": str(verdict.verdict) if verdict else None,
            "ane_share": verdict.ane_share if verdict else None,
            "chip": chip,
            "model_sha256": run.model_sha256,
            "os_version": run.os_version,
            "os_build": run.os_build,
            "runner_version": run.runner_version,
            "udid": run.udid,
        }
        for units in _units(job.spec):
            found = measured.get(run.id, {}).get(units) if units else None
            yield Point(**base, compute_units=units, **_outcome(run, found))


def _outcome(run: db.Run, m: Any) -> dict[str, Any]:
    if run.status in UNFINISHED:
        return {"status": "pending", "reason": f"run {run.status}"}
    if run.status in FINAL_FAILED and run.error_kind == ABSENT_FROM_FARM:
        absent = db.MissingKind.DEVICE_CLASS_ABSENT
        return {
            "status": "missing",
            "reason": f"{absent}: {run.error_message or 'not in the farm'}",
        }
    if run.status in FINAL_FAILED:
        why = run.error_message or run.error_kind or str(run.status)
        kind = f"{run.error_kind}: " if run.error_kind and run.error_message else ""
        return {"status": "failed", "reason": f"run {run.status}: {kind}{why}"}
    if m is None:
        return {"status": "failed", "reason": "no measurement for this setting"}
    if m.error_kind or m.p50 is None:
        return {
            "status": "failed",
            "reason": f"{m.error_kind or 'error'}: {m.error_message or ''}".rstrip(": "),
        }
    return {"status": "ok", "median_ms": m.p50, "samples": m.count}


def _missing(
    session: Session, nights: dict[UUID, tuple[db.Job, date]], key: Filter
) -> Iterable[Point]:
    query = select(db.SweepMissing).where(db.SweepMissing.job_id.in_(list(nights)))
    for record in session.scalars(key.on(query, db.SweepMissing)):
        job, night = nights[record.job_id]
        units = [record.compute_units] if record.compute_units else _units(job.spec)
        known = catalog.DEVICES.get(record.device_class or "")
        for unit in units:
            yield Point(
                night=night,
                scheduled_for=_aware(job.scheduled_for or job.created_at),
                job_id=job.id,
                late=bool(job.late),
                series=record.series,
                device_class=record.device_class,
                compute_units=unit,
                simulated=None,
                status="missing",
                reason=f"{record.kind}: {record.reason}",
                chip=known.chip if known else None,
                model_sha256=record.model_sha256,
            )


def previous_medians(
    session: Session, job: db.Job
) -> dict[tuple[str, str, str, bool], tuple[date, float]]:
    """For a night: each series' median on the sweep's previous night that measured it
    (same simulated-or-real), by (series, device class, compute units, simulated)."""
    if job.sweep_id is None or job.scheduled_for is None:
        return {}
    sweep = session.get(db.Sweep, job.sweep_id)
    if sweep is None:
        return {}
    earlier = list(
        session.scalars(
            select(db.Job.id)
            .where(db.Job.sweep_id == sweep.id, db.Job.scheduled_for < job.scheduled_for)
            .order_by(db.Job.scheduled_for.desc())
            .limit(7)
        )
    )
    found: dict[tuple[str, str, str, bool], tuple[date, float]] = {}
    # Newest first: the first night that measured a series wins.
    for point in sorted(points(session, sweep, jobs=earlier),
                        key=lambda p: p.scheduled_for, reverse=True):  # fmt: skip
        if point.status != "ok" or point.median_ms is None or point.simulated is None:
            continue
        key = (point.series, point.device_class or "", point.compute_units or "", point.simulated)
        found.setdefault(key, (point.night, point.median_ms))
    return found
