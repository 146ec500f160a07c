"""Regression alerts (orchestrator/alerts): the list and one alert as ``anefarm alerts
list/show --json`` print them, and a status change (``alerts ack|fix|wontfix|invalid|
infra|accept``) with a submit token, recorded as done by the token's name.

The change takes form fields (``status``: a verb or a status, ``note``), so a plain HTML
form of the dashboard can send it; with a ``next`` field the answer is a redirect there
(303) instead of JSON.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Response
from fastapi.responses import JSONResponse, RedirectResponse

from orchestrator.errors import UsageError
from orchestrator.web import deps
from orchestrator.web.api.session import safe_next

router = APIRouter(tags=["alerts"])


@router.get("/alerts", summary="Alert summaries, newest first")
def list_alerts(
    session: deps.SessionDep,
    _caller: deps.Reader,
    sweep: Annotated[str | None, Query(description="only this sweep's")] = None,
    status: Annotated[
        list[str] | None, Query(description="open, untriaged, acknowledged, fixed, …")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> dict[str, Any]:
    from orchestrator.alerts.views import list_alerts, parse_statuses

    found = list_alerts(session, sweep=sweep, statuses=parse_statuses(status), limit=limit)
    return {"alerts": found}


@router.get("/alerts/{alert_id}", summary="One alert: cause, findings, triage, deliveries")
def show_alert(alert_id: int, session: deps.SessionDep, _caller: deps.Reader) -> dict[str, Any]:
    from orchestrator.alerts.views import show_alert

    return show_alert(session, alert_id)


@router.post("/alerts/{alert_id}/status", summary="Triage: change an alert's status")
def change_status(
    alert_id: int,
    session: deps.SessionDep,
    caller: deps.Submitter,
    status: Annotated[str, Form(description="ack, fix, wontfix, invalid, infra, accept")],
    note: Annotated[str | None, Form(description="why (kept in the history)")] = None,
    next_page: Annotated[str | None, Form(alias="next", description="redirect here")] = None,
) -> Response:
    from orchestrator.alerts import triage

    to = _status(status.strip().lower())
    who = f"token:{caller.name}"
    entry = triage.move(session, alert_id, to, by=who, note=note or None, now=datetime.now(UTC))
    body = {"alert": alert_id, "from": entry.from_status, "to": entry.to_status, "by": who}
    session.commit()
    if next_page is not None:
        return RedirectResponse(safe_next(next_page), status_code=303)
    return JSONResponse(body)


def _status(word: str) -> Any:
    from orchestrator.alerts import triage

    if word in triage.VERBS:
        return triage.VERBS[word]
    try:
        return triage.AlertStatus(word)
    except ValueError:
        raise UsageError(
            f"unknown alert status {word!r}", hint="one of: " + ", ".join(triage.VERBS)
        ) from None
