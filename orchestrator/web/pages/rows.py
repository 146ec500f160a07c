"""A job's report rows for the job page, read in a few batched queries.

``report.report_model`` reads each run with its own queries (model, measurements,
verdict, bisection): right for one report, too slow for a page of 200 models × 12 device
classes that polls every 2 s (~10 queries per run). Here the runs, their verdicts and
models come in three queries and become the same ``ReportRow`` models, so the matrix is
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

from orchestrator import catalog
from orchestrator.report import _row as report_row
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


def job_rows(session: Session, job_id: uuid.UUID) -> JobRows:
    runs = list(session.scalars(select(db.Run).where(db.Run.job_id == job_id)))
    users = [r for r in runs if r.purpose == "user"]
    out = JobRows(rows=[])
    out.probes.update(str(r.status) for r in runs if r.purpose == "probe")
    out.counts.update(str(r.status) for r in users)
    verdicts = {
        v.run_id: v
        for v in session.scalars(
            select(db.Verdict)
            .join(db.Run, db.Run.id == db.Verdict.run_id)
            .where(db.Run.job_id == job_id, db.Run.purpose == "user")
        )
    }
    shas = {r.model_sha256 for r in users}
    names = dict(
        session.execute(select(db.Model.sha256, db.Model.filename).where(db.Model.sha256.in_(shas))).all()
    ) if shas else {}  # fmt: skip
    for run in users:
        if run.bisect_state == db.BisectState.DONE:
            row = report_row(session, run)  # the probe's units, as the report says them
        else:
            row = _lean_row(run, verdicts.get(run.id), names.get(run.model_sha256))
        out.rows.append(row)
        out.run_ids[(row.sha256 or row.model, row.device_class)] = str(run.id)
    out.rows.sort(key=lambda r: (r.model, r.chip or "", r.device_class))
    return out


def _lean_row(run: db.Run, verdict: db.Verdict | None, filename: str | None) -> ReportRow:
    payload: dict[str, Any] = verdict.payload if verdict is not None else {}
    device = catalog.DEVICES.get(run.device_class)
    failed = run.error_kind and run.status == db.RunStatus.FAILED
    return ReportRow(
        run=str(run.id),
        model=filename or run.model_sha256[:12],
        sha256=run.model_sha256,
        device_class=run.device_class,
        device_name=device.name if device else None,
        chip=device.chip if device else "unknown",
        os_version=run.os_version,
        os_build=run.os_build,
        udid=run.udid,
        simulated=bool(run.simulated) if run.simulated is not None else None,
        status=str(run.status),
        attempts=run.attempts,
        verdict=str(verdict.verdict) if verdict is not None else None,
        ane_share=verdict.ane_share if verdict is not None else None,
        reasons=payload.get("reasons", []),
        ops_off_ane=[
            OffAneOp(**{k: op.get(k) for k in OffAneOp.model_fields})
            for op in payload.get("ops_off_ane", [])
        ],
        error=f"{run.error_kind}: {run.error_message}" if failed else None,
        waiting_since=run.waiting_since.isoformat()
        if run.status == db.RunStatus.WAITING and run.waiting_since
        else None,
    )
