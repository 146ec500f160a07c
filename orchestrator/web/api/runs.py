"""One run: its report row (as in the job's report), attempts with their failures and
diagnostics, per-setting latency samples, and the compute plan per op."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.errors import NotFound
from orchestrator.store import models as db
from orchestrator.web import deps

router = APIRouter(tags=["runs"])


def find_run(session: Session, run_ref: str) -> db.Run:
    from orchestrator.report import lookup_run

    run = lookup_run(session, run_ref)
    if run is None:
        raise NotFound(f"no run {run_ref!r}", hint="GET /api/v1/jobs/<job>/report names each run")
    return run


@router.get("/runs/{run}", summary="One run's evidence")
def show_run(run: str, session: deps.SessionDep, _caller: deps.Reader) -> dict[str, Any]:
    from orchestrator.report import report_row

    found = find_run(session, run)
    attempts = session.scalars(
        select(db.RunAttempt)
        .where(db.RunAttempt.run_id == found.id)
        .order_by(db.RunAttempt.attempt)
    )
    measurements = session.scalars(select(db.Measurement).where(db.Measurement.run_id == found.id))
    plan = session.scalars(
        select(db.OpPlacement)
        .where(db.OpPlacement.run_id == found.id)
        .order_by(db.OpPlacement.source, db.OpPlacement.index)
    )
    return {
        "run": str(found.id),
        "job": str(found.job_id),
        "purpose": str(found.purpose),
        "parent_run": str(found.parent_run_id) if found.parent_run_id else None,
        "row": report_row(session, found).model_dump(mode="json"),
        "attempts": [
            {
                "attempt": a.attempt,
                "udid": a.udid,
                "agent": a.agent,
                "outcome": str(a.outcome),
                "failure_kind": a.failure_kind,
                "failure_message": a.failure_message,
                "diagnostics": a.diagnostics or [],
                "started_at": a.started_at.isoformat(),
                "finished_at": a.finished_at.isoformat(),
            }
            for a in attempts
        ],
        "samples_ms": {str(m.compute_units): list(m.samples_ms or []) for m in measurements},
        "plan": [
            {
                "source": str(p.source),
                "index": p.index,
                "name": p.name,
                "type": p.op_type,
                "preferred": p.preferred,
                "supported": p.supported or [],
                "cost": p.cost,
            }
            for p in plan
        ],
    }
