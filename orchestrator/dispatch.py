"""Submit: validate models and parameters, store the job and its runs, publish batches.

Everything is checked before anything is written or enqueued: a corrupt model, an
unknown device selector or nonsense parameters leave no trace. Then: artifacts into
the content-addressed store, job and runs into the database (one transaction), and
one ``RunBatch`` per (model, device class) onto ``device.<ProductType>`` — all
compute-units settings of that model in one batch, so the runner launches once.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import redis
from celery import Celery
from pydantic import ValidationError
from pydantic_core import to_jsonable_python
from sqlalchemy.orm import Session, sessionmaker

from orchestrator import catalog, failpoints
from orchestrator.artifacts import ArtifactStore
from orchestrator.errors import NotFound, UsageError
from orchestrator.protocol import ComputeUnits, RunBatch, RunPurpose, RunSpec, livestate
from orchestrator.protocol.transport import CeleryPublisher, Publisher
from orchestrator.runs import cancel_job, model_ref
from orchestrator.selection import LIVE, FarmView, resolve_classes
from orchestrator.settings import Settings
from orchestrator.store import models as db
from orchestrator.store.engine import session_scope

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SubmitOptions:
    selector: str = LIVE
    compute_units: tuple[ComputeUnits, ...] = tuple(ComputeUnits)
    iterations: int = 50
    warmup: int = 5
    timeout_s: float = 600.0
    purpose: RunPurpose = RunPurpose.USER
    bisect: str = "auto"  # auto | always | never (orchestrator.bisect.plan.trigger)
    # process | fresh_compile: what each setting's cold load is (protocol.RunnerManifest).
    cold_load: str = "process"


BISECT_MODES = ("auto", "always", "never")


def parse_compute_units(text: str) -> tuple[ComputeUnits, ...]:
    """``SubmitOptions.compute_units`` from comma-separated settings, as the CLI's
    ``--compute-units`` and the API's ``compute_units`` field give them."""
    units = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            units.append(ComputeUnits(part))
        except ValueError:
            raise UsageError(
                f"unknown compute units {part!r}",
                hint="choose from " + ",".join(u.value for u in ComputeUnits),
            ) from None
    if not units:
        raise UsageError("no compute units given")
    return tuple(units)


@dataclass
class PreparedModel:
    path: Path
    # orchestrator.modelkit.ModelInventory; None when the model's row (same sha256) is
    # reused as stored: a sweep's night inspects each sha256 once (orchestrator.sweeps).
    inventory: Any
    lint: list[dict[str, Any]]
    chips: list[str] = field(default_factory=list)  # what ``lint`` was computed for
    # A sweep night's model: its series name, and the artifact already stored (hashed once).
    series: str | None = None
    artifact: Any = None  # orchestrator.artifacts.StoredArtifact


@dataclass
class Prepared:
    spec: RunSpec
    classes: list[catalog.DeviceModel]
    models: list[PreparedModel]
    selector: str
    purpose: RunPurpose
    warnings: list[str] = field(default_factory=list)
    bisect: str = "auto"
    # Classes with no live device: their runs are stored as waiting, not published.
    waiting: set[str] = field(default_factory=set)
    # A sweep's night: more columns of the job (sweep_id, scheduled_for, …), and rows to
    # add in the same transaction (missing records) once the job and runs are there.
    job_fields: dict[str, Any] = field(default_factory=dict)
    before_commit: Callable[[Session, UUID, list[SubmittedRun]], None] | None = None


@dataclass
class SubmittedRun:
    run_id: UUID
    model: str
    device_class: str
    waiting: bool = False


@dataclass
class SubmitOutcome:
    job_id: UUID
    runs: list[SubmittedRun]
    warnings: list[str]


def make_spec(options: SubmitOptions) -> RunSpec:
    try:
        return RunSpec(
            compute_units=list(options.compute_units),
            iterations=options.iterations,
            warmup=options.warmup,
            timeout_s=options.timeout_s,
            cold_load=options.cold_load,
        )
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'spec'}: {e['msg']}" for e in error.errors()
        )
        raise UsageError(f"invalid run parameters: {problems}") from error


def prepare(
    model_paths: Sequence[Path],
    options: SubmitOptions,
    farm: FarmView | None,
    *,
    device_wait_s: float = 12 * 3600.0,
) -> Prepared:
    """Validate everything; write nothing."""
    from orchestrator import modelkit

    if not model_paths:
        raise UsageError("no model given")
    if options.bisect not in BISECT_MODES:
        raise UsageError(
            f"unknown bisect mode {options.bisect!r}", hint=f"choose {', '.join(BISECT_MODES)}"
        )
    spec = make_spec(options)
    classes, waiting, warnings = resolve_classes(
        options.selector, farm, device_wait_s=device_wait_s
    )
    chips = sorted({c.chip for c in classes})
    prepared = []
    for path in model_paths:
        inventory = modelkit.inspect_model(Path(path))
        findings = modelkit.lint(inventory, chips=chips)
        prepared.append(
            PreparedModel(
                path=Path(path),
                inventory=inventory,
                lint=[f.to_json() for f in findings],
                chips=chips,
            )
        )
    return Prepared(
        spec, classes, prepared, options.selector, options.purpose, warnings, options.bisect,
        waiting,
    )  # fmt: skip


def submit(
    prepared: Prepared,
    *,
    settings: Settings,
    sessions: sessionmaker[Session],
    app: Celery,
    publisher: Publisher | None = None,
) -> SubmitOutcome:
    """Store artifacts, job and runs, then publish one batch per (model, device class)."""
    publisher = publisher or CeleryPublisher(app)
    store = ArtifactStore(settings.resolved_artifact_dir, settings.max_model_bytes)
    stored = [m.artifact or store.add(m.path) for m in prepared.models]
    job_id = uuid4()
    batches: list[RunBatch] = []
    submitted: list[SubmittedRun] = []
    now = datetime.now(UTC)
    with session_scope(sessions) as session:
        session.add(
            db.Job(
                id=job_id,
                created_at=now,
                status=db.JobStatus.QUEUED,
                selector=prepared.selector,
                spec=prepared.spec.model_dump(mode="json"),
                purpose=prepared.purpose,
                bisect=prepared.bisect,
                **prepared.job_fields,
            )
        )
        for model, artifact in zip(prepared.models, stored, strict=True):
            upsert_model(session, model, artifact)
            ref = model_ref(artifact, settings.resolved_artifact_url)
            for device_class in prepared.classes:
                run_id = uuid4()
                waits = device_class.product_type in prepared.waiting
                session.add(
                    db.Run(
                        id=run_id,
                        job_id=job_id,
                        model_sha256=artifact.sha256,
                        device_class=device_class.product_type,
                        status=db.RunStatus.WAITING if waits else db.RunStatus.QUEUED,
                        attempts=1,
                        max_attempts=settings.max_attempts,
                        created_at=now,
                        queued_at=None if waits else now,
                        waiting_since=now if waits else None,
                        purpose=prepared.purpose,
                        series=model.series,
                    )
                )
                submitted.append(
                    SubmittedRun(run_id, model.series or model.path.name,
                                 device_class.product_type, waits)
                )  # fmt: skip
                if waits:
                    continue  # published by the coordinator's reaper once a device is up
                batches.append(
                    RunBatch(
                        run_id=run_id,
                        attempt=1,
                        job_id=job_id,
                        model=ref,
                        device_class=device_class.product_type,
                        spec=prepared.spec,
                        purpose=prepared.purpose,
                        input_seed=random.SystemRandom().randrange(2**31),
                        created_at=now,
                    )
                )
        if prepared.before_commit is not None:
            session.flush()
            prepared.before_commit(session, job_id, submitted)
    # A crash (or a broker that fails) between the commit above and these publishes
    # leaves queued runs without a message: the coordinator's reaper re-publishes them.
    failpoints.hit(failpoints.SUBMIT_AFTER_COMMIT)
    for batch in batches:
        publisher.batch(batch)
    return SubmitOutcome(job_id=job_id, runs=submitted, warnings=prepared.warnings)


def upsert_model(session: Session, model: PreparedModel, artifact: Any) -> None:
    inventory = model.inventory
    existing = session.get(db.Model, artifact.sha256)
    if existing is not None:
        # Lint for other chips may have been computed before: keep it; the chips linted
        # now are replaced whole (a rule that no longer fires must not linger).
        stored = existing.inspect_json or {}
        previous = stored.get("lint", [])
        linted = set(model.chips) | {f["chip"] for f in model.lint}
        if inventory is None and not linted:
            return  # reused as stored (a sweep's unchanged model): nothing new to write
        kept = [f for f in previous if f["chip"] not in linted]
        # Which chips lint has run for (a chip with no finding leaves no other trace).
        chips = sorted(set(stored.get("linted_chips", [])) | set(model.chips))
        existing.inspect_json = {
            "inventory": inventory.to_json() if inventory is not None else stored["inventory"],
            "lint": kept + model.lint,
            "linted_chips": chips,
        }
        return
    assert inventory is not None, "a model seen for the first time is inspected"
    inspect_json = {
        "inventory": inventory.to_json(),
        "lint": model.lint,
        "linted_chips": sorted(model.chips),
    }
    session.add(
        db.Model(
            sha256=artifact.sha256,
            filename=artifact.filename,
            format=artifact.format,
            size_bytes=artifact.size_bytes,
            created_at=datetime.now(UTC),
            inspect_json=inspect_json,
        )
    )
    for op in inventory.ops:
        session.add(
            db.ModelOp(
                model_sha256=artifact.sha256,
                index=op.index,
                name=op.name[:512],
                op_type=op.type,
                kind=op.kind,
                # Odd values (numpy scalars, enums) become their string form.
                params=to_jsonable_python(op.params, fallback=str),
                input_shapes=[t.shape for t in op.inputs],
                output_shapes=[t.shape for t in op.outputs],
                flops=op.flops,
                weight_bytes=op.weight_bytes,
            )
        )


def cancel(
    job_id: UUID, *, sessions: sessionmaker[Session], client: redis.Redis | None
) -> list[str]:
    """Cancel every unfinished run of a job; the run ids cancelled.

    The database is the truth and is changed first, so this works when the broker is
    gone. With a broker, the job is also marked cancelled there: workers skip its batches
    still in a queue, and a result still on its way is dropped by ingest (its run is final).
    """
    with session_scope(sessions) as session:
        job = session.get(db.Job, job_id)
        if job is None:
            raise NotFound(f"no job {job_id}", hint="`anefarm jobs` lists the jobs")
        cancelled = cancel_job(session, job)
    if client is not None:
        livestate.mark_cancelled(client, str(job_id))
        livestate.mark_final(client, cancelled, ttl_s=livestate.CANCEL_TTL_S)
    return cancelled
