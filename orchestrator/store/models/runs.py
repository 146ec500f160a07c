"""Models, jobs, runs and what a run leaves: attempts, measurements, placements, verdicts,
raw results, probe results; the devices that ran them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from orchestrator.store.models.base import (
    TS,
    AttemptOutcome,
    Base,
    BisectMode,
    BisectState,
    JobStatus,
    RunStatus,
    _enum,
    _enum_of,
)
from orchestrator.store.models.sweeps import NightTrigger


class Model(Base):
    """A model artifact, by the sha256 of its stored bytes."""

    __tablename__ = "models"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    filename: Mapped[str] = mapped_column(String(256))
    format: Mapped[str] = mapped_column(_enum(16))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(TS)
    inspect_json: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class ModelOp(Base):
    __tablename__ = "model_ops"
    __table_args__ = (UniqueConstraint("model_sha256", "index"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_sha256: Mapped[str] = mapped_column(ForeignKey("models.sha256", ondelete="CASCADE"))
    index: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(512))
    op_type: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    input_shapes: Mapped[list[Any]] = mapped_column(JSON)
    output_shapes: Mapped[list[Any]] = mapped_column(JSON)
    flops: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    weight_bytes: Mapped[int] = mapped_column(BigInteger, default=0)


class Job(Base):
    __tablename__ = "jobs"
    # A sweep has one night per scheduled time, whoever fires it (two coordinators, a
    # person): the last guard. An index, not a table constraint, so that SQLite needs no
    # rebuild of ``jobs`` (see migration 0006); NULLs (plain jobs) never collide.
    __table_args__ = (
        Index("uq_jobs_sweep_scheduled_for", "sweep_id", "scheduled_for", unique=True),
    )
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    created_at: Mapped[datetime] = mapped_column(TS)
    status: Mapped[JobStatus] = mapped_column(_enum_of(JobStatus, 32), default=JobStatus.QUEUED)
    selector: Mapped[str] = mapped_column(String(512))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    purpose: Mapped[str] = mapped_column(_enum(16), default="user")
    parent_job_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("jobs.id"), nullable=True)
    # auto: bisect when the verdict needs it; always: `submit --bisect`; never: `--no-bisect`.
    bisect: Mapped[BisectMode] = mapped_column(
        _enum_of(BisectMode, 16), default=BisectMode.AUTO, server_default=BisectMode.AUTO.value
    )
    sweep_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("sweeps.id"), nullable=True)
    # A sweep's night (sweep_id set): the logical time it is the night of, when it really
    # started, whether it ran late (a fire missed while no coordinator ran), who started it.
    scheduled_for: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    # Server default only: rows written by older code (Core inserts) leave it out.
    late: Mapped[bool] = mapped_column(Boolean, server_default=false())
    trigger: Mapped[NightTrigger | None] = mapped_column(_enum_of(NightTrigger, 16), nullable=True)


class Run(Base):
    """One model on one device class; its attempts are batches on devices."""

    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_job", "job_id"), Index("ix_runs_status", "status"))
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    model_sha256: Mapped[str] = mapped_column(ForeignKey("models.sha256"))
    device_class: Mapped[str] = mapped_column(String(32))
    status: Mapped[RunStatus] = mapped_column(_enum_of(RunStatus, 32), default=RunStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    error_kind: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    infra_failure: Mapped[bool] = mapped_column(Boolean, default=False)
    udid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    agent: Mapped[str | None] = mapped_column(String(256), nullable=True)
    simulated: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    os_version: Mapped[str | None] = mapped_column(String(32), nullable=True)
    os_build: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(TS)
    started_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    purpose: Mapped[str] = mapped_column(_enum(16), default="user")
    parent_run_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("runs.id"), nullable=True)
    probe_signature: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # A probe run's copies of its op (1, or more when lifted above the timer's noise).
    probe_repeat: Mapped[int | None] = mapped_column(Integer, nullable=True)
    runner_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The hottest ProcessInfo.thermalState the runner reported for the run (the worse of
    # before and after: nominal | fair | serious | critical); NULL: not reported (a run
    # that never reached a runner, or stored before migration 0011) — shown as "unknown".
    # A condition attribution compares: serious and critical throttle every latency.
    thermal_state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # A sweep night's run: its series name (the model's name in the sweep, kept across
    # retrained files with new sha256s). The series key is (series, device_class, a
    # measurement's compute_units, simulated); os_*, runner_version, udid, thermal_state and
    # model_sha256 are tonight's conditions.
    series: Mapped[str | None] = mapped_column(String(256), nullable=True)
    # The device a queued run's batch waits for, when pinned (a retry, a probe): the
    # coordinator's reaper re-routes it when that device goes away.
    pinned_udid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # When the current attempt's batch was (or, with a retry's backoff, will be) published:
    # the reaper re-publishes a queued run whose message Redis no longer holds only after a
    # grace period past this (orchestrator/reaper.py).
    queued_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    # A waiting run (no device of its class yet) waits since then.
    waiting_since: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    # A user run's bisection: pending | done | skipped | cancelled, and its plan (ops, signatures, the
    # compatibility-matrix key) in ``bisection``; a probe run keeps its key there too.
    # Read back as a BisectState; `| str` while dispatch.cancel still assigns the value
    # (validated all the same): narrow it once every writer uses the members.
    bisect_state: Mapped[BisectState | str | None] = mapped_column(
        _enum_of(BisectState, 16), nullable=True
    )
    bisection: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class RunAttempt(Base):
    """One delivery of a run's batch to a device. Unique per (run, attempt): the key
    that makes ingest idempotent."""

    __tablename__ = "run_attempts"
    __table_args__ = (UniqueConstraint("run_id", "attempt"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    udid: Mapped[str] = mapped_column(String(64))
    agent: Mapped[str] = mapped_column(String(256))
    outcome: Mapped[AttemptOutcome] = mapped_column(_enum_of(AttemptOutcome, 32))
    failure_kind: Mapped[str | None] = mapped_column(String(64), nullable=True)
    failure_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    diagnostics: Mapped[list[Any]] = mapped_column(JSON, default=list)
    started_at: Mapped[datetime] = mapped_column(TS)
    finished_at: Mapped[datetime] = mapped_column(TS)


class Measurement(Base):
    __tablename__ = "measurements"
    __table_args__ = (UniqueConstraint("run_id", "compute_units"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    compute_units: Mapped[str] = mapped_column(_enum())
    cold_load_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    # fresh_compile / fresh_process / warm_cache (protocol.ColdLoadProvenance); NULL before 0005.
    cold_load_provenance: Mapped[str | None] = mapped_column(String(16), nullable=True)
    warm_load_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    first_prediction_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    samples_ms: Mapped[list[Any]] = mapped_column(JSON, default=list)
    count: Mapped[int] = mapped_column(Integer, default=0)
    min: Mapped[float | None] = mapped_column(Float, nullable=True)
    max: Mapped[float | None] = mapped_column(Float, nullable=True)
    mean: Mapped[float | None] = mapped_column(Float, nullable=True)
    std: Mapped[float | None] = mapped_column(Float, nullable=True)
    p50: Mapped[float | None] = mapped_column(Float, nullable=True)
    p90: Mapped[float | None] = mapped_column(Float, nullable=True)
    p99: Mapped[float | None] = mapped_column(Float, nullable=True)
    error_kind: Mapped[str | None] = mapped_column(String(32), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)


class OpPlacement(Base):
    __tablename__ = "op_placements"
    __table_args__ = (UniqueConstraint("run_id", "source", "index"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(_enum(16))
    index: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(512))
    op_type: Mapped[str] = mapped_column(String(128))
    preferred: Mapped[str | None] = mapped_column(_enum(16), nullable=True)
    supported: Mapped[list[Any]] = mapped_column(JSON, default=list)
    cost: Mapped[float | None] = mapped_column(Float, nullable=True)


class Device(Base):
    __tablename__ = "devices"
    udid: Mapped[str] = mapped_column(String(64), primary_key=True)
    product_type: Mapped[str] = mapped_column(String(32))
    chip: Mapped[str] = mapped_column(String(32))
    os_version: Mapped[str | None] = mapped_column(String(32), nullable=True)
    os_build: Mapped[str | None] = mapped_column(String(32), nullable=True)
    name: Mapped[str | None] = mapped_column(String(256), nullable=True)
    simulated: Mapped[bool] = mapped_column(Boolean, default=False)
    agent: Mapped[str | None] = mapped_column(String(256), nullable=True)
    state: Mapped[str] = mapped_column(_enum(), default="ready")
    reasons: Mapped[list[Any]] = mapped_column(JSON, default=list)
    infra_failures_in_row: Mapped[int] = mapped_column(Integer, default=0)
    last_seen: Mapped[datetime | None] = mapped_column(TS, nullable=True)


class Verdict(Base):
    __tablename__ = "verdicts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"), unique=True
    )
    model_sha256: Mapped[str] = mapped_column(String(64))
    device_class: Mapped[str] = mapped_column(String(32))
    chip: Mapped[str] = mapped_column(String(32))
    os_version: Mapped[str] = mapped_column(String(32))
    simulated: Mapped[bool] = mapped_column(Boolean)
    verdict: Mapped[str] = mapped_column(_enum(16))
    ane_share: Mapped[float | None] = mapped_column(Float, nullable=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(TS)


class RawResult(Base):
    """A result that failed validation, kept as received for diagnosis."""

    __tablename__ = "raw_results"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("runs.id"), nullable=True)
    attempt: Mapped[int | None] = mapped_column(Integer, nullable=True)
    received_at: Mapped[datetime] = mapped_column(TS)
    payload: Mapped[str] = mapped_column(Text)
    error: Mapped[str] = mapped_column(Text)


class ProbeResult(Base):
    """Placement of one op signature on a chip and OS build (compatibility matrix): one row
    per final probe run, so a cell's evidence count is its number of rows."""

    __tablename__ = "probe_results"
    __table_args__ = (Index("ix_probe_lookup", "signature", "chip", "os_build"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    signature: Mapped[str] = mapped_column(String(64))
    chip: Mapped[str] = mapped_column(String(32))
    os_build: Mapped[str] = mapped_column(String(32))
    runner_version: Mapped[str] = mapped_column(String(64))
    simulated: Mapped[bool] = mapped_column(Boolean)
    unit: Mapped[str] = mapped_column(_enum(16))
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(TS)
    # placed | inconclusive | failed (the probe itself failed on the device)
    status: Mapped[str] = mapped_column(_enum(16), default="placed", server_default="placed")
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    op_type: Mapped[str | None] = mapped_column(String(128), nullable=True)
    device_class: Mapped[str | None] = mapped_column(String(32), nullable=True)
    os_version: Mapped[str | None] = mapped_column(String(32), nullable=True)
    repeat: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # The static prediction for the same op on the same chip, kept beside the measurement.
    lint_unit: Mapped[str | None] = mapped_column(String(16), nullable=True)  # None: ANE
    lint_rule: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lint_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    lint_fix: Mapped[str | None] = mapped_column(Text, nullable=True)
