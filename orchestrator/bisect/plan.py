"""When to bisect, and the probe runs that do it (coordinator side, inside ingest's
transaction; the batches are published after commit).

A user run is bisected when its job asks for it (`anefarm submit --bisect`), or — by
default — when its verdict is not FULL and no compute plan places its ops (iOS < 17.4),
or when plan and timing disagree. Its model's distinct op signatures are looked up in the
compatibility matrix (``matrix``) for the same chip, OS build, runner version and
simulated-or-real; only the signatures no cell knows and no queued probe covers get a
probe run: a one-op model (modelkit) in the same job, linked to the parent run, pinned to
the parent's device (the same OS build), published at probe priority (``dispatch``).
The probe runs planned together are packed into as few runner launches as the batch time
budget allows (``packing``; ``ANEFARM_PROBE_PACKING=0``: one launch each).
"""

from __future__ import annotations

import random
import tempfile
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

from sqlalchemy.orm import Session

from orchestrator import catalog
from orchestrator.artifacts import ArtifactStore
from orchestrator.bisect import matrix, packing
from orchestrator.bisect.mapping import OpRef
from orchestrator.bisect.matrix import Key
from orchestrator.errors import AnefarmError
from orchestrator.modelkit.inventory import LintFinding, OpInfo
from orchestrator.modelkit.materialize import materialize
from orchestrator.modelkit.probes import op_signature
from orchestrator.protocol import (
    ComputeUnits,
    ModelFormat,
    ModelRef,
    RunBatch,
    RunPurpose,
    RunSpec,
    Verdict,
    VerdictKind,
)
from orchestrator.settings import Settings
from orchestrator.store import models as db


def stored_lint(model: Any, chip: str) -> list[LintFinding]:
    """The lint findings stored with a model row (``LintFinding.to_json``) for one chip."""
    return [
        LintFinding.from_json(f)
        for f in ((model.inspect_json or {}).get("lint", []) if model is not None else [])
        if f.get("chip") == chip
    ]


def _model_ops(settings: Settings, model: Any) -> list[OpInfo]:
    """The model's ops: from the inventory stored at submit time, else read again."""
    stored = ((model.inspect_json or {}).get("inventory") or {}).get("ops") if model else None
    if stored is not None:
        return [OpInfo.from_json(op) for op in stored]
    from orchestrator import modelkit

    return modelkit.inspect_model(model_path(settings, model)).ops


def trigger(mode: str, verdict: Verdict) -> str | None:
    """Why this verdict is bisected, or None."""
    if mode == "never":
        return None
    if mode == "always":
        return "requested (--bisect)"
    if verdict.plan_timing_disagree:
        return "plan and timing disagree"
    if not verdict.plan_available and verdict.verdict is not VerdictKind.FULL:
        return f"verdict {verdict.verdict.value} without a compute plan: per-op placement unknown"
    return None


def chip_of(device_class: str) -> str:
    model = catalog.DEVICES.get(device_class)
    return model.chip if model else "unknown"


def model_path(settings: Settings, model: Any) -> Path:
    """The stored model as a path the coordinator can read (packages are extracted once)."""
    store = ArtifactStore(settings.resolved_artifact_dir, settings.max_model_bytes)
    ref = ModelRef(sha256=model.sha256, filename=model.filename, format=ModelFormat(model.format),
                   size_bytes=model.size_bytes, location="file:///")  # fmt: skip
    return materialize(store.verify(model.sha256), ref, settings.home / "coordinator-models")


def after_verdict(
    session: Session, run: Any, verdict: Verdict, *, settings: Settings
) -> list[RunBatch]:
    """Start the bisection of a user run whose verdict calls for it; the probe batches."""
    job = session.get(db.Job, run.job_id)
    why = trigger(job.bisect if job is not None else "auto", verdict)
    if why is None or run.purpose != RunPurpose.USER:
        return []
    key = Key(chip=chip_of(run.device_class), os_build=run.os_build or "unknown",
              runner_version=run.runner_version or "unknown", simulated=bool(run.simulated),
              device_class=run.device_class, os_version=run.os_version or "unknown")  # fmt: skip
    model = session.get(db.Model, run.model_sha256)
    try:
        ops = [
            OpRef(op.index, op.name, op.type, op_signature(op), op.flops)
            for op in _model_ops(settings, model)
        ]
        signatures = list(dict.fromkeys(op.signature for op in ops if op.signature))
        needed = {
            s
            for s in signatures
            if not matrix.evidence(session, s, key) and matrix.active_probe(session, s, key) is None
        }
        batches: list[RunBatch] = []
        skipped: dict[int, str] = {}
        if needed:  # only then is the model itself read (probes are cut from it)
            path = model_path(settings, model)
            batches, skipped = probe_runs(
                session, run, path, needed, key, settings=settings, repeat=1
            )
    except AnefarmError as error:
        run.bisect_state = "skipped"
        run.bisection = {"trigger": why, "error": str(error)}
        return []
    ops = [
        OpRef(op.index, op.name, op.type, None, op.flops, skipped[op.index])
        if op.index in skipped else op
        for op in ops
    ]  # fmt: skip
    run.bisect_state = "pending"
    run.bisection = {
        "trigger": why,
        "key": key.to_json(),
        "started_at": datetime.now(UTC).isoformat(),
        "probed": sum(len(b.members()) for b in batches),
        "ops": [asdict(op) for op in ops],
    }
    return batches


def probe_runs(
    session: Session,
    parent: Any,
    path: Path,
    signatures: set[str],
    key: Key,
    *,
    settings: Settings,
    repeat: int,
) -> tuple[list[RunBatch], dict[int, str]]:
    """Probe runs (and their batches, packed) for ``signatures`` of the parent's model; ops
    no probe can be built for come back with the reason, by op index."""
    from orchestrator import modelkit
    from orchestrator.dispatch import PreparedModel, upsert_model
    from orchestrator.runs.lifecycle import model_ref

    job = session.get(db.Job, parent.job_id)
    assert job is not None
    spec = probe_spec(job.spec)
    store = ArtifactStore(settings.resolved_artifact_dir, settings.max_model_bytes)
    lint = stored_lint(session.get(db.Model, parent.model_sha256), key.chip)
    # First everything that may fail (cut, store, inspect), then the rows: a failure leaves
    # no half-planned bisection in the transaction.
    built = []
    with tempfile.TemporaryDirectory(prefix="probes-") as scratch:
        index = modelkit.write_probes(path, Path(scratch), repeat=repeat, signatures=signatures)
        for probe in index.probes:
            probe_path = Path(scratch) / probe.file
            artifact = store.add(probe_path)
            inventory = modelkit.inspect_model(probe_path)
            findings = [f.to_json() for f in modelkit.lint(inventory, chips=[key.chip])]
            built.append(
                (probe, artifact, PreparedModel(probe_path, inventory, findings, [key.chip]))
            )
    now = datetime.now(UTC)
    batches: list[RunBatch] = []
    for probe, artifact, prepared in built:
        upsert_model(session, prepared, artifact)
        run_id = uuid4()
        session.add(
            db.Run(
                id=run_id, job_id=parent.job_id, model_sha256=artifact.sha256,
                device_class=parent.device_class, status=db.RunStatus.QUEUED, attempts=1,
                max_attempts=settings.max_attempts, created_at=now, queued_at=now,
                purpose=RunPurpose.PROBE,
                parent_run_id=parent.id, probe_signature=probe.signature, probe_repeat=repeat,
                pinned_udid=parent.udid,
                bisection={
                    "key": key.to_json(),
                    "op_type": probe.op_type,
                    "source_ops": probe.source_ops,
                    "source_names": probe.source_names[:20],
                    "lint": next(
                        (f.to_json() for f in lint if f.op_index in probe.source_ops), None
                    ),
                },
            )
        )  # fmt: skip
        batches.append(
            RunBatch(
                run_id=run_id, attempt=1, job_id=parent.job_id,
                model=model_ref(artifact, settings.resolved_artifact_url),
                device_class=parent.device_class, pinned_udid=parent.udid, spec=spec,
                purpose=RunPurpose.PROBE,
                input_seed=random.SystemRandom().randrange(2**31), created_at=now,
            )
        )  # fmt: skip
    session.flush()
    flops = {a.sha256: sum(op.flops or 0 for op in m.inventory.ops) for _, a, m in built}
    packed = packing.pack(batches, settings=settings, repeat=repeat, flops=flops)
    return packed, {s.op_index: s.reason for s in index.skipped}


def probe_spec(job_spec: dict[str, Any]) -> RunSpec:
    """The job's iterations and timeout, with every compute-units setting (a probe is
    placed by its timing signature) and the compute plan asked for."""
    spec = RunSpec.model_validate(job_spec)
    return spec.model_copy(update={"compute_units": list(ComputeUnits), "compute_plan": True})
