"""Jobs: the list (``anefarm jobs --json``), one job's status (``anefarm status --json``)
and its report (``anefarm report --json``: the same ``Report`` model, the same JSON)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from orchestrator.report_rows import Report
from orchestrator.web import deps

router = APIRouter(tags=["jobs"])


@router.get("/jobs", summary="Jobs, newest first, with their runs counted by status")
def list_jobs(
    session: deps.SessionDep,
    _caller: deps.Reader,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
) -> dict[str, Any]:
    from orchestrator.jobs import list_jobs

    return list_jobs(session, limit=limit).to_json()


@router.get("/jobs/{job}", summary="One job's status (full id or a unique prefix)")
def job_status(job: str, session: deps.SessionDep, _caller: deps.Reader) -> dict[str, Any]:
    from orchestrator.report import job_status

    return job_status(session, job)


@router.get(
    "/jobs/{job}/report",
    response_model=Report,
    summary="The job's report: the JSON of `anefarm report --json`",
)
def job_report(job: str, session: deps.SessionDep, _caller: deps.Reader) -> JSONResponse:
    from orchestrator.report import build_report

    # The dict the CLI prints, as it is: no second serialisation that could differ.
    return JSONResponse(build_report(session, job))


@router.post("/jobs/{job}/cancel", summary="Cancel the job's unfinished runs")
def cancel_job(
    job: str, web: deps.ContextDep, session: deps.SessionDep, _caller: deps.Submitter
) -> dict[str, Any]:
    from orchestrator.dispatch import cancel
    from orchestrator.report import find_job

    job_id = find_job(session, job).id
    session.close()  # cancel writes through its own sessions
    client = web.redis() if web.settings.broker_url else None
    cancelled = cancel(job_id, sessions=web.sessions, client=client)
    return {"job": str(job_id), "cancelled_runs": cancelled}
