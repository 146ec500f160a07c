"""A job's report rows for the job page, read in one query.

``report.report_model`` reads each run with its own queries (model, measurements,
verdict, bisection): right for one report, too slow for a page of 200 models × 12 device
classes that polls every 2 s (~10 queries per run). Here the runs with their verdicts and
model names come in one query and become the same ``ReportRow`` models, so the matrix is
``render.matrix.build_matrix``'s and the causes are ``render.details.model_lines``'s.
A bisected run (whose ops off the ANE say the probe's unit) is read through the report's
own per-run reader, so it says exactly what ``anefarm report`` says.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.report import report_row, where_run
from orchestrator.report_rows import OffAneOp, ReportRow
from orchestrator.store import models as db

FINAL = {"succeeded", "failed", "cancelled"}


@dataclass
class JobRows:
    rows: list[ReportRow]
    run_ids: dict[tuple[str, str], str] = field(default_factory=dict)  # (model key, class) → run
    counts: Counter[str] = field(default_factory=Counter)  # user runs by status
    probes: Counter[str] = field(default_factory=Counter)  # probe runs by status

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def finished(self) -> int:
        return sum(n for status, n in self.counts.items() if status in FINAL)

    @property
    def probes_finished(self) -> int:
        return sum(n for status, n in self.probes.items() if status in FINAL)

    @property
    def done(self) -> bool:
        return self.finished == self.total and self.probes_finished == sum(self.probes.values())


# The columns the matrix and the causes need: plain rows, not ORM objects (building 2,400
# Run and Verdict instances alone took ~0.5 s of a 200 × 12 job page).
RUN_COLUMNS = (
    db.Run.id, db.Run.model_sha256, db.Run.device_class, db.Run.status, db.Run.simulated,
    db.Run.os_version, db.Run.os_build, db.Run.udid, db.Run.attempts, db.Run.error_kind,
    db.Run.error_message, db.Run.waiting_since, db.Run.purpose, db.Run.bisect_state,
)  # fmt: skip
VERDICT_COLUMNS = (db.Verdict.verdict, db.Verdict.ane_share, db.Verdict.payload)


def job_rows(session: Session, job_id: uuid.UUID) -> JobRows:
    # One query: each run with its verdict (if any) and its model's file name.
    runs = session.execute(
        select(*RUN_COLUMNS, *VERDICT_COLUMNS, db.Model.filename)
        .outerjoin(db.Verdict, db.Verdict.run_id == db.Run.id)
        .outerjoin(db.Model, db.Model.sha256 == db.Run.model_sha256)
        .where(db.Run.job_id == job_id)
    ).all()
    users = [r for r in runs if r.purpose == "user"]
    out = JobRows(rows=[])
    out.probes.update(str(r.status) for r in runs if r.purpose == "probe")
    out.counts.update(str(r.status) for r in users)
    for run in users:
        if run.bisect_state == db.BisectState.DONE:
            # The probe's units, as the report says them.
            row = report_row(session, session.get_one(db.Run, run.id))
        else:
            row = _lean_row(run)
        out.rows.append(row)
        out.run_ids[(row.sha256 or row.model, row.device_class)] = str(run.id)
    out.rows.sort(key=lambda r: (r.model, r.chip or "", r.device_class))
    return out


def _lean_row(run: Any) -> ReportRow:
    """A run's row from its columns, copied from a blank row rather than validated: the
    values come from our own database (validated on the way in), and validating 2,400 rows
    cost ~0.2 s of a 200 × 12 job page. The blank's empty defaults are shared, never
    mutated."""
    payload: dict[str, Any] = run.payload or {}
    failed = run.error_kind and run.status == db.RunStatus.FAILED
    return _BLANK_ROW.model_copy(
        update=dict(
            run=str(run.id),
            model=run.filename or run.model_sha256[:12],
            sha256=run.model_sha256,
            **where_run(run),
            simulated=bool(run.simulated) if run.simulated is not None else None,
            status=str(run.status),
            attempts=run.attempts,
            verdict=str(run.verdict) if run.verdict is not None else None,
            ane_share=run.ane_share,
            reasons=payload.get("reasons", []),
            ops_off_ane=[
                _BLANK_OP.model_copy(update={k: op.get(k) for k in OFF_ANE_FIELDS})
                for op in payload.get("ops_off_ane", [])
            ],
            error=f"{run.error_kind}: {run.error_message}" if failed else None,
            waiting_since=run.waiting_since.isoformat()
            if run.status == db.RunStatus.WAITING and run.waiting_since
            else None,
        )
    )


_BLANK_ROW = ReportRow.model_construct(model="", device_class="", status="")
_BLANK_OP = OffAneOp.model_construct()
OFF_ANE_FIELDS = tuple(OffAneOp.model_fields)
