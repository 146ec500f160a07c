"""The compatibility matrix: probe placements by (op signature, chip, OS build, runner
version), simulated kept apart from real. One ``probe_results`` row per final probe run;
a later model with a known signature on the same key reuses the cell instead of probing.

Which evidence settles a cell (``resolve``): a placed probe, newest first (its evidence
count is the number of placed rows); else a probe still queued or running (wait for it);
else the newest inconclusive or failed reading — a lifted probe is always tried before a
too-small reading is final, so such a reading is not retried for every new model.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.bisect.mapping import SignatureOutcome
from orchestrator.bisect.placement import UNKNOWN, ProbeReading, ProbeStatus
from orchestrator.modelkit.inventory import LintFinding
from orchestrator.store import models as db

ACTIVE = (db.RunStatus.QUEUED, db.RunStatus.RUNNING)


@dataclass(frozen=True)
class Key:
    """Where a placement holds: the same op may land elsewhere on another chip or OS."""

    chip: str
    os_build: str
    runner_version: str
    simulated: bool
    device_class: str  # where probes run; not part of the cell (a chip decides placement)
    os_version: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Key:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})


def evidence(session: Session, signature: str, key: Key) -> list[db.ProbeResult]:
    """The cell's rows, newest first."""
    return list(
        session.scalars(
            select(db.ProbeResult)
            .filter_by(
                signature=signature,
                chip=key.chip,
                os_build=key.os_build,
                runner_version=key.runner_version,
                simulated=key.simulated,
            )
            .order_by(db.ProbeResult.created_at.desc(), db.ProbeResult.id.desc())
        )
    )


def settle(rows: list[db.ProbeResult]) -> db.ProbeResult:
    """The row a cell settles on: its newest placed reading, else its newest (rows newest first)."""
    return next((r for r in rows if r.status == ProbeStatus.PLACED), rows[0])


def active_probe(session: Session, signature: str, key: Key) -> db.Run | None:
    """A probe run for this cell that is still queued or running, if any."""
    for run in session.scalars(
        select(db.Run)
        .where(db.Run.probe_signature == signature, db.Run.status.in_(ACTIVE))
        .order_by(db.Run.created_at)
    ):
        if run.bisection and Key.from_json(run.bisection["key"]) == key:
            return run
    return None


def resolve(
    session: Session, signature: str, key: Key, *, parent_run_id: uuid.UUID | None = None
) -> SignatureOutcome | None:
    """The cell's settled placement, or None while a probe for it is on its way (a cell
    with no evidence and no probe on its way is a failure, so no parent waits forever)."""
    rows = evidence(session, signature, key)
    placed = [r for r in rows if r.status == ProbeStatus.PLACED]
    if placed:
        return _outcome(session, placed[0], len(placed), parent_run_id)
    if active_probe(session, signature, key) is not None:
        return None
    if rows:
        return _outcome(session, settle(rows), len(rows), parent_run_id)
    return SignatureOutcome(
        status=ProbeStatus.FAILED,
        unit=UNKNOWN,
        confidence=None,
        reason="no probe result for this OS build (the probe ran on another one, or was cancelled)",
        reused=False,
        evidence=0,
    )


def _outcome(
    session: Session, row: db.ProbeResult, evidence: int, parent_run_id: uuid.UUID | None
) -> SignatureOutcome:
    run = session.get(db.Run, row.run_id)
    reused = run is None or run.parent_run_id != parent_run_id
    return SignatureOutcome(
        status=ProbeStatus(row.status),
        unit=row.unit,
        confidence=row.confidence,
        reason=row.reason or "",
        reused=reused,
        evidence=evidence,
    )


def record(
    session: Session,
    probe_run: db.Run,
    reading: ProbeReading,
    key: Key,
    *,
    op_type: str | None,
    lint: LintFinding | None,
) -> db.ProbeResult:
    """Store one probe run's reading in the matrix (one row per final probe run)."""
    row = db.ProbeResult(
        **key.to_json(),  # the cell's columns are named as the Key's fields
        signature=probe_run.probe_signature,
        unit=reading.unit_name,
        confidence=reading.confidence,
        run_id=probe_run.id,
        created_at=datetime.now(UTC),
        status=str(reading.status),
        reason=reading.reason[:4000],
        op_type=op_type,
        repeat=probe_run.probe_repeat or 1,
        lint_unit=lint.expected_unit if lint is not None else None,
        lint_rule=lint.rule_id if lint is not None else None,
        lint_reason=lint.reason if lint is not None else None,
        lint_fix=lint.fix if lint is not None else None,
    )
    session.add(row)
    session.flush()
    return row
