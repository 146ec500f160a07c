"""What ``anefarm alerts list`` and ``alerts show`` print, as plain data (JSON-ready)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.alerts import triage
from orchestrator.errors import NotFound, UsageError
from orchestrator.store import models as db
from orchestrator.sweeps.definition import SweepDefinition

STATUSES = tuple(s.value for s in db.AlertStatus)


def _night(session: Session, job_id: Any, sweeps: dict[Any, db.Sweep]) -> str | None:
    job = session.get(db.Job, job_id)
    if job is None or job.scheduled_for is None or job.sweep_id not in sweeps:
        return None
    when = job.scheduled_for
    when = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    definition = SweepDefinition.model_validate(sweeps[job.sweep_id].definition)
    return str(definition.night_of(when).isoformat())


def _iso(when: datetime) -> str:
    return (when if when.tzinfo is not None else when.replace(tzinfo=UTC)).isoformat()


def recovery(session: Session, summary: db.AlertSummary) -> dict[str, str | None]:
    """When a recovered summary was closed: the night the analysis found it recovered
    (its triage entry's ``night``, stored by ``store.close_recovered``) and the time."""
    if summary.status != db.AlertStatus.RECOVERED:
        return {"recovered_night": None, "recovered_at": None}
    entry = session.scalars(
        select(db.AlertTriage)
        .where(db.AlertTriage.summary_id == summary.id,
               db.AlertTriage.to_status == db.AlertStatus.RECOVERED.value)
        .order_by(db.AlertTriage.at.desc(), db.AlertTriage.id.desc())
        .limit(1)
    ).first()  # fmt: skip
    if entry is None:
        return {"recovered_night": None, "recovered_at": None}
    night = entry.night.isoformat() if entry.night is not None else None
    return {"recovered_night": night, "recovered_at": _iso(entry.at)}


def parse_statuses(given: Sequence[str] | None) -> list[str]:
    """``--status`` values (repeated or comma-separated); "open" = untriaged + acknowledged."""
    out: list[str] = []
    for item in given or []:
        for word in (w.strip().lower() for w in item.split(",")):
            if not word:
                continue
            if word == "open":
                out += ["untriaged", "acknowledged"]
            elif word in STATUSES:
                out.append(word)
            else:
                raise UsageError(f"unknown alert status {word!r}",
                                 hint="one of: open, " + ", ".join(STATUSES))  # fmt: skip
    return out


def list_alerts(
    session: Session, *, sweep: str | None, statuses: list[str], limit: int
) -> list[dict[str, Any]]:
    sweeps = {s.id: s for s in session.scalars(select(db.Sweep))}
    query = select(db.AlertSummary).order_by(db.AlertSummary.id.desc()).limit(limit)
    if sweep is not None:
        ids = [i for i, s in sweeps.items() if s.name == sweep]
        if not ids:
            raise NotFound(f"no sweep {sweep!r}", hint="`anefarm sweep list` lists the sweeps")
        query = query.where(db.AlertSummary.sweep_id == ids[0])
    if statuses:
        query = query.where(db.AlertSummary.status.in_(statuses))
    out = []
    for s in session.scalars(query):
        members = session.scalars(
            select(db.AlertFinding).where(db.AlertFinding.summary_id == s.id)
        ).all()
        series = {m.series for m in members}
        classes = {m.device_class for m in members}
        out.append({
            "id": s.id, "sweep": sweeps[s.sweep_id].name if s.sweep_id in sweeps else None,
            "status": s.status.value, "kind": s.kind, "cause": s.cause,
            "first_night": _night(session, s.job_id, sweeps),
            "last_night": _night(session, s.last_job_id, sweeps),
            "nights": s.nights, "raised": s.raised, "series": len(series),
            "device_classes": sorted(classes), "findings": len(members),
            "simulated": s.simulated, "worst": s.worst, **recovery(session, s),
        })  # fmt: skip
    return out


def show_alert(session: Session, alert_id: int) -> dict[str, Any]:
    summary = triage.get_summary(session, alert_id)
    sweeps = {s.id: s for s in session.scalars(select(db.Sweep))}
    members = session.scalars(
        select(db.AlertFinding)
        .where(db.AlertFinding.summary_id == alert_id)
        .order_by(db.AlertFinding.id)
    )
    deliveries = session.scalars(
        select(db.NotificationDelivery)
        .where(db.NotificationDelivery.summary_id == alert_id)
        .order_by(db.NotificationDelivery.id)
    )
    return {
        "id": summary.id, "sweep": sweeps[summary.sweep_id].name,
        "status": summary.status.value, "kind": summary.kind, "cause": summary.cause,
        "cause_key": summary.cause_key, "simulated": summary.simulated,
        "first_night": _night(session, summary.job_id, sweeps),
        "last_night": _night(session, summary.last_job_id, sweeps),
        "nights": summary.nights, "raised": summary.raised, "worst": summary.worst,
        **recovery(session, summary),
        "created_at": _iso(summary.created_at), "updated_at": _iso(summary.updated_at),
        "findings": [
            {"night": _night(session, m.job_id, sweeps), "series": m.series,
             "device_class": m.device_class, "compute_units": m.compute_units,
             "simulated": m.simulated, "check": m.check, "status": m.status,
             "magnitude": m.magnitude, "message": m.message, "detail": m.detail}
            for m in members
        ],
        "triage": [
            {"at": _iso(t.at), "by": t.by, "from": t.from_status, "to": t.to_status,
             "note": t.note}
            for t in triage.history(session, alert_id)
        ],
        "deliveries": [
            {"at": _iso(d.created_at), "target": d.target, "format": d.format, "ok": d.ok,
             "attempts": d.attempts, "http_status": d.http_status, "error": d.error}
            for d in deliveries
        ],
    }  # fmt: skip
