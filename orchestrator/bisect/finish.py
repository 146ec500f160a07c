"""Probe runs coming back: read each into the compatibility matrix, lift a probe too small
to time, and — once every signature of a parent is settled — map the placements back and
redo the parent's verdict. Runs inside ingest's transaction; returns batches to publish.

The parent row is locked (``with_for_update``) before it is finished, so two probe results
ingested at once on PostgreSQL cannot both miss, or both apply, the last step.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from orchestrator.bisect import context, matrix
from orchestrator.bisect.mapping import OpRef, SignatureOutcome, map_back
from orchestrator.bisect.matrix import Key
from orchestrator.bisect.placement import LIFT, ProbeStatus, failed, read_probe
from orchestrator.bisect.plan import after_verdict, model_path, probe_runs, stored_lint
from orchestrator.errors import AnefarmError
from orchestrator.modelkit.inventory import LintFinding
from orchestrator.protocol import ComputeUnit, RunBatch, RunnerResult, Verdict
from orchestrator.settings import Settings
from orchestrator.store import models as db

log = logging.getLogger(__name__)
PENDING, DONE = "pending", "done"


def on_verdict(
    session: Session, run: Any, verdict: Verdict, *, settings: Settings
) -> list[RunBatch]:
    """A user run has its verdict: bisect it when called for; finish at once when the
    compatibility matrix already knows every signature."""
    try:
        batches = after_verdict(session, run, verdict, settings=settings)
    except Exception as error:  # a bisection that cannot start must not lose the result
        log.exception("bisection of run %s could not start", run.id)
        run.bisect_state = "skipped"
        run.bisection = {"trigger": "error", "error": f"bisection could not start: {error}"}
        return []
    if run.bisect_state == PENDING and not batches and try_finish(session, run):
        batches = context.start(session, run, settings=settings)
    return batches


def on_probe_final(
    session: Session,
    run: Any,
    runner: RunnerResult | None,
    failure: str | None,
    *,
    settings: Settings,
) -> list[RunBatch]:
    """A probe run is final (measured, failed as a model, or given up as infra)."""
    plan = run.bisection or {}
    if "window" in plan:  # a window of context search: not an op signature's evidence
        return context.on_window_final(session, run, runner, failure, settings=settings)
    if "key" not in plan:
        return []
    wanted = Key.from_json(plan["key"])
    key = wanted
    if runner is not None:
        repeat = run.probe_repeat or 1
        baseline = _single_op_ms(session, run) if repeat > 1 else None
        reading = read_probe(runner, repeat=repeat, baseline_ms=baseline)
        device = runner.device
        # Evidence counts where it was measured: a retry may have reached another OS build.
        key = Key(wanted.chip, device.os_build, runner.runner_version, wanted.simulated,
                  wanted.device_class, device.os_version)  # fmt: skip
    else:
        reading = failed(f"the probe failed: {failure or 'no result'}")
    lint = LintFinding.from_json(plan["lint"]) if plan.get("lint") else None
    matrix.record(session, run, reading, key, op_type=plan.get("op_type"), lint=lint)
    batches: list[RunBatch] = []
    if reading.too_small and (run.probe_repeat or 1) < LIFT and key == wanted:
        batches = _lift(session, run, wanted, settings)
    for parent in _pending_parents(session, run.device_class):
        if try_finish(session, parent):
            batches += context.start(session, parent, settings=settings)
    return batches


def _single_op_ms(session: Session, lifted: db.Run) -> float | None:
    """The `cpuOnly` median of the single-op probe a lifted probe follows up."""
    single = session.scalars(
        select(db.Run)
        .filter_by(
            parent_run_id=lifted.parent_run_id,
            probe_signature=lifted.probe_signature,
            probe_repeat=1,
        )
        .order_by(db.Run.created_at.desc())
        .limit(1)
    ).first()
    if single is None:
        return None
    row = session.scalars(
        select(db.Measurement).filter_by(run_id=single.id, compute_units="cpuOnly").limit(1)
    ).first()
    return row.p50 if row is not None else None


def _lift(session: Session, run: db.Run, key: Key, settings: Settings) -> list[RunBatch]:
    parent = session.get(db.Run, run.parent_run_id)
    if parent is None or run.probe_signature is None:
        return []
    try:
        path = model_path(settings, session.get(db.Model, parent.model_sha256))
        batches, _ = probe_runs(session, parent, path, {run.probe_signature}, key,
                                settings=settings, repeat=LIFT)  # fmt: skip
    except AnefarmError as error:
        log.warning("cannot lift probe %s: %s", run.id, error)
        return []
    return batches


def _pending_parents(session: Session, device_class: str) -> list[db.Run]:
    return list(
        session.scalars(
            select(db.Run)
            .where(db.Run.bisect_state == PENDING, db.Run.device_class == device_class)
            .order_by(db.Run.created_at)
        )
    )


def try_finish(session: Session, given: db.Run) -> bool:
    """Redo the parent's verdict by probe when every signature is settled."""
    parent = session.get(db.Run, given.id, with_for_update=True)
    if parent is None or parent.bisect_state != PENDING or context.running(parent):
        return False
    plan = dict(parent.bisection or {})
    key = Key.from_json(plan["key"])
    ops = [OpRef.from_json(o) for o in plan["ops"]]
    outcomes: dict[str, SignatureOutcome] = {}
    for signature in dict.fromkeys(op.signature for op in ops if op.signature):
        outcome = matrix.resolve(session, signature, key, parent_run_id=parent.id)
        if outcome is None:
            return False  # a probe for it is still on its way
        outcomes[signature] = outcome
    row = session.scalars(select(db.Verdict).filter_by(run_id=parent.id)).one_or_none()
    if row is None:
        return False
    model = session.get(db.Model, parent.model_sha256)
    planned = {
        p.name: p.preferred
        for p in session.scalars(select(db.OpPlacement).filter_by(run_id=parent.id, source="plan"))
    }
    verdict, placed = map_back(Verdict.model_validate(row.payload), ops, outcomes,
                               stored_lint(model, key.chip), planned)  # fmt: skip
    row.verdict, row.ane_share = verdict.verdict, verdict.ane_share
    row.payload = verdict.model_dump(mode="json")
    session.execute(delete(db.OpPlacement).filter_by(run_id=parent.id, source="probe"))
    units = {u.value for u in ComputeUnit}
    for p in placed:
        session.add(
            db.OpPlacement(run_id=parent.id, source="probe", index=p.index, name=p.name[:512],
                           op_type=p.type[:128], preferred=p.unit if p.unit in units else None,
                           supported=[], cost=None)
        )  # fmt: skip
    plan.update(
        finished_at=datetime.now(UTC).isoformat(),
        placements=[asdict(p) for p in placed],
        signatures={
            s: {
                "unit": o.unit,
                "status": str(o.status),
                "confidence": o.confidence,
                "reused": o.reused,
                "evidence": o.evidence,
            }
            for s, o in outcomes.items()
        },
        reused=sum(1 for o in outcomes.values() if o.reused),
        inconclusive=sum(1 for o in outcomes.values() if o.status is not ProbeStatus.PLACED),
    )
    parent.bisection = plan  # a new dict: SQLAlchemy does not see in-place JSON changes
    parent.bisect_state = DONE
    return True
