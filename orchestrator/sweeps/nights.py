"""A sweep's night: one job (``jobs.sweep_id``, ``scheduled_for``) through the submit path.

``start_night`` is what both `anefarm sweep run` and the coordinator's scheduler
(``orchestrator.sweeps.schedule``) call. It plans the night (``plan_night``: tonight's
files, their sha256s, the farm's classes, what is missing and why), then stores the job,
its runs (each with its series name) and the missing records in one transaction through
``dispatch.submit`` and publishes the batches through the one publish path
(``protocol.transport``). One night per (sweep, scheduled time): checked first, and the
unique index ``uq_jobs_sweep_scheduled_for`` is the last guard (``NightExists``).

**Runs per night** (the definition's ``repeats``, else ``ANEFARM_SWEEP_REPEATS``): each
series gets that many runs tonight, added to the night's transaction and published right
after their nightly run by ``orchestrator.sweeps.repeats``.

Cheap at scale: a model is hashed once (the artifact store's copy is its hash), inspected
only when its sha256 is new to the database (stored model rows are reused, one query for
all), linted only for chips not linted before; the job, its runs and the missing records
are one transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from celery import Celery
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from orchestrator import catalog
from orchestrator.artifacts import ArtifactStore, StoredArtifact
from orchestrator.artifacts.store import FORMATS, artifact_digest, follow_link
from orchestrator.dispatch import (
    Prepared,
    PreparedModel,
    SubmitOptions,
    SubmittedRun,
    make_spec,
    submit,
)
from orchestrator.errors import AnefarmError, NotFound, UsageError
from orchestrator.protocol import RunPurpose, RunSpec, livestate
from orchestrator.protocol.transport import CeleryPublisher, Publisher
from orchestrator.selection import FarmView, farm_view, resolve_classes
from orchestrator.settings import Settings
from orchestrator.store import models as db
from orchestrator.store.engine import session_scope
from orchestrator.sweeps import missing as holes
from orchestrator.sweeps.definition import Found, SweepDefinition, resolve_models
from orchestrator.sweeps.repeats import RepeatPublisher, Repeats, live_devices, usable_devices

log = logging.getLogger(__name__)


class NightExists(AnefarmError):
    """The sweep already has a night for this scheduled time (another coordinator, or an
    earlier `sweep run --at`, started it)."""

    kind = "night_exists"

    def __init__(self, sweep: str, scheduled_for: datetime, job_id: UUID | None = None) -> None:
        self.sweep, self.scheduled_for, self.job_id = sweep, scheduled_for, job_id
        which = f" (job {job_id})" if job_id else ""
        super().__init__(
            f"sweep {sweep!r} already has its night of {scheduled_for.isoformat()}{which}",
            hint="`anefarm sweep show` lists its nights; --at another time records another",
        )


def utc(moment: datetime) -> datetime:
    """An aware UTC time (a naive one is taken as UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# Planning --------------------------------------------------------------------------------


@dataclass
class NightPlan:
    sweep_id: UUID
    sweep: str
    definition: SweepDefinition
    scheduled_for: datetime
    night: date
    spec: RunSpec
    classes: list[catalog.DeviceModel]
    models: list[PreparedModel]
    missing: list[holes.MissingSeries] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    inspected: int = 0  # models inspected tonight (new sha256s); the rest were reused


def load_sweep(session: Session, name: str) -> db.Sweep:
    sweep = session.scalars(select(db.Sweep).where(db.Sweep.name == name)).one_or_none()
    if sweep is None:
        raise NotFound(f"no sweep {name!r}", hint="`anefarm sweep list` lists the sweeps")
    return sweep


def existing_night(session: Session, sweep_id: UUID, scheduled_for: datetime) -> UUID | None:
    found: UUID | None = session.scalars(
        select(db.Job.id).where(db.Job.sweep_id == sweep_id, db.Job.scheduled_for == scheduled_for)
    ).first()
    return found


def _inventory_from_json(data: dict[str, Any]) -> Any:
    """A stored inventory (``ModelInventory.to_json``) back as the object lint reads."""
    from orchestrator.modelkit.inventory import FeatureInfo, ModelInventory, OpInfo

    return ModelInventory(
        path=Path(data["path"]),
        sha256=data["sha256"],
        format=data["format"],
        model_type=data["model_type"],
        spec_version=data["spec_version"],
        min_deployment_target=data["min_deployment_target"],
        inputs=[FeatureInfo(**f) for f in data["inputs"]],
        outputs=[FeatureInfo(**f) for f in data["outputs"]],
        ops=[OpInfo.from_json(op) for op in data["ops"]],
        const_count=data["const_count"],
        size_bytes=data["size_bytes"],
        compute_precision=data.get("compute_precision"),
        notes=list(data.get("notes", [])),
        content_sha256=data.get("content_sha256"),
    )


def _stored(store: ArtifactStore, path: Path) -> StoredArtifact:
    """The model in the artifact store: hashed by reading it once; copied in only when
    its sha256 is new (an unchanged model of a big sweep is not written again nightly)."""
    sha256, size = artifact_digest(path, store.max_bytes)
    if not store.has(sha256):
        return store.add(path)
    real = follow_link(Path(path))
    return StoredArtifact(sha256, real.name, FORMATS[real.suffix.lower()], size,
                          store.path_of(sha256))  # fmt: skip


def _prepare_models(
    session: Session, found: list[Found], chips: list[str], store: ArtifactStore
) -> tuple[list[PreparedModel], list[holes.MissingSeries], int]:
    """Hash each file once (into the artifact store), reuse known sha256s' rows, inspect
    and lint only what is new."""
    from orchestrator import modelkit

    stored: list[tuple[Found, Any]] = []
    missing: list[holes.MissingSeries] = []
    for item in found:
        try:
            stored.append((item, _stored(store, item.path)))
        except (AnefarmError, OSError) as error:
            missing.append(
                holes.MissingSeries(item.series, None, holes.Kind.MODEL_UNREADABLE,
                              f"cannot read {item.path}: {error}", str(item.path))
            )  # fmt: skip
    shas = {artifact.sha256 for _, artifact in stored}
    known = {
        m.sha256: m for m in session.scalars(select(db.Model).where(db.Model.sha256.in_(shas)))
    }
    prepared: list[PreparedModel] = []
    inspected: dict[str, tuple[Any, list[dict[str, Any]]]] = {}
    for item, artifact in stored:
        row = known.get(artifact.sha256)
        stored_json = (row.inspect_json or {}) if row is not None else {}
        if row is not None and stored_json.get("inventory"):
            linted = set(stored_json.get("linted_chips", []))
            todo = [c for c in chips if c not in linted]
            if not todo:
                prepared.append(PreparedModel(item.path, None, [], [], item.series, artifact))
                continue
            try:
                inventory = _inventory_from_json(stored_json["inventory"])
                findings = [f.to_json() for f in modelkit.lint(inventory, chips=todo)]
            except (KeyError, TypeError, AnefarmError) as error:
                log.warning("stored inventory of %s unusable (%s): inspecting again",
                            artifact.sha256[:12], error)  # fmt: skip
            else:
                prepared.append(
                    PreparedModel(item.path, None, findings, todo, item.series, artifact)
                )
                continue
        if artifact.sha256 not in inspected:
            try:
                inventory = modelkit.inspect_model(item.path)
            except AnefarmError as error:
                missing.append(
                    holes.MissingSeries(item.series, None, holes.Kind.MODEL_UNREADABLE,
                                  f"cannot inspect {item.path}: {error.one_line()}",
                                  str(item.path), artifact.sha256)
                )  # fmt: skip
                continue
            findings = [f.to_json() for f in modelkit.lint(inventory, chips=chips)]
            inspected[artifact.sha256] = (inventory, findings)
        inventory, findings = inspected[artifact.sha256]
        prepared.append(PreparedModel(item.path, inventory, findings, chips, item.series, artifact))
    return prepared, missing, len(inspected)


def night_spec(definition: SweepDefinition, night: date) -> RunSpec:
    options = SubmitOptions(
        selector=definition.devices,
        compute_units=tuple(definition.compute_units),
        iterations=definition.iterations,
        warmup=definition.warmup,
        timeout_s=definition.timeout_s,
        bisect=definition.bisect,
    )
    # The simulated farm follows its timeline by the logical night (RunSpec.night).
    return make_spec(options).model_copy(update={"night": night})


def plan_night(
    session: Session,
    sweep: db.Sweep,
    scheduled_for: datetime,
    farm: FarmView | None,
    *,
    settings: Settings,
) -> NightPlan:
    """What tonight runs and what is missing; writes nothing but artifacts."""
    definition = SweepDefinition.model_validate(sweep.definition)
    scheduled_for = utc(scheduled_for)
    night = definition.night_of(scheduled_for)
    base = Path(sweep.source_path).parent if sweep.source_path else None
    resolved = resolve_models(definition, base)
    found = [m for m in resolved if isinstance(m, Found)]
    # Classes: those the farm has for the selector with a live device now; the rest (a
    # named class with no device up, a recent class gone) are missing tonight.
    try:
        classes, waiting, warnings = resolve_classes(
            definition.devices, farm, device_wait_s=settings.device_wait_s
        )
        no_class = None
    except UsageError as error:
        classes, waiting, warnings = [], set(), [error.one_line()]
        no_class = error.one_line()
    live = [c for c in classes if c.product_type not in waiting]
    live_names = {c.product_type for c in live}
    before = holes.recent(session, sweep.id, scheduled_for)
    absent = {c.product_type for c in classes if c.product_type in waiting}
    absent |= {c for c in before.classes - live_names if holes.selected(definition, c)}
    gone = holes.gone_models(definition, resolved, before)
    store = ArtifactStore(settings.resolved_artifact_dir, settings.max_model_bytes)
    chips = sorted({c.chip for c in live})
    prepared, unreadable, inspected = _prepare_models(session, found, chips, store)
    tonight = [(m.series or m.path.name, str(m.path), m.artifact.sha256) for m in prepared]
    records = holes.per_class(gone + unreadable, tonight, live=live_names, absent=absent,
                                no_class_reason=no_class)  # fmt: skip
    return NightPlan(
        sweep_id=sweep.id,
        sweep=sweep.name,
        definition=definition,
        scheduled_for=scheduled_for,
        night=night,
        spec=night_spec(definition, night),
        classes=live,
        models=prepared,
        missing=records,
        warnings=warnings,
        inspected=inspected,
    )


# Starting --------------------------------------------------------------------------------


def _farm(settings: Settings, sessions: sessionmaker[Session]) -> FarmView | None:
    if not settings.broker_url:
        return farm_view(None, sessions)

    return farm_view(livestate.connect(settings.broker_url), sessions)


def start_night(
    *,
    settings: Settings,
    sessions: sessionmaker[Session],
    app: Celery | None,
    sweep_name: str,
    scheduled_for: datetime,
    late: bool = False,
    trigger: str = "manual",
    publisher: Publisher | None = None,
    farm: FarmView | None = None,
    devices: Sequence[Any] | None = None,
) -> UUID:
    """Create the night of ``sweep_name`` for ``scheduled_for``: its job, runs and missing
    records (one transaction), then publish its batches. Raises NightExists when the sweep
    already has that night, NotFound for an unknown sweep. ``devices``: the live devices
    the repeats are spread over (livestate.DeviceStatus; default: read from Redis)."""
    scheduled_for = utc(scheduled_for)
    trigger = db.NightTrigger(trigger)
    with sessions() as session:
        sweep = load_sweep(session, sweep_name)
        found = existing_night(session, sweep.id, scheduled_for)
        if found is not None:
            raise NightExists(sweep_name, scheduled_for, found)
        if farm is None:
            farm = _farm(settings, sessions)
        plan = plan_night(session, sweep, scheduled_for, farm, settings=settings)
    return submit_night(plan, settings=settings, sessions=sessions, app=app, late=late,
                        trigger=trigger, publisher=publisher, devices=devices)  # fmt: skip


def submit_night(
    plan: NightPlan,
    *,
    settings: Settings,
    sessions: sessionmaker[Session],
    app: Celery | None,
    late: bool = False,
    trigger: db.NightTrigger = db.NightTrigger.MANUAL,
    publisher: Publisher | None = None,
    devices: Sequence[Any] | None = None,
) -> UUID:
    if publisher is None:
        if app is None:
            raise ValueError("start a night with a Celery app or a publisher")
        publisher = CeleryPublisher(app)
    now = datetime.now(UTC)
    count = plan.definition.runs_per_night(settings.sweep_repeats)
    if count > 1 and devices is None:
        devices = live_devices(settings)
    repeats = Repeats(count, usable_devices(devices or []), settings)
    missing = holes.adder(plan.missing, now)

    def before_commit(session: Session, job_id: UUID, submitted: list[SubmittedRun]) -> None:
        repeats.add(session, job_id, submitted)
        missing(session, job_id, submitted)

    prepared = Prepared(
        spec=plan.spec,
        classes=plan.classes,
        models=plan.models,
        selector=plan.definition.devices,
        purpose=RunPurpose.USER,
        warnings=plan.warnings,
        bisect=plan.definition.bisect,
        job_fields={
            "sweep_id": plan.sweep_id,
            "scheduled_for": plan.scheduled_for,
            "started_at": now,
            "late": late,
            "trigger": trigger,
        },
        before_commit=before_commit,
    )
    try:
        outcome = submit(prepared, settings=settings, sessions=sessions, app=app,
                         publisher=RepeatPublisher(publisher, repeats))  # fmt: skip
    except IntegrityError:
        with sessions() as session:
            job_id = existing_night(session, plan.sweep_id, plan.scheduled_for)
        if job_id is None:
            raise
        raise NightExists(plan.sweep, plan.scheduled_for, job_id) from None
    if not outcome.runs:
        _finish_empty(sessions, outcome.job_id)
    return outcome.job_id


def _finish_empty(sessions: sessionmaker[Session], job_id: UUID) -> None:
    """A night with no run at all (every series missing) is done at once: nothing will
    ever end it otherwise."""
    with session_scope(sessions) as session:
        job = session.get(db.Job, job_id)
        if job is not None and job.status == db.JobStatus.QUEUED:
            job.status = db.JobStatus.DONE
