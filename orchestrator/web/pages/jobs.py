"""``/jobs`` (newest first) and ``/jobs/{id}``: the verdict matrix of a job, model × device
class, coloured per verdict with the share on the ANE, and its progress. While the job
runs, the page fetches ``/jobs/{id}/live`` (the same matrix and progress as an HTML
fragment) every 2 s and swaps it in (static/live.js): the server renders both, so the
live view and a reload can never disagree."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from orchestrator.render.details import model_lines
from orchestrator.render.matrix import build_matrix
from orchestrator.report import find_job
from orchestrator.store import models as db
from orchestrator.web.deps import SessionDep
from orchestrator.web.pages.common import page, templates
from orchestrator.web.pages.rows import JobRows, job_rows

router = APIRouter()
LIST_LIMIT = 200


def job_summaries(session: Session, limit: int = LIST_LIMIT) -> list[dict[str, Any]]:
    """The newest jobs with their user runs counted by status (one grouped query)."""
    jobs = list(session.scalars(select(db.Job).order_by(db.Job.created_at.desc()).limit(limit)))
    ids = [j.id for j in jobs]
    counts: dict[Any, Counter[str]] = defaultdict(Counter)
    simulated: dict[Any, bool] = {}
    if ids:
        grouped = session.execute(
            select(db.Run.job_id, db.Run.status, func.count(), func.max(db.Run.simulated))
            .where(db.Run.job_id.in_(ids), db.Run.purpose == "user")
            .group_by(db.Run.job_id, db.Run.status)
        ).all()
        for job_id, status, count, sim in grouped:
            counts[job_id][str(status)] += count
            simulated[job_id] = simulated.get(job_id, False) or bool(sim)
    sweeps = dict(session.execute(select(db.Sweep.id, db.Sweep.name)).all())
    return [
        {
            "job": j,
            "id": str(j.id),
            "counts": dict(sorted(counts[j.id].items())),
            "runs": sum(counts[j.id].values()),
            "simulated": simulated.get(j.id, False),
            "sweep": sweeps.get(j.sweep_id) if j.sweep_id else None,
        }
        for j in jobs
    ]


@router.get("/jobs", response_class=HTMLResponse)
def jobs_page(request: Request, session: SessionDep) -> HTMLResponse:
    return page(request, "jobs.html", title="Jobs", jobs=job_summaries(session))


def live_context(session: Session, job: db.Job) -> dict[str, Any]:
    found: JobRows = job_rows(session, job.id)
    by_model: dict[str, list[Any]] = defaultdict(list)
    for row in found.rows:
        by_model[row.model].append(row)
    causes = {model: model_lines(rows) for model, rows in by_model.items()}
    return {
        "job": job,
        "matrix": build_matrix(found.rows),
        "found": found,
        "run_ids": found.run_ids,
        "causes": {m: lines for m, lines in causes.items() if lines},
        # The matrix is final once the job is: nothing left for the page to poll.
        "live": str(job.status) in ("queued", "running") or not found.done,
    }


@router.get("/jobs/{job_ref}", response_class=HTMLResponse)
def job_page(request: Request, job_ref: str, session: SessionDep) -> HTMLResponse:
    job = find_job(session, job_ref)
    return page(request, "job.html", title=f"Job {str(job.id)[:8]}", **live_context(session, job))


@router.get("/jobs/{job_ref}/live", response_class=HTMLResponse)
def job_live(request: Request, job_ref: str, session: SessionDep) -> HTMLResponse:
    """The matrix and progress fragment the job page polls; ``X-Live: 0`` once final."""
    job = find_job(session, job_ref)
    context = live_context(session, job)
    response = templates.TemplateResponse(request, "_job_live.html", context)
    response.headers["X-Live"] = "1" if context["live"] else "0"
    response.headers["Cache-Control"] = "no-store"
    return response
