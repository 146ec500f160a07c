"""Regressions and alerts (issue 18; orchestrator/alerts): a night's analysis, check
results, alert summaries with their findings, triage history, webhook deliveries."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from orchestrator.store.models.base import TS, Base, _enum_of


class AlertStatus(StrEnum):
    """A summary's triage status: untriaged → acknowledged → fixed | wontfix | invalid |
    infra, or accepted (the new normal: the baseline restarts from that night), or
    recovered (closed by the analysis when the change is gone)."""

    UNTRIAGED = "untriaged"
    ACKNOWLEDGED = "acknowledged"
    FIXED = "fixed"
    WONTFIX = "wontfix"
    INVALID = "invalid"
    INFRA = "infra"
    ACCEPTED = "accepted"
    # Closed by the analysis: every member back to SAME for RegressSettings.recovery_nights
    # (a string column without a CHECK constraint: no migration needed).
    RECOVERED = "recovered"


class NightAnalysis(Base):
    """A sweep night's analysis: ``confirming`` while confirmation runs of UNKNOWN
    latencies are on their way, ``analysed`` once its check results and alerts are
    stored, ``error`` when the analysis itself failed (the night is not failed by it)."""

    __tablename__ = "night_analyses"
    job_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    sweep_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sweeps.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(16))
    confirmations: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(TS)


class _SeriesCheck:
    """Whose check a row is about and how it came out: one series (model × device class ×
    compute units, SIMULATED or real) on one night (``job_id``), one check, its status. A
    check result and an alert summary's finding carry the same key."""

    # (The migrations fix the tables' column order; the ORM's order of these is immaterial.)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    series: Mapped[str] = mapped_column(String(256))
    device_class: Mapped[str] = mapped_column(String(32))
    # "-" for checks that are not per compute-units setting (placement, failures).
    compute_units: Mapped[str] = mapped_column(String(32))
    simulated: Mapped[bool] = mapped_column(Boolean)
    check: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32))


class CheckResult(_SeriesCheck, Base):
    """One night's status of one series for one check (latency, trend, placement, verdict,
    compile/load, failure) against its baseline: SAME, REGRESSION, IMPROVEMENT, UNKNOWN,
    INSUFFICIENT_DATA, FAILED or MISSING, with the figures and the attribution in
    ``detail``. Written once per night by the analysis (orchestrator/alerts/night.py)."""

    __tablename__ = "check_results"
    __table_args__ = (
        UniqueConstraint(
            "job_id",
            "series",
            "device_class",
            "compute_units",
            "simulated",
            "check",
            name="uq_check_results_key",
        ),
        Index("ix_check_results_sweep", "sweep_id", "series"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sweep_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sweeps.id", ondelete="CASCADE"))
    message: Mapped[str] = mapped_column(Text, default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(TS)


class AlertSummary(Base):
    """One alert summary per (sweep, night, cause): the findings of one cause grouped
    ("iOS 18.2 (22C…): conv dilated moved ANE → GPU on 14 models × 3 classes"). An open
    summary is updated by later nights (``last_job_id``, ``nights``) instead of raised
    again; ``worst`` is the largest effect seen, so a worse night re-raises it."""

    __tablename__ = "alert_summaries"
    __table_args__ = (
        UniqueConstraint("sweep_id", "job_id", "cause_key", name="uq_alert_summaries_cause"),
        Index("ix_alert_summaries_status", "status"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sweep_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sweeps.id", ondelete="CASCADE"))
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    last_job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    cause_key: Mapped[str] = mapped_column(String(512))
    cause: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(32))  # regression | improvement | placement | …
    status: Mapped[AlertStatus] = mapped_column(
        _enum_of(AlertStatus, 16), default=AlertStatus.UNTRIAGED
    )
    simulated: Mapped[bool] = mapped_column(Boolean)
    worst: Mapped[float] = mapped_column(Float, default=0.0)
    nights: Mapped[int] = mapped_column(Integer, default=1)
    raised: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(TS)
    updated_at: Mapped[datetime] = mapped_column(TS)


class AlertFinding(_SeriesCheck, Base):
    """A member of a summary: one series' check that changed, with its figures and what
    differed from the baseline."""

    __tablename__ = "alert_findings"
    __table_args__ = (Index("ix_alert_findings_summary", "summary_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    summary_id: Mapped[int] = mapped_column(ForeignKey("alert_summaries.id", ondelete="CASCADE"))
    magnitude: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(TS)


class AlertTriage(Base):
    """Who moved a summary from which status to which, when, and why."""

    __tablename__ = "alert_triage"
    __table_args__ = (Index("ix_alert_triage_summary", "summary_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    summary_id: Mapped[int] = mapped_column(ForeignKey("alert_summaries.id", ondelete="CASCADE"))
    from_status: Mapped[str] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    by: Mapped[str] = mapped_column(String(128))
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    at: Mapped[datetime] = mapped_column(TS)
    # The sweep night whose analysis made the move (a recovery); None: a person's (0012).
    night: Mapped[date | None] = mapped_column(Date, nullable=True)


class NotificationDelivery(Base):
    """One webhook message of a summary: where (the URL with secrets masked), in which
    body format, how many attempts, and how it ended."""

    __tablename__ = "notification_deliveries"
    __table_args__ = (Index("ix_notification_deliveries_summary", "summary_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    summary_id: Mapped[int] = mapped_column(ForeignKey("alert_summaries.id", ondelete="CASCADE"))
    target: Mapped[str] = mapped_column(Text)
    format: Mapped[str] = mapped_column(String(16))  # json | slack
    ok: Mapped[bool] = mapped_column(Boolean)
    attempts: Mapped[int] = mapped_column(Integer)
    http_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(TS)
