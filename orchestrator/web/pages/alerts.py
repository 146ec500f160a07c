"""``/alerts``: the triage list — one alert summary per (sweep, night, cause), its findings
under it, and the CLI's actions (``anefarm alerts ack|fix|wontfix|invalid|infra|accept``)
as forms. A form posts to ``/alerts/{id}/triage``, which moves the summary through
``alerts.triage.move`` (the CLI's own function: same rules, same history) as the signed-in
token's name; a write needs a ``submit`` token (the sign-in cookie carries it), even where
reads are open."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from orchestrator.alerts import triage, views
from orchestrator.errors import UsageError
from orchestrator.store import models as db
from orchestrator.web.deps import Reader, SessionDep, Submitter
from orchestrator.web.pages.common import page

router = APIRouter()
LIMIT = 200
# The CLI's verbs in the order the forms offer them.
VERBS = ("ack", "fix", "wontfix", "invalid", "infra", "accept")


def actions_for(status: str) -> list[str]:
    """The verbs that are allowed moves from ``status`` (``triage.MOVES``)."""
    allowed = triage.MOVES[db.AlertStatus(status)]
    return [verb for verb in VERBS if triage.VERBS[verb] in allowed]


@router.get("/alerts", response_class=HTMLResponse)
def alerts_page(
    request: Request,
    session: SessionDep,
    caller: Reader,
    sweep: str | None = None,
    status: str = "open",
) -> HTMLResponse:
    statuses = views.parse_statuses([status]) if status != "all" else []
    found = views.list_alerts(session, sweep=sweep or None, statuses=statuses, limit=LIMIT)
    details: dict[int, dict[str, Any]] = {
        a["id"]: views.show_alert(session, a["id"]) for a in found
    }
    return page(
        request, "alerts.html", title="Alerts", alerts=found, details=details,
        actions={a["id"]: actions_for(a["status"]) for a in found}, caller=caller,
        filters={"sweep": sweep or "", "status": status},
        status_choices=["open", "all", *views.STATUSES],
    )  # fmt: skip


@router.post("/alerts/{alert_id}/triage")
def triage_alert(
    alert_id: int,
    session: SessionDep,
    caller: Submitter,
    action: Annotated[str, Form()],
    note: Annotated[str, Form()] = "",
) -> RedirectResponse:
    if action not in triage.VERBS:
        raise UsageError(f"unknown action {action!r}", hint="one of " + ", ".join(VERBS))
    triage.move(session, alert_id, triage.VERBS[action], by=caller.name or "dashboard",
                note=note.strip() or None, now=datetime.now(UTC))  # fmt: skip
    session.commit()
    return RedirectResponse(f"/alerts?status=all#alert-{alert_id}", status_code=303)
