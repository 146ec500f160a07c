"""A night's verdicts in the database: its check results, and its alert summaries — new
ones raised, open ones updated (not raised again every night), raised again when worse.

The analysis (``orchestrator.regress``) says what changed; this module decides what a
person hears of it:

- a finding becomes an alert when its status is REGRESSION, IMPROVEMENT or FAILED (a model
  that stops compiling is an alert of its own); UNKNOWN, SAME, INSUFFICIENT_DATA and
  MISSING are only check results (the report and JUnit show them);
- findings are grouped by cause (``Finding.cause_key``): one summary per (sweep, night,
  cause), so an OS build that moves one op kind off the ANE is one summary for every
  model and class it touches;
- a summary that is still open (untriaged, acknowledged) — or closed as wontfix, invalid
  or infra, which say "we know" — absorbs the same cause on later nights: its last night
  and night count move on, nobody is told again. When a member gets worse than the
  figures the summary holds for its series and check (``regress.decide_alert``: a change
  grown by ``reraise_margin``, more ops moved, a lower verdict, another failure) it is
  **raised again**: back to untriaged, ``raised`` + 1, notified again. A cause whose summary was marked fixed and comes back is
  a new summary (a regression of the fix). An accepted change restarted the baseline, so
  it does not come back at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from orchestrator.store import models as db

AlertStatus = db.AlertStatus
ALERTING = ("REGRESSION", "IMPROVEMENT", "FAILED")
# Statuses of a summary that absorb the same cause on later nights instead of a new one.
ABSORBING = (AlertStatus.UNTRIAGED, AlertStatus.ACKNOWLEDGED, AlertStatus.WONTFIX,
             AlertStatus.INVALID, AlertStatus.INFRA)  # fmt: skip
OPEN = (AlertStatus.UNTRIAGED, AlertStatus.ACKNOWLEDGED)
NOT_PER_UNITS = "-"


@dataclass(frozen=True)
class Finding:
    """One (series, device class, compute units, check) of tonight, as stored."""

    series: str
    device_class: str
    compute_units: str
    simulated: bool
    check: str
    status: str
    message: str
    magnitude: float = 0.0  # |relative change| of a latency, ops moved, 1 for a failure
    cause_key: str = ""
    cause: str = ""
    kind: str = ""  # regression | improvement | placement | failure
    detail: dict[str, Any] = field(default_factory=dict)
    analysed: Any = field(default=None, compare=False)  # the regress.Finding it came from

    @property
    def alerting(self) -> bool:
        return self.status in ALERTING and bool(self.cause_key)


@dataclass
class Raised:
    """What tonight did to one summary, for the notifications."""

    summary_id: int
    new: bool
    reraised: bool

    @property
    def notify(self) -> bool:
        return self.new or self.reraised


def store_checks(
    session: Session, sweep_id: UUID, job_id: UUID, findings: list[Finding], now: datetime
) -> None:
    """Tonight's check results, replacing any earlier analysis of the same night."""
    session.execute(delete(db.CheckResult).where(db.CheckResult.job_id == job_id))
    session.add_all(
        db.CheckResult(
            sweep_id=sweep_id, job_id=job_id, series=f.series, device_class=f.device_class,
            compute_units=f.compute_units or NOT_PER_UNITS, simulated=f.simulated,
            check=f.check, status=f.status, message=f.message[:4000],
            detail=f.detail, created_at=now,
        )
        for f in _unique(findings)
    )  # fmt: skip


def _unique(findings: list[Finding]) -> list[Finding]:
    seen: dict[tuple[str, str, str, bool, str], Finding] = {}
    for f in findings:
        seen[(f.series, f.device_class, f.compute_units or NOT_PER_UNITS, f.simulated, f.check)] = f
    return list(seen.values())


def store_alerts(
    session: Session,
    sweep_id: UUID,
    job_id: UUID,
    findings: list[Finding],
    now: datetime,
    *,
    worse: Callable[[db.AlertFinding, Finding], bool] | None = None,
) -> list[Raised]:
    """Group tonight's alerting findings by cause into summaries (new, updated or raised
    again: ``worse`` says whether a member grew past the figures the summary holds for
    the same series and check); their member findings are stored with them."""
    groups: dict[str, list[Finding]] = {}
    for finding in findings:
        if finding.alerting:
            groups.setdefault(finding.cause_key, []).append(finding)
    # Re-running the analysis of a night (after its confirmation runs) replaces tonight's
    # members rather than adding them twice.
    session.execute(delete(db.AlertFinding).where(db.AlertFinding.job_id == job_id))
    out: list[Raised] = []
    for key, members in sorted(groups.items()):
        worst = max(abs(m.magnitude) for m in members)
        summary = _absorbing(session, sweep_id, key, job_id)
        if summary is None:
            first = members[0]
            summary = db.AlertSummary(
                sweep_id=sweep_id, job_id=job_id, last_job_id=job_id, cause_key=key[:512],
                cause=first.cause, kind=first.kind, status=AlertStatus.UNTRIAGED,
                simulated=any(m.simulated for m in members), worst=worst, nights=1, raised=1,
                created_at=now, updated_at=now,
            )  # fmt: skip
            session.add(summary)
            session.flush()
            out.append(Raised(summary.id, new=True, reraised=False))
        else:
            earlier = summary.last_job_id != job_id
            reraised = earlier and worse is not None and _grew(session, summary, members, worse)
            if earlier:
                summary.nights += 1
            summary.last_job_id, summary.updated_at = job_id, now
            summary.cause = members[0].cause
            if reraised:
                summary.raised += 1
                summary.status = AlertStatus.UNTRIAGED
            summary.worst = max(summary.worst, worst)
            out.append(Raised(summary.id, new=False, reraised=reraised))
        session.add_all(
            db.AlertFinding(
                summary_id=summary.id, job_id=job_id, series=m.series,
                device_class=m.device_class, compute_units=m.compute_units or NOT_PER_UNITS,
                simulated=m.simulated, check=m.check, status=m.status, magnitude=m.magnitude,
                message=m.message[:4000], detail=m.detail, created_at=now,
            )
            for m in members
        )  # fmt: skip
    return out


def _grew(
    session: Session,
    summary: db.AlertSummary,
    members: list[Finding],
    worse: Callable[[db.AlertFinding, Finding], bool],
) -> bool:
    """Did any member get worse than the worst the summary holds for its (series, check)?"""
    held: dict[tuple[str, str, str, str], db.AlertFinding] = {}
    for row in session.scalars(
        select(db.AlertFinding)
        .where(db.AlertFinding.summary_id == summary.id)
        .order_by(db.AlertFinding.id)
    ):
        ident = (row.series, row.device_class, row.compute_units, row.check)
        if ident not in held or abs(row.magnitude) >= abs(held[ident].magnitude):
            held[ident] = row
    for m in members:
        previous = held.get((m.series, m.device_class, m.compute_units or NOT_PER_UNITS, m.check))
        if previous is not None and worse(previous, m):
            return True
    return False


def _absorbing(session: Session, sweep_id: UUID, key: str, job_id: UUID) -> db.AlertSummary | None:
    """The summary that tonight's cause belongs to: tonight's own (a re-analysis), or the
    newest earlier one of the same cause that still absorbs it."""
    rows = session.scalars(
        select(db.AlertSummary)
        .where(db.AlertSummary.sweep_id == sweep_id, db.AlertSummary.cause_key == key[:512])
        .order_by(db.AlertSummary.id.desc())
    ).all()
    for row in rows:
        if job_id in (row.job_id, row.last_job_id):
            return row
    newest = rows[0] if rows else None
    if newest is not None and newest.status in ABSORBING:
        return newest
    return None


def utcnow() -> datetime:
    return datetime.now(UTC)
