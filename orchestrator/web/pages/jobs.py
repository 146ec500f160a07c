"""``/jobs`` (newest first) and ``/jobs/{id}``: the verdict matrix of a job, model × device
class, coloured per verdict with the share on the ANE, and its progress. While the job
runs, the page fetches ``/jobs/{id}/live`` (the same matrix and progress as an HTML
fragment) every 2 s and swaps it in (static/live.js): the server renders both, so the
live view and a reload can never disagree."""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from orchestrator.render.details import model_lines
from orchestrator.render.matrix import build_matrix
from orchestrator.report import find_job
from orchestrator.store import models as db
from orchestrator.web.deps import SessionDep
from orchestrator.web.pages.common import ANY_SIMULATED, page, templates, verdict_class
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
            select(db.Run.job_id, db.Run.status, func.count(), ANY_SIMULATED)
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


@dataclass(frozen=True, slots=True)
class MatrixCell:
    label: str
    css: str
    verdict: str
    status: str
    run: str | None
    simulated: bool


def matrix_lines(
    matrix: dict[str, Any], run_ids: dict[tuple[str, str], str]
) -> list[dict[str, Any]]:
    """The matrix's cells in column order, worded and coloured here rather than in the
    template: a 200 × 12 job is 2,400 cells, and Jinja2 lookups per cell cost ~0.1 s."""
    columns = [c["device_class"] for c in matrix["columns"]]
    lines = []
    for m in matrix["models"]:
        key = m["sha256"] or m["model"]
        cells: list[MatrixCell | None] = []
        for cls in columns:
            cell = m["cells"].get(cls)
            cells.append(None if cell is None else MatrixCell(
                cell["label"], verdict_class(cell["label"]), cell["verdict"] or "",
                cell["status"], run_ids.get((key, cls)), bool(cell["simulated"]),
            ))  # fmt: skip
        lines.append({"model": m["model"], "cells": cells})
    return lines


def live_context(session: Session, job: db.Job) -> dict[str, Any]:
    found: JobRows = job_rows(session, job.id)
    by_model: dict[str, list[Any]] = defaultdict(list)
    for row in found.rows:
        # Only rows with something to say (a FULL row with no op off the ANE has nothing).
        if row.ops_off_ane or row.error or row.waiting_since or row.verdict != "FULL":
            by_model[row.model].append(row)
    causes = {model: model_lines(rows) for model, rows in by_model.items()}
    matrix = build_matrix(found.rows)
    return {
        "job": job,
        "matrix": matrix,
        "lines": matrix_lines(matrix, found.run_ids),
        "found": found,
        "causes": {m: lines for m, lines in causes.items() if lines},
        # The matrix is final once the job is: nothing left for the page to poll.
        "live": str(job.status) in ("queued", "running") or not found.done,
    }


@router.get("/jobs/{job_ref}", response_class=HTMLResponse)
def job_page(request: Request, job_ref: str, session: SessionDep) -> HTMLResponse:
    job = find_job(session, job_ref)
    sweep = session.get(db.Sweep, job.sweep_id) if job.sweep_id else None
    return page(request, "job.html", title=f"Job {str(job.id)[:8]}", sweep=sweep,
                **live_context(session, job))  # fmt: skip


def live_version(session: Session, job: db.Job) -> str:
    """A tag that changes whenever the fragment would: the job's status, its runs by
    status and the newest attempt (a verdict, a retry, a probe's end all come with one).
    Two cheap aggregate queries instead of rendering 2,400 cells for every poll."""
    counts = session.execute(
        select(db.Run.status, func.count()).where(db.Run.job_id == job.id).group_by(db.Run.status)
    ).all()
    newest = session.scalar(
        select(func.max(db.RunAttempt.id))
        .join(db.Run, db.Run.id == db.RunAttempt.run_id)
        .where(db.Run.job_id == job.id)
    )
    said = f"{job.status}|{sorted((str(s), n) for s, n in counts)}|{newest}"
    return '"' + hashlib.sha256(said.encode()).hexdigest()[:20] + '"'


@router.get("/jobs/{job_ref}/live", response_class=HTMLResponse)
def job_live(request: Request, job_ref: str, session: SessionDep) -> Response:
    """The matrix and progress fragment the job page polls; ``X-Live: 0`` once final.
    The poll revalidates with its ETag: an unchanged job answers 304 without rendering."""
    job = find_job(session, job_ref)
    version = live_version(session, job)
    if request.headers.get("if-none-match") == version:
        return Response(status_code=304, headers={"ETag": version, "Cache-Control": "no-cache"})
    context = live_context(session, job)
    response = templates.TemplateResponse(request, "_job_live.html", context)
    response.headers["X-Live"] = "1" if context["live"] else "0"
    response.headers["ETag"] = version
    response.headers["Cache-Control"] = "no-cache"  # keep it, but ask every time
    return response
