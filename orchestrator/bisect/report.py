"""Bisection in reports: per-op placement by probe beside the compute plan and the lint
prediction, and the job's probe runs (``report_rows`` models for ``orchestrator.report``)."""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from orchestrator.bisect.plan import chip_of, stored_lint
from orchestrator.report_rows import BisectedOp, Bisection, ProbeRow
from orchestrator.store import models as db


def bisection(session: Session, run: db.Run) -> Bisection | None:
    """The bisection of a user run: state, why, and each op by probe, plan and lint."""
    if run.bisect_state is None:
        return None
    plan = run.bisection or {}
    probes = select(func.count()).select_from(db.Run).where(db.Run.parent_run_id == run.id)
    out = Bisection(
        state=run.bisect_state,
        trigger=plan.get("trigger"),
        # The trigger names the verdict timing gave before probing; the row's verdict is the
        # one after it. Reports say why in plain words and keep the earlier verdict apart.
        why=plain_trigger(plan.get("trigger")),
        verdict_before=_verdict_before(plan.get("trigger")),
        error=plan.get("error"),
        probe_runs=session.scalar(probes) or 0,
        signatures=len(plan.get("signatures", {})),
        reused=plan.get("reused"),
        inconclusive=plan.get("inconclusive"),
    )
    if run.bisect_state != db.BisectState.DONE:
        return out
    planned = {
        p.index: p.preferred
        for p in session.scalars(
            select(db.OpPlacement).where(
                db.OpPlacement.run_id == run.id, db.OpPlacement.source == "plan"
            )
        )
    }
    lint: dict[int, list[Any]] = {}
    for finding in stored_lint(session.get(db.Model, run.model_sha256), chip_of(run.device_class)):
        if finding.op_index is not None:
            lint.setdefault(finding.op_index, []).append(finding)
    # The probe's own outcome per op: the placement's status may be a search's (prefix
    # search, or lint with the whole model off the ANE, names a cause its probe could not
    # place; the report keeps both).
    outcomes = plan.get("signatures", {})
    probed = {
        o["index"]: outcomes.get(o.get("signature"), {}).get("status") for o in plan.get("ops", [])
    }
    for p in plan.get("placements", []):
        findings = lint.get(p["index"], [])
        out.ops.append(
            BisectedOp(
                index=p["index"],
                name=p["name"],
                type=p["type"],
                by_probe=p["unit"],
                probe_status=probed.get(p["index"]) or p["status"],
                confidence=p["confidence"],
                probe_reason=p["reason"],
                by_plan=planned.get(p["index"]),
                by_lint=findings[0].expected_unit if findings else "neuralEngine",
                lint_rules=[f.rule_id for f in findings],
                # Lint predicts the ANE for a carried op, rightly: alone it runs there.
                disagree=_disagree(p["unit"], findings) and p.get("role") != "carried",
                role=p.get("role"),
                carried_by=p.get("carried_by"),
            )
        )
    return out


def plain_trigger(trigger: str | None) -> str | None:
    """Why the run was bisected, without the verdict it had before (see ``plan.trigger``)."""
    if trigger is None:
        return None
    if trigger.startswith("verdict ") and "without a compute plan" in trigger:
        return (
            "the OS gives no compute plan (iOS below 17.4), so timing alone could not place each op"
        )
    if trigger == "plan and timing disagree":
        return "the compute plan and the timing disagree"
    if trigger.startswith("requested"):
        return "asked for (--bisect)"
    return trigger


def _verdict_before(trigger: str | None) -> str | None:
    match = re.match(r"verdict (\w+) without a compute plan", trigger or "")
    return match.group(1) if match else None


def _disagree(unit: str, findings: list[Any]) -> bool:
    """Lint predicts off the ANE where the probe measured the ANE, or the other way."""
    if unit == "unknown":
        return False
    return (unit == "neuralEngine") == bool(findings)


def probe_runs(session: Session, job_id: uuid.UUID) -> list[ProbeRow]:
    """The job's probe runs with what each one measured."""
    rows = []
    runs = session.scalars(
        select(db.Run)
        .where(db.Run.job_id == job_id, db.Run.purpose == "probe")
        .order_by(db.Run.created_at, db.Run.id)
    )
    for run in runs:
        result = session.scalars(
            select(db.ProbeResult).where(db.ProbeResult.run_id == run.id)
        ).one_or_none()
        plan = run.bisection or {}
        rows.append(
            ProbeRow(
                run=str(run.id),
                parent_run=str(run.parent_run_id) if run.parent_run_id else None,
                signature=run.probe_signature,
                op_type=plan.get("op_type"),
                ops=plan.get("source_names", []),
                repeat=run.probe_repeat,
                device_class=run.device_class,
                os_version=run.os_version,
                simulated=bool(run.simulated) if run.simulated is not None else None,
                status=str(run.status),
                placement=result.status if result else (plan.get("reading") or {}).get("verdict"),
                unit=result.unit if result else None,
                confidence=result.confidence if result else None,
                reason=result.reason
                if result
                else (plan.get("reading") or {}).get("reason") or run.error_message,
            )
        )
    return rows
