"""One run's evidence, as ``/runs/{id}`` shows it: the report's own row for the run
(``report.report_row``: verdict, statistics, timing ratios, ops off the ANE, bisection), and
beside it what the report only summarises — every latency sample per compute-units
setting, the compute plan per op, the attempts with their diagnostics, and the probe runs
that placed the ops."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.bisect.report import probe_runs
from orchestrator.errors import NotFound
from orchestrator.render.details import model_lines
from orchestrator.report import SETTINGS, lookup_run, report_row
from orchestrator.report_rows import ProbeRow, ReportRow
from orchestrator.store import models as db

# Cold loads compare only under the same provenance (protocol.ColdLoadProvenance).
PROVENANCE = {
    "fresh_compile": "after a fresh compile",
    "fresh_process": "in a fresh process, compiled model cached",
    "warm_cache": "with the OS's caches warm",
}


CRASH = "crash report: "  # agents.devices.base.Diagnostics.as_lines


class UnknownRun(NotFound):
    """No run has that id."""


@dataclass
class RunEvidence:
    run: db.Run
    row: ReportRow
    job: db.Job | None
    measurements: list[db.Measurement]  # in SETTINGS order
    samples: dict[str, list[float]]
    plan: list[db.OpPlacement]
    attempts: list[db.RunAttempt]
    probes: list[ProbeRow]
    causes: list[list[str]]
    parent: db.Run | None
    sweep: db.Sweep | None = None  # a sweep night's run: its series has a page

    @property
    def simulated(self) -> bool:
        return bool(self.row.simulated)


def find_run(session: Session, run_ref: str) -> db.Run:
    run = lookup_run(session, run_ref)
    if run is None:
        raise UnknownRun(f"no run {run_ref!r}", hint="the job page links every run of a job")
    return run


def run_evidence(session: Session, run_ref: str) -> RunEvidence:
    run = find_run(session, run_ref)
    row = report_row(session, run)
    order = {s: i for i, s in enumerate(SETTINGS)}
    measurements = sorted(
        session.scalars(select(db.Measurement).where(db.Measurement.run_id == run.id)),
        key=lambda m: order.get(str(m.compute_units), len(order)),
    )
    samples = {str(m.compute_units): [float(v) for v in m.samples_ms] for m in measurements}
    plan = list(
        session.scalars(
            select(db.OpPlacement)
            .where(db.OpPlacement.run_id == run.id)
            .order_by(db.OpPlacement.source, db.OpPlacement.index)
        )
    )
    attempts = list(
        session.scalars(
            select(db.RunAttempt)
            .where(db.RunAttempt.run_id == run.id)
            .order_by(db.RunAttempt.attempt)
        )
    )
    probes = [p for p in probe_runs(session, run.job_id) if p.parent_run == str(run.id)]
    job = session.get(db.Job, run.job_id)
    return RunEvidence(
        run=run,
        row=row,
        job=job,
        measurements=measurements,
        samples=samples,
        plan=plan,
        attempts=attempts,
        probes=probes,
        causes=model_lines([row]) if run.purpose == "user" else [],
        parent=session.get(db.Run, run.parent_run_id) if run.parent_run_id else None,
        sweep=session.get(db.Sweep, job.sweep_id) if job is not None and job.sweep_id else None,
    )


def diagnostics_sections(attempt: db.RunAttempt) -> list[tuple[str, list[str]]]:
    """An attempt's diagnostics as the agent wrote them (``Diagnostics.as_lines``): log
    lines, then the crash report on one line starting "crash report: "."""
    lines = [str(line) for line in attempt.diagnostics or []]
    crash = [line.removeprefix(CRASH) for line in lines if line.startswith(CRASH)]
    rest = [line for line in lines if not line.startswith(CRASH)]
    out: list[tuple[str, list[str]]] = []
    if crash:
        out.append(("crash report", crash))
    if rest:
        out.append(("log lines", rest))
    return out
