"""Job status and reports, built from the database.

``report_model`` is the one source for the table, CSV and JSON forms (``render``) and for
``anefarm profile --json``, so every form says the same thing; its rows are
``report_rows.ReportRow`` models. ``build_report`` is its JSON form (a dict).
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from orchestrator import catalog
from orchestrator.bisect.report import bisection, probe_runs
from orchestrator.errors import NotFound, UsageError
from orchestrator.render.matrix import build_matrix
from orchestrator.report_rows import LastNight, Latency, OffAneOp, Report, ReportRow
from orchestrator.store import models as db
from orchestrator.store.engine import database_error, is_missing_schema, safe_url

SETTINGS = ("all", "cpuAndNeuralEngine", "cpuAndGPU", "cpuOnly")


class UnknownJob(NotFound):
    """No job has that id: the person mistyped it or looks at another database."""


JOBS_HINT = (
    "`anefarm jobs` lists the jobs of this database, chosen by ANEFARM_HOME or ANEFARM_DATABASE_URL"
)


def find_job(session: Session, job_ref: str) -> db.Job:
    """A job by full id or unique prefix."""
    try:
        job = _lookup(session, job_ref)
    except SQLAlchemyError as error:
        url = session.get_bind().engine.url
        if is_missing_schema(error):
            # A fresh home: nothing was ever submitted to this database.
            raise UnknownJob(
                f"no job {job_ref!r}: no jobs yet in {safe_url(url)}",
                hint="`anefarm submit` or `anefarm profile` makes one; " + JOBS_HINT,
            ) from error
        raise database_error(error, url) from error
    if job is None:
        raise UnknownJob(f"no job {job_ref!r}", hint=JOBS_HINT)
    return job


def _lookup(session: Session, job_ref: str) -> db.Job | None:
    try:
        return session.get(db.Job, UUID(job_ref))
    except ValueError:
        pass
    # A prefix: compared in Python, as SQLite stores UUIDs as hex without dashes.
    prefix = job_ref.lower()
    matches = [i for i in session.scalars(select(db.Job.id)) if str(i).startswith(prefix)]
    if len(matches) > 1:
        raise UsageError(
            f"job prefix {job_ref!r} is ambiguous ({len(matches)} jobs)",
            hint="give more characters of the id; " + JOBS_HINT,
        )
    return session.get(db.Job, matches[0]) if matches else None


def lookup_run(session: Session, run_ref: str) -> db.Run | None:
    """A run by its full id; None for an unknown id or one that is not a UUID (each caller
    says so in its own words)."""
    try:
        return session.get(db.Run, UUID(run_ref))
    except ValueError:
        return None


def job_status(session: Session, job_ref: str) -> dict[str, Any]:
    job = find_job(session, job_ref)
    runs = session.scalars(select(db.Run).where(db.Run.job_id == job.id)).all()
    counts = Counter(str(r.status) for r in runs)
    return {
        "job": str(job.id),
        "status": str(job.status),
        "created_at": job.created_at.isoformat(),
        "runs": len(runs),
        "probe_runs": sum(1 for r in runs if r.purpose == "probe"),
        "by_status": dict(sorted(counts.items())),
        "retried": sum(1 for r in runs if r.attempts > 1),
        "done": all(str(r.status) in {"succeeded", "failed", "cancelled"} for r in runs),
        # Classes with runs waiting for a device, and since when (the earliest).
        "waiting": {
            cls: min(
                r.waiting_since
                for r in runs
                if r.device_class == cls and r.waiting_since is not None
            ).isoformat()[:19]
            for cls in sorted({r.device_class for r in runs if str(r.status) == "waiting"})
        },
    }


def build_report(session: Session, job_ref: str) -> dict[str, Any]:
    """The job's report in its JSON form (``anefarm report --json``)."""
    return report_model(session, job_ref).to_json()


def report_model(session: Session, job_ref: str) -> Report:
    job = find_job(session, job_ref)
    runs = session.scalars(
        select(db.Run)
        .where(db.Run.job_id == job.id, db.Run.purpose == "user")
        .order_by(db.Run.model_sha256, db.Run.device_class)
    ).all()
    loaded = RowInputs.load(session, runs)
    rows = [report_row(session, run, loaded) for run in runs]
    if job.sweep_id is not None:
        _last_night(session, job, runs, rows)
    rows.sort(key=lambda r: (r.model, r.chip or "", r.device_class))
    probes = probe_runs(session, job.id)
    return Report(
        job=str(job.id),
        status=str(job.status),
        created_at=job.created_at.isoformat(),
        simulated=any(r.simulated for r in rows) or any(p.simulated for p in probes),
        rows=rows,
        # The verdict of every model on every device class, as the report shows it first.
        matrix=build_matrix(rows),
        # Single-op probe runs of the bisection (rows say which user run they serve).
        probes=probes,
    )


def night_title(session: Session, job_ref: str) -> str | None:
    """``sweep vision-nightly, night of 2026-11-24`` when the job is a sweep's night
    (the night is its scheduled time's date in the sweep's timezone), else None: the
    report's header names it, so a night's report says which night it is."""
    from datetime import UTC
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    job = find_job(session, job_ref)
    if job.sweep_id is None:
        return None
    sweep = session.get(db.Sweep, job.sweep_id)
    if sweep is None:  # removed since: its nights stay as plain jobs
        return None
    title = f"sweep {sweep.name}"
    when = job.scheduled_for
    if when is not None:
        when = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
        # Else shown in UTC: the stored timezone was checked when the sweep was added.
        with contextlib.suppress(ZoneInfoNotFoundError, ValueError):
            when = when.astimezone(ZoneInfo(sweep.timezone))
        title += f", night of {when.date().isoformat()}"
    return title


def _last_night(
    session: Session, job: db.Job, runs: Sequence[db.Run], rows: list[ReportRow]
) -> None:
    """A sweep's night: each row's series, and its medians on the previous night."""
    from orchestrator.sweeps.history import previous_medians

    previous = previous_medians(session, job)
    for run, row in zip(runs, rows, strict=True):
        row.series = run.series
        if run.series is None or row.simulated is None:
            continue
        found = {
            units: value
            for (series, device_class, units, simulated), value in previous.items()
            if (series, device_class, simulated) == (run.series, run.device_class, row.simulated)
        }
        if found:
            night = max(n for n, _ in found.values())
            p50 = {units: ms for units, (n, ms) in found.items() if n == night}
            row.last_night = LastNight(night=night.isoformat(), p50_ms=p50)


def _ops_off_ane(payload: dict[str, Any], placed: dict[str, str]) -> list[OffAneOp]:
    """The verdict's ops off the ANE; an op placed by probe says the probe's unit (the
    verdict stores "GPU or CPU" as unknown, the bisection keeps it), as the text does."""
    ops = []
    for op in payload.get("ops_off_ane", []):
        shown = OffAneOp(**{k: op.get(k) for k in OffAneOp.model_fields})
        if op.get("source") == "probe" and op.get("name") in placed:
            shown.unit = placed[op["name"]]
        ops.append(shown)
    return ops


def where_run(run: Any) -> dict[str, Any]:
    """A row's fields that say where ``run`` ran (its device class, with the catalog's name
    and chip, the OS and the device), from a ``db.Run`` or a row of its columns: the
    report's rows and the job page's lean rows say it alike."""
    device = catalog.DEVICES.get(run.device_class)
    return {
        "device_class": run.device_class,
        "device_name": device.name if device else None,
        "chip": device.chip if device else "unknown",
        "os_version": run.os_version,
        "os_build": run.os_build,
        "udid": run.udid,
    }


# Run ids per IN (…) list: well under SQLite's and PostgreSQL's bound-parameter limits.
LOAD_CHUNK = 500


@dataclass
class RowInputs:
    """The measurements and verdicts of many runs, read in a few statements: a sweep
    night's 1,200 rows took three queries each (``bench/report.py``)."""

    measurements: dict[UUID, dict[str, db.Measurement]] = field(default_factory=dict)
    verdicts: dict[UUID, db.Verdict] = field(default_factory=dict)
    # Held here: the session's identity map keeps only weak references.
    models: dict[str, db.Model] = field(default_factory=dict)

    @classmethod
    def load(cls, session: Session, runs: Sequence[db.Run]) -> RowInputs:
        loaded = cls()
        ids = [run.id for run in runs]
        for start in range(0, len(ids), LOAD_CHUNK):
            chunk = ids[start : start + LOAD_CHUNK]
            # Ordered by id: each run's settings in the order its own query gave them.
            for m in session.scalars(
                select(db.Measurement)
                .where(db.Measurement.run_id.in_(chunk))
                .order_by(db.Measurement.id)
            ):
                loaded.measurements.setdefault(m.run_id, {})[str(m.compute_units)] = m
            for v in session.scalars(select(db.Verdict).where(db.Verdict.run_id.in_(chunk))):
                loaded.verdicts[v.run_id] = v
        shas = sorted({run.model_sha256 for run in runs})
        for start in range(0, len(shas), LOAD_CHUNK):
            chunk_shas = shas[start : start + LOAD_CHUNK]
            for model in session.scalars(select(db.Model).where(db.Model.sha256.in_(chunk_shas))):
                loaded.models[model.sha256] = model
        return loaded


def report_row(session: Session, run: db.Run, loaded: RowInputs | None = None) -> ReportRow:
    """One run's row; ``loaded`` holds its measurements and verdict when the caller read
    them for many runs at once, else they are read here."""
    if loaded is not None:
        model = loaded.models.get(run.model_sha256)
        measurements = loaded.measurements.get(run.id, {})
        verdict = loaded.verdicts.get(run.id)
    else:
        model = session.get(db.Model, run.model_sha256)
        measurements = {
            str(m.compute_units): m
            for m in session.scalars(
                select(db.Measurement)
                .where(db.Measurement.run_id == run.id)
                .order_by(db.Measurement.id)
            )
        }
        verdict = session.scalars(
            select(db.Verdict).where(db.Verdict.run_id == run.id)
        ).one_or_none()
    payload = verdict.payload if verdict is not None else {}
    latency: dict[str, Latency] = {}
    errors: dict[str, str] = {}
    for setting in SETTINGS:
        m = measurements.get(setting)
        if m is None:
            continue
        if m.error_kind:
            errors[setting] = f"{m.error_kind}: {m.error_message}"
        if m.p50 is not None:
            latency[setting] = Latency(
                p50=m.p50, p90=m.p90, p99=m.p99, mean=m.mean, std=m.std, min=m.min, max=m.max,
                count=m.count, first_prediction_ms=m.first_prediction_ms,
            )  # fmt: skip
    speedup = None
    if "all" in latency and "cpuOnly" in latency and latency["all"].p50:
        speedup = (latency["cpuOnly"].p50 or 0) / latency["all"].p50
    load = measurements.get("all") or next(iter(measurements.values()), None)
    # A run that has not reported yet says nothing about being simulated: fall back to
    # what its verdict says, and never call it real without evidence.
    simulated = bool(run.simulated) if run.simulated is not None else None
    bisected = bisection(session, run)
    placed = {op.name: op.by_probe for op in bisected.ops} if bisected else {}
    failed = run.error_kind and run.status == db.RunStatus.FAILED
    waiting = run.status == db.RunStatus.WAITING and run.waiting_since is not None
    return ReportRow(
        run=str(run.id),
        model=model.filename if model else run.model_sha256[:12],
        sha256=run.model_sha256,
        **where_run(run),
        thermal_state=run.thermal_state,
        simulated=simulated,
        status=str(run.status),
        attempts=run.attempts,
        verdict=str(verdict.verdict) if verdict is not None else None,
        ane_share=verdict.ane_share if verdict is not None else None,
        plan_available=payload.get("plan_available"),
        plan_timing_disagree=payload.get("plan_timing_disagree", False),
        reasons=payload.get("reasons", []),
        timing=payload.get("timing", []),
        latency_ms=latency,
        setting_errors=errors,
        speedup_all_vs_cpu_only=speedup,
        cold_load_ms=load.cold_load_ms if load else None,
        cold_load_provenance=load.cold_load_provenance if load else None,
        warm_load_ms=load.warm_load_ms if load else None,
        ops_off_ane=_ops_off_ane(payload, placed),
        bisection=bisected,
        error=f"{run.error_kind}: {run.error_message}" if failed else None,
        waiting_since=run.waiting_since.isoformat() if waiting and run.waiting_since else None,
    )
