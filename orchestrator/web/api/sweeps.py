"""Nightly sweeps (orchestrator/sweeps): the list and one sweep as ``anefarm sweep list
--json`` / ``sweep show --json`` print them, and ``POST /sweeps/<name>/run``, a night now
(``anefarm sweep run``; a submit token). A night that exists already is 409."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from orchestrator.errors import UsageError
from orchestrator.web import deps

router = APIRouter(tags=["sweeps"])
NIGHTS_SHOWN = 7  # as `anefarm sweep show`


@router.get("/sweeps", summary="The sweeps: schedule, timezone, next fire, paused")
def list_sweeps(session: deps.SessionDep, _caller: deps.Reader) -> dict[str, Any]:
    from orchestrator.sweeps.store import describe, list_sweeps

    return {"sweeps": [describe(s) for s in list_sweeps(session)]}


@router.get("/sweeps/{name}", summary="A sweep: its definition, next fire and last nights")
def show_sweep(
    name: str,
    session: deps.SessionDep,
    _caller: deps.Reader,
    nights: Annotated[int, Query(ge=1, le=1000, description="how many nights")] = NIGHTS_SHOWN,
) -> dict[str, Any]:
    from orchestrator.sweeps import store
    from orchestrator.sweeps.definition import shown
    from orchestrator.sweeps.nights import load_sweep

    sweep = load_sweep(session, name)
    return {
        **store.describe(sweep),
        "definition": shown(sweep.definition),
        "nights": [n.to_json() for n in store.nights(session, sweep.id, limit=nights)],
    }


@router.post("/sweeps/{name}/run", status_code=201, summary="Run a night of the sweep now")
async def run_sweep(
    name: str,
    web: deps.ContextDep,
    _caller: deps.Submitter,
    at: Annotated[
        datetime | None,
        Query(description="record it as the night of this time (ISO, with an offset)"),
    ] = None,
) -> JSONResponse:
    web.broker_url()
    if at is not None and at.tzinfo is None:
        raise UsageError("`at` needs an offset", hint="e.g. 2026-11-27T02:00:00+00:00")
    scheduled_for = (at or datetime.now(UTC).replace(microsecond=0)).astimezone(UTC)
    body = await run_in_threadpool(_start, web, name, scheduled_for)
    return JSONResponse(body, status_code=201, headers={"Location": f"/api/v1/jobs/{body['job']}"})


def _start(web: deps.WebContext, name: str, scheduled_for: datetime) -> dict[str, Any]:
    from orchestrator.sweeps.nights import load_sweep, start_night
    from orchestrator.sweeps.store import nights

    job_id = start_night(settings=web.settings, sessions=web.sessions, app=web.celery(),
                         sweep_name=name, scheduled_for=scheduled_for)  # fmt: skip
    with web.sessions() as session:
        sweep = load_sweep(session, name)
        night = next(n for n in nights(session, sweep.id, limit=50) if n.job == job_id)
    return {"sweep": name, **night.to_json()}
