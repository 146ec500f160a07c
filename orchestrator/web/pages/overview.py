"""``/``: the farm at a glance — device classes and their devices by state, the last night
of every sweep, the alerts nobody has triaged, and the newest jobs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from orchestrator import catalog
from orchestrator.store import models as db
from orchestrator.web.deps import ContextDep, SessionDep
from orchestrator.web.pages.common import ANY_SIMULATED, page
from orchestrator.web.pages.devices import fleet
from orchestrator.web.pages.jobs import job_summaries

router = APIRouter()
RECENT_JOBS = 10
ALERTS_SHOWN = 20


def last_nights(session: Session) -> list[dict[str, Any]]:
    """Every sweep with its newest night (a job) and that night's runs by status."""
    sweeps = list(session.scalars(select(db.Sweep).order_by(db.Sweep.name)))
    if not sweeps:
        return []
    newest = (
        select(db.Job.sweep_id, func.max(db.Job.created_at).label("at"))
        .where(db.Job.sweep_id.is_not(None))
        .group_by(db.Job.sweep_id)
        .subquery()
    )
    nights = {
        job.sweep_id: job
        for job in session.scalars(
            select(db.Job).join(
                newest, (db.Job.sweep_id == newest.c.sweep_id) & (db.Job.created_at == newest.c.at)
            )
        )
    }
    counts: dict[Any, dict[str, int]] = {}
    simulated: dict[Any, bool] = {}
    if nights:
        ids = [j.id for j in nights.values()]
        for job_id, status, n, sim in session.execute(
            select(db.Run.job_id, db.Run.status, func.count(), ANY_SIMULATED)
            .where(db.Run.job_id.in_(ids), db.Run.purpose == "user")
            .group_by(db.Run.job_id, db.Run.status)
        ).all():
            counts.setdefault(job_id, {})[str(status)] = n
            simulated[job_id] = simulated.get(job_id, False) or bool(sim)
    out = []
    for sweep in sweeps:
        night = nights.get(sweep.id)
        out.append({
            "sweep": sweep,
            "night": night,
            "counts": counts.get(night.id, {}) if night else {},
            "simulated": simulated.get(night.id, False) if night else False,
        })  # fmt: skip
    return out


def untriaged(session: Session, limit: int = ALERTS_SHOWN) -> tuple[list[Any], int]:
    """The untriaged alert summaries, newest first, with their sweep's name; and how many."""
    where = db.AlertSummary.status == db.AlertStatus.UNTRIAGED
    total = session.scalar(select(func.count()).select_from(db.AlertSummary).where(where)) or 0
    rows = session.execute(
        select(db.AlertSummary, db.Sweep.name)
        .join(db.Sweep, db.Sweep.id == db.AlertSummary.sweep_id)
        .where(where)
        .order_by(db.AlertSummary.updated_at.desc())
        .limit(limit)
    ).all()
    return list(rows), total


@router.get("/", response_class=HTMLResponse)
def overview_page(request: Request, session: SessionDep, web: ContextDep) -> HTMLResponse:
    farm = fleet(session, web)
    alerts, alert_count = untriaged(session)
    names = {d.product_type: f"{d.name} · {d.chip}" for d in catalog.DEVICES.values()}
    return page(
        request,
        "overview.html",
        title="Overview",
        fleet=farm,
        classes=farm.by_class(),
        class_names=names,
        sim_classes={d.product_type for d in farm.devices if d.simulated},
        nights=last_nights(session),
        alerts=alerts,
        alert_count=alert_count,
        jobs=job_summaries(session, RECENT_JOBS),
    )
