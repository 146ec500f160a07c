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
- an open summary whose every member is SAME again on ``recovery_nights`` nights in a row
  is closed as **recovered** (``close_recovered``); if its cause comes back later, that is
  a new summary.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
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
# worse(each member's rows of earlier nights, oldest first; tonight's members): does
# tonight worsen the open alert (causes.worse: regress.decide_alert says RE_RAISE)?
Worse = Callable[[dict[tuple[str, str, str, str], list["db.AlertFinding"]], list["Finding"]], bool]


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
    worse: Worse | None = None,
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
            reraised = earlier and worse is not None and _grew(session, summary, members,
                                                               worse, job_id)  # fmt: skip
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
    worse: Worse,
    job_id: UUID,
) -> bool:
    """Did any member get worse than what the summary holds for its (series, check) from
    earlier nights? ``worse`` reads each member's rows, oldest first."""
    rows: dict[tuple[str, str, str, str], list[db.AlertFinding]] = {}
    for row in session.scalars(
        select(db.AlertFinding)
        .where(db.AlertFinding.summary_id == summary.id, db.AlertFinding.job_id != job_id)
        .order_by(db.AlertFinding.id)
    ):
        rows.setdefault((row.series, row.device_class, row.compute_units, row.check), []).append(
            row
        )
    return bool(rows) and worse(rows, members)


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


RECOVERED_BY = "anefarm"  # who closes a recovered summary in its triage history


def close_recovered(
    session: Session, sweep_id: UUID, job_id: UUID, night: date, now: datetime, *, nights: int
) -> list[int]:
    """Close as ``recovered`` each open summary of the sweep whose every member (series,
    class, compute units, check) is SAME on the sweep's last ``nights`` nights up to
    tonight (``job_id``). A night without a result for a member (failed, missing, not
    analysed) or with any other status — UNKNOWN included — keeps it open. The move is
    kept in its triage history (by ``anefarm``, naming the night); a cause that comes back
    later is a new summary. Returns the summaries closed."""
    tonight = session.get(db.Job, job_id)
    if tonight is None or tonight.scheduled_for is None:
        return []
    jobs = list(session.scalars(
        select(db.Job.id)
        .where(db.Job.sweep_id == sweep_id, db.Job.scheduled_for.is_not(None),
               db.Job.scheduled_for <= tonight.scheduled_for)
        .order_by(db.Job.scheduled_for.desc())
        .limit(nights)
    ))  # fmt: skip
    if len(jobs) < nights:
        return []
    same: dict[tuple[str, str, str, str], int] = {}
    for row in session.execute(
        select(db.CheckResult.series, db.CheckResult.device_class,
               db.CheckResult.compute_units, db.CheckResult.check)
        .where(db.CheckResult.job_id.in_(jobs), db.CheckResult.status == "SAME")
    ):  # fmt: skip
        ident = (row[0], row[1], row[2], row[3])
        same[ident] = same.get(ident, 0) + 1
    closed = []
    for summary in session.scalars(
        select(db.AlertSummary)
        .where(db.AlertSummary.sweep_id == sweep_id, db.AlertSummary.status.in_(OPEN))
        .order_by(db.AlertSummary.id)
    ):
        members = session.execute(
            select(db.AlertFinding.series, db.AlertFinding.device_class,
                   db.AlertFinding.compute_units, db.AlertFinding.check)
            .where(db.AlertFinding.summary_id == summary.id).distinct()
        ).all()  # fmt: skip
        if not members or any(same.get((m[0], m[1], m[2], m[3]), 0) < nights for m in members):
            continue
        session.add(db.AlertTriage(
            summary_id=summary.id, from_status=AlertStatus(summary.status).value,
            to_status=AlertStatus.RECOVERED.value, by=RECOVERED_BY, at=now, night=night,
            note=f"recovered on night {night.isoformat()}: every member SAME on the last"
                 f" {nights} night{'s' * (nights != 1)}",
        ))  # fmt: skip
        summary.status, summary.updated_at = AlertStatus.RECOVERED, now
        closed.append(summary.id)
    return closed


def utcnow() -> datetime:
    return datetime.now(UTC)
