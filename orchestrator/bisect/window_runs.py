"""Context search's probe runs: which windows to cut (``windows``: the runs beside a cause),
and one run per window (or prefix) cut from the parent's model, stored and linted like any
model, pinned to the parent's device, packed into runner launches (``packing``). Split from
``context`` (which decides when to cut and reads the windows) and ``prefix_search``."""

from __future__ import annotations

import random
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

from sqlalchemy.orm import Session

from orchestrator.bisect import packing
from orchestrator.bisect.mapping import ANE, OpByProbe
from orchestrator.bisect.placement import GPU_OR_CPU, ProbeStatus
from orchestrator.bisect.plan import model_path, probe_spec
from orchestrator.errors import UsageError
from orchestrator.protocol import ComputeUnit, RunBatch, RunPurpose
from orchestrator.settings import Settings
from orchestrator.store import models as db

GPU_SIDE = {str(ComputeUnit.GPU), GPU_OR_CPU}


@dataclass(frozen=True)
class Window:
    """Ops ``start`` … ``stop - 1``: a run of ops not off the ANE (``inner``) with the ops
    off the ANE that border it (``causes``, positions)."""

    start: int
    stop: int
    inner: list[int]
    causes: list[int]


def windows(placed: list[OpByProbe]) -> list[Window]:
    """The windows worth a probe: each maximal run of ops not placed off the ANE with a
    cause on the GPU side of it (a cause that runs on the CPU cannot pull ops to the GPU)."""

    def off(i: int) -> bool:
        return placed[i].status == ProbeStatus.PLACED and placed[i].unit != ANE

    out: list[Window] = []
    i = 0
    while i < len(placed):
        if off(i):
            i += 1
            continue
        stop = i
        while stop < len(placed) and not off(stop):
            stop += 1
        causes = [j for j in (i - 1, stop) if 0 <= j < len(placed)]
        if any(placed[j].unit in GPU_SIDE for j in causes):
            out.append(Window(min([i, *causes]), max([stop, *(j + 1 for j in causes)]),
                              list(range(i, stop)), causes))  # fmt: skip
        i = stop
    return out


def window_runs(session: Session, parent: db.Run, found: list[Window], plan: dict[str, Any],
                 settings: Settings) -> tuple[list[RunBatch], list[Any]]:  # fmt: skip
    """One probe run per window (a model cut from the parent's), packed into launches; the
    run ids in ``found``'s order, None for a prefix that could not be cut (a prefix is extra
    evidence: without it the search reads the others; a window that cannot be cut fails
    the context search, as before)."""
    from orchestrator import modelkit
    from orchestrator.artifacts import ArtifactStore
    from orchestrator.dispatch import PreparedModel, upsert_model
    from orchestrator.modelkit.windows import write_window
    from orchestrator.runs.lifecycle import model_ref

    job = session.get(db.Job, parent.job_id)
    assert job is not None
    spec = probe_spec(job.spec)
    store = ArtifactStore(settings.resolved_artifact_dir, settings.max_model_bytes)
    chip = plan["key"]["chip"]
    path = model_path(settings, session.get(db.Model, parent.model_sha256))
    built: list[tuple[Window, Any, Any]] = []  # (window, artifact, prepared), None: not cut
    with tempfile.TemporaryDirectory(prefix="windows-") as scratch:
        for w in found:
            try:
                cut = write_window(path, w.start, w.stop, Path(scratch))
            except UsageError:
                if w.causes or not w.inner:  # a window or a reference: not optional
                    raise
                built.append((w, None, None))
                continue
            artifact = store.add(cut)
            inventory = modelkit.inspect_model(cut)
            findings = [f.to_json() for f in modelkit.lint(inventory, chips=[chip])]
            built.append((w, artifact, PreparedModel(cut, inventory, findings, [chip])))
    now = datetime.now(UTC)
    names = [o["name"] for o in plan["ops"]]
    batches: list[RunBatch] = []
    ids: list[Any] = []
    for w, artifact, prepared in built:
        if artifact is None or prepared is None:
            ids.append(None)
            continue
        upsert_model(session, prepared, artifact)
        run_id = uuid4()
        ids.append(run_id)
        session.add(
            db.Run(id=run_id, job_id=parent.job_id, model_sha256=artifact.sha256,
                   device_class=parent.device_class, status=db.RunStatus.QUEUED, attempts=1,
                   max_attempts=settings.max_attempts, created_at=now, queued_at=now,
                   purpose=RunPurpose.PROBE, parent_run_id=parent.id, probe_repeat=1,
                   pinned_udid=parent.udid,
                   bisection={"key": plan["key"], "window": asdict(w),
                              "op_type": f"window {w.start}–{w.stop - 1}" + ("" if w.inner else " (the cause alone)"),
                              "source_ops": list(range(w.start, w.stop)),
                              "source_names": names[w.start:w.stop][:20]})
        )  # fmt: skip
        batches.append(
            RunBatch(run_id=run_id, attempt=1, job_id=parent.job_id,
                     model=model_ref(artifact, settings.resolved_artifact_url),
                     device_class=parent.device_class, pinned_udid=parent.udid, spec=spec,
                     purpose=RunPurpose.PROBE, input_seed=random.SystemRandom().randrange(2**31),
                     created_at=now)
        )  # fmt: skip
    session.flush()
    return packing.pack(batches, settings=settings, repeat=1), ids
