"""The tables. Enums are stored as their string values; ids of jobs and runs are UUIDs;
raw latency samples are kept (JSON) beside their statistics.

Statuses and states are StrEnum columns (``_enum_of``): stored as the same VARCHAR values
as before (migration 0006 changes no data), read back as members, and a value outside the
enum is refused on write. A member compares equal to its string, so ``run.status ==
"failed"`` keeps working.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Enum,
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
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from orchestrator.protocol import BatchOutcome


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class RunStatus(StrEnum):
    # No device of the class is known to the farm yet: the batch is not published until
    # one comes up (the coordinator's reaper), or the run fails after ANEFARM_DEVICE_WAIT_S.
    WAITING = "waiting"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class BisectMode(StrEnum):
    """A job's bisection: when the verdict needs it, always (`submit --bisect`), never."""

    AUTO = "auto"
    ALWAYS = "always"
    NEVER = "never"


class BisectState(StrEnum):
    """A user run's bisection (None: not considered yet)."""

    PENDING = "pending"
    DONE = "done"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"  # its job was cancelled while probes were on their way


# One delivery of a batch ends as the agent said (protocol.BatchOutcome).
AttemptOutcome = BatchOutcome

E = TypeVar("E", bound=StrEnum)


def _enum(length: int = 32) -> String:
    return String(length)


def _enum_of(kind: type[E], length: int) -> Enum:
    """A StrEnum column stored as VARCHAR(length) holding the members' values.

    No CHECK constraint (``create_constraint=False``): adding one to an existing SQLite
    table means rebuilding it, which with foreign keys on would cascade deletes (see
    migration 0006); the ORM refuses other values instead (``validate_strings``).
    """
    return Enum(
        kind,
        native_enum=False,
        create_constraint=False,
        validate_strings=True,
        values_callable=lambda members: [m.value for m in members],
        length=length,
    )


class Base(DeclarativeBase):
    pass


TS = DateTime(timezone=True)


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
    # A sweep night's run: its series name (the model's name in the sweep, kept across
    # retrained files with new sha256s). The series key is (series, device_class, a
    # measurement's compute_units, simulated); os_*, runner_version, udid and model_sha256
    # are tonight's conditions.
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


class ApiRole(StrEnum):
    """What an HTTP API token may do (issue 19), in order: each includes the ones before."""

    READ = "read"
    SUBMIT = "submit"
    ADMIN = "admin"


class ApiToken(Base):
    """A token of the HTTP API (``orchestrator.web.tokens``): only the sha256 of the
    token is kept, so a copy of the database lets nobody in."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    role: Mapped[ApiRole] = mapped_column(_enum_of(ApiRole, 16))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(TS)
    last_used_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)


# Regressions and alerts (issue 18; orchestrator/alerts) -----------------------------------


class AlertStatus(StrEnum):
    """A summary's triage status: untriaged → acknowledged → fixed | wontfix | invalid |
    infra, or accepted (the new normal: the baseline restarts from that night)."""

    UNTRIAGED = "untriaged"
    ACKNOWLEDGED = "acknowledged"
    FIXED = "fixed"
    WONTFIX = "wontfix"
    INVALID = "invalid"
    INFRA = "infra"
    ACCEPTED = "accepted"


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


class CheckResult(Base):
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
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    series: Mapped[str] = mapped_column(String(256))
    device_class: Mapped[str] = mapped_column(String(32))
    # "-" for checks that are not per compute-units setting (placement, failures).
    compute_units: Mapped[str] = mapped_column(String(32))
    simulated: Mapped[bool] = mapped_column(Boolean)
    check: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32))
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


class AlertFinding(Base):
    """A member of a summary: one series' check that changed, with its figures and what
    differed from the baseline."""

    __tablename__ = "alert_findings"
    __table_args__ = (Index("ix_alert_findings_summary", "summary_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    summary_id: Mapped[int] = mapped_column(ForeignKey("alert_summaries.id", ondelete="CASCADE"))
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    series: Mapped[str] = mapped_column(String(256))
    device_class: Mapped[str] = mapped_column(String(32))
    compute_units: Mapped[str] = mapped_column(String(32))
    simulated: Mapped[bool] = mapped_column(Boolean)
    check: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32))
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
