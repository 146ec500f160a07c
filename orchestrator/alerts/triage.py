"""Triage: people move an alert summary through its statuses, and every move is kept
(who, when, from, to, note)::

    untriaged ──▶ acknowledged ──▶ fixed | wontfix | invalid | infra
        │              │                 │ (reopen) ──▶ acknowledged
        └──────────────┴──▶ accepted  (the new normal: each member series' baseline
                                       restarts at the summary's first night)

``accepted`` is final: the baseline has moved, so the change no longer shows. The analysis
itself closes an open summary as ``recovered`` when every member is SAME again for
``recovery_nights`` nights (``store.close_recovered``); people can reopen it with ``ack``. Baselines
can also be pinned to a named night (``anefarm sweep baseline NAME --night DATE --label
v2.3``): the analysis then compares every night with that one.
"""

from __future__ import annotations

import getpass
import os
from datetime import date, datetime
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.errors import NotFound, UsageError
from orchestrator.store import models as db

AlertStatus = db.AlertStatus
CLOSED = frozenset({AlertStatus.FIXED, AlertStatus.WONTFIX, AlertStatus.INVALID,
                    AlertStatus.INFRA})  # fmt: skip
MOVES: dict[AlertStatus, frozenset[AlertStatus]] = {
    AlertStatus.UNTRIAGED: frozenset({AlertStatus.ACKNOWLEDGED, AlertStatus.ACCEPTED}) | CLOSED,
    AlertStatus.ACKNOWLEDGED: frozenset({AlertStatus.ACCEPTED}) | CLOSED,
    **{closed: frozenset({AlertStatus.ACKNOWLEDGED}) | (CLOSED - {closed}) for closed in CLOSED},
    AlertStatus.ACCEPTED: frozenset(),
    # Closed by the analysis (store.close_recovered); a person may reopen or close it.
    AlertStatus.RECOVERED: frozenset({AlertStatus.ACKNOWLEDGED}) | CLOSED,
}
# The CLI's verbs → statuses.
VERBS = {"ack": AlertStatus.ACKNOWLEDGED, "fix": AlertStatus.FIXED,
         "wontfix": AlertStatus.WONTFIX, "invalid": AlertStatus.INVALID,
         "infra": AlertStatus.INFRA, "accept": AlertStatus.ACCEPTED}  # fmt: skip


def default_user() -> str:
    """Who triages when ``--by`` is not given: the OS user."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container's numeric uid)
        return os.environ.get("USER") or f"uid-{os.getuid()}"


def get_summary(session: Session, alert_id: int) -> db.AlertSummary:
    summary = session.get(db.AlertSummary, alert_id)
    if summary is None:
        raise NotFound(f"no alert {alert_id}", hint="`anefarm alerts list` lists the alerts")
    return summary


def move(
    session: Session, alert_id: int, to: AlertStatus, *, by: str, note: str | None, now: datetime
) -> db.AlertTriage:
    """Change a summary's status along :data:`MOVES` and record who did it."""
    summary = get_summary(session, alert_id)
    current = AlertStatus(summary.status)
    if to == current:
        raise UsageError(f"alert {alert_id} is already {current.value}")
    if to not in MOVES[current]:
        allowed = ", ".join(sorted(s.value for s in MOVES[current])) or "none (final)"
        raise UsageError(
            f"alert {alert_id} cannot go from {current.value} to {to.value}",
            hint=f"from {current.value}: {allowed}",
        )
    summary.status, summary.updated_at = to, now
    entry = db.AlertTriage(
        summary_id=summary.id, from_status=current.value, to_status=to.value,
        by=by[:128], note=note, at=now,
    )  # fmt: skip
    session.add(entry)
    if to == AlertStatus.ACCEPTED:
        _reset_baselines(session, summary, by=by, now=now)
    return entry


def _reset_baselines(session: Session, summary: db.AlertSummary, *, by: str, now: datetime) -> None:
    """Each member series' baseline restarts at the summary's first night."""
    members = session.execute(
        select(db.AlertFinding.series, db.AlertFinding.device_class,
               db.AlertFinding.compute_units)
        .where(db.AlertFinding.summary_id == summary.id)
        .distinct()
    ).all()  # fmt: skip
    for series, device_class, units in members:
        session.add(
            db.SweepBaseline(
                sweep_id=summary.sweep_id, kind="reset", job_id=summary.job_id, series=series,
                device_class=device_class, compute_units=None if units == "-" else units,
                label=f"alert {summary.id} accepted", summary_id=summary.id, by=by[:128],
                created_at=now,
            )
        )  # fmt: skip


def pin(
    session: Session,
    sweep_id: UUID,
    night: date,
    *,
    label: str | None,
    by: str,
    now: datetime,
    nights: dict[date, UUID],
) -> db.SweepBaseline:
    """Pin the sweep's baseline to the night of ``night`` (``nights``: date → job id)."""
    job_id = nights.get(night)
    if job_id is None:
        known = ", ".join(d.isoformat() for d in sorted(nights)[-5:]) or "none yet"
        raise NotFound(f"the sweep has no night of {night.isoformat()}",
                       hint=f"its latest nights: {known}")  # fmt: skip
    row = db.SweepBaseline(
        sweep_id=sweep_id, kind="pin", job_id=job_id, label=label, by=by[:128],
        created_at=now,
    )  # fmt: skip
    session.add(row)
    return row


def history(session: Session, alert_id: int) -> list[db.AlertTriage]:
    return list(
        session.scalars(
            select(db.AlertTriage)
            .where(db.AlertTriage.summary_id == alert_id)
            .order_by(db.AlertTriage.at, db.AlertTriage.id)
        )
    )
