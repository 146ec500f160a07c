"""Nightly sweeps (issue 17): the stored definitions, the series missing on a night, and
the baselines regressions are judged against (issue 18)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Uuid,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from orchestrator.store.models.base import TS, Base, _enum_of


class NightTrigger(StrEnum):
    """What started a sweep's night: a person (`anefarm sweep run`) or the schedule."""

    MANUAL = "manual"
    SCHEDULE = "schedule"


class Sweep(Base):
    """A stored sweep definition (issue 17): the validated YAML in ``definition``
    (orchestrator.sweeps.definition.SweepDefinition), its cron ``schedule`` and
    ``timezone`` copied out for the scheduler. Its nights are jobs (``jobs.sweep_id``)."""

    __tablename__ = "sweeps"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(256), unique=True)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    schedule: Mapped[str] = mapped_column(String(128))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    paused: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The YAML file it was added from (globs in it are relative to that file's folder).
    source_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(TS)
    updated_at: Mapped[datetime] = mapped_column(TS)


class MissingKind(StrEnum):
    """Why a series of a sweep has no point tonight."""

    DEVICE_CLASS_ABSENT = "device_class_absent"  # the farm has no device of the class
    MODEL_MISSING = "model_missing"  # the path or glob matched no file tonight
    MODEL_UNREADABLE = "model_unreadable"  # the file is there but cannot be inspected
    RUN_FAILED = "run_failed"  # the run ended failed or cancelled


class SweepMissing(Base):
    """Missing is data: a series of a sweep that has no point tonight, and why. One row
    per (night, series, device class); ``device_class`` is NULL when no class was tried
    (e.g. the model file is gone, for every class), ``compute_units`` NULL for all."""

    __tablename__ = "sweep_missing"
    __table_args__ = (Index("ix_sweep_missing_job", "job_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    series: Mapped[str] = mapped_column(String(256))
    device_class: Mapped[str | None] = mapped_column(String(32), nullable=True)
    compute_units: Mapped[str | None] = mapped_column(String(32), nullable=True)
    kind: Mapped[MissingKind] = mapped_column(_enum_of(MissingKind, 32))
    reason: Mapped[str] = mapped_column(Text)
    model_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    model_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    run_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(TS)


class SweepBaseline(Base):
    """Where a series' baseline starts: ``reset`` (an accepted change: nights before
    ``job_id`` no longer count) or ``pin`` (the baseline is the named night ``job_id``,
    ``anefarm sweep baseline NAME --night DATE --label v2.3``). NULL series / device class /
    compute units: every one of the sweep."""

    __tablename__ = "sweep_baselines"
    __table_args__ = (Index("ix_sweep_baselines_sweep", "sweep_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sweep_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sweeps.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # reset | pin
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    series: Mapped[str | None] = mapped_column(String(256), nullable=True)
    device_class: Mapped[str | None] = mapped_column(String(32), nullable=True)
    compute_units: Mapped[str | None] = mapped_column(String(32), nullable=True)
    label: Mapped[str | None] = mapped_column(String(128), nullable=True)
    summary_id: Mapped[int | None] = mapped_column(
        ForeignKey("alert_summaries.id", ondelete="SET NULL"), nullable=True
    )
    by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(TS)
