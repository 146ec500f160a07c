"""The analysis' input, read from the database: one ``regress.SeriesHistory`` per series
of a sweep, from its nights (jobs with ``sweep_id``) up to the night being analysed.

A series is (series name, device class, compute units, simulated); SIMULATED and real
series never share one (``simulated`` is part of the key, and the analysis runs per
kind). A night's point of a series holds all its runs of the night: the nightly run, its
repeats (a sweep's ``repeats:``; ``runs.parent_run_id`` → the nightly run, the repeat index
in ``runs.probe_repeat``) and any confirmation run (``parent_run_id`` → the nightly run,
no repeat index); the analysis combines them (``regress``: the mean of the runs' log
medians, their raw samples pooled). A night is FAILED only when none of its runs
measured. The op → unit map (the compute plan, else the
bisection's probes), the verdict, compile and load times, and the conditions attribution
compares (model sha256, OS version and build, runner version, device, thermal state —
NULL before migration 0011 reads as unknown, ""). A failed run is a
FAILED point, a ``sweep_missing`` record a MISSING one.

Baselines: the newest accepted change (``sweep_baselines`` kind ``reset``) that matches
the series restarts it; the newest pinned night (kind ``pin``) pins it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.regress.attribution import hottest
from orchestrator.regress.series import (
    BaselineRule,
    Conditions,
    NightPoint,
    PlacedOp,
    PointStatus,
    Run,
    SeriesHistory,
    SeriesKey,
)
from orchestrator.store import models as db
from orchestrator.sweeps.definition import SweepDefinition

# Nights read before tonight: the longest window the analysis looks back over (baseline
# window 14 + fore nights, trend window 14) with room for missing nights.
LOOKBACK_NIGHTS = 40


@dataclass
class NightRuns:
    """Tonight's runs of the sweep: (series, class) → the nightly run, its repeats, and its
    confirmation runs (for deciding whether one is still due)."""

    nightly: dict[tuple[str, str], db.Run] = field(default_factory=dict)
    confirmations: dict[tuple[str, str], list[db.Run]] = field(default_factory=dict)
    repeats: dict[tuple[str, str], list[db.Run]] = field(default_factory=dict)


def is_repeat(run: db.Run) -> bool:
    """A repeat of a night's run (``repeats:``), not a confirmation run: it has an index."""
    return run.parent_run_id is not None and run.probe_repeat is not None


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def sweep_nights(session: Session, sweep: db.Sweep, upto: datetime) -> list[tuple[UUID, date]]:
    """The sweep's nights up to ``upto`` (inclusive), oldest first: (job id, night)."""
    definition = SweepDefinition.model_validate(sweep.definition)
    rows = session.execute(
        select(db.Job.id, db.Job.scheduled_for)
        .where(db.Job.sweep_id == sweep.id, db.Job.scheduled_for.is_not(None),
               db.Job.scheduled_for <= upto)
        .order_by(db.Job.scheduled_for.desc())
        .limit(LOOKBACK_NIGHTS)
    ).all()  # fmt: skip
    out: dict[date, UUID] = {}
    for job_id, when in reversed(rows):
        if when is None:
            continue
        out[definition.night_of(_aware(when))] = job_id  # two fires in one day: the later
    return [(job_id, night) for night, job_id in sorted(out.items())]


def night_runs(session: Session, job_id: UUID) -> NightRuns:
    found = NightRuns()
    runs = session.scalars(
        select(db.Run)
        .where(db.Run.job_id == job_id, db.Run.series.is_not(None), db.Run.purpose == "user")
        .order_by(db.Run.created_at)
    ).all()
    by_id = {r.id: r for r in runs}
    for run in runs:
        if run.parent_run_id is None:
            found.nightly[(run.series or "", run.device_class)] = run
    for run in runs:
        parent = by_id.get(run.parent_run_id) if run.parent_run_id else None
        if parent is not None:
            which = found.repeats if is_repeat(run) else found.confirmations
            which.setdefault((parent.series or "", parent.device_class), []).append(run)
    return found


def _op_kinds(session: Session, shas: set[str]) -> dict[tuple[str, str], str]:
    """(model sha256, op name) → the op's kind as alerts group it: ``conv dilated`` for a
    convolution with a dilation above 1, else the modelkit kind (conv, pool, …)."""
    out: dict[tuple[str, str], str] = {}
    for op in session.scalars(select(db.ModelOp).where(db.ModelOp.model_sha256.in_(shas))):
        dilations = (op.params or {}).get("dilations") or []
        dilated = any(isinstance(d, int | float) and d > 1 for d in dilations)
        out[(op.model_sha256, op.name)] = f"{op.kind} dilated" if dilated else op.kind
    return out


def _placements(session: Session, run_ids: list[UUID]) -> dict[UUID, dict[str, str]]:
    """run → op name → unit, from the compute plan, else from probes."""
    by_source: dict[UUID, dict[str, dict[str, str]]] = defaultdict(dict)
    rows = session.scalars(select(db.OpPlacement).where(db.OpPlacement.run_id.in_(run_ids)))
    for p in rows:
        if p.preferred:
            by_source[p.run_id].setdefault(p.source, {})[p.name] = p.preferred
    return {run: sources.get("plan") or sources.get("probe") or {}
            for run, sources in by_source.items()}  # fmt: skip


def _rule(baselines: list[db.SweepBaseline], key: SeriesKey, nights: dict[UUID, date],
          present: set[date]) -> BaselineRule:  # fmt: skip
    reset_at: date | None = None
    pinned: date | None = None
    for b in baselines:  # oldest first: the newest matching one wins
        night = nights.get(b.job_id)
        if night is None:
            continue
        if b.kind == "pin" and night in present:
            pinned = night
        elif b.kind == "reset" and all(
            want is None or want == have
            for want, have in ((b.series, key.series), (b.device_class, key.device_class),
                               (b.compute_units, key.compute_units))
        ):  # fmt: skip
            reset_at = night
    return BaselineRule(reset_at=reset_at, pinned_night=pinned)


def histories(
    session: Session, sweep: db.Sweep, upto: datetime
) -> tuple[list[SeriesHistory], NightRuns, date | None]:
    """Every series of the sweep with a point in its recent nights, tonight's runs, and
    tonight's date (None: the sweep has no night up to ``upto``)."""
    definition = SweepDefinition.model_validate(sweep.definition)
    units_all = [str(u) for u in definition.compute_units]
    nights = sweep_nights(session, sweep, upto)
    if not nights:
        return [], NightRuns(), None
    night_of = dict(nights)
    job_ids = [j for j, _ in nights]
    runs = session.scalars(
        select(db.Run).where(db.Run.job_id.in_(job_ids), db.Run.series.is_not(None),
                             db.Run.purpose == "user")
    ).all()  # fmt: skip
    run_ids = [r.id for r in runs]
    measurements: dict[UUID, list[db.Measurement]] = defaultdict(list)
    for m in session.scalars(select(db.Measurement).where(db.Measurement.run_id.in_(run_ids))):
        measurements[m.run_id].append(m)
    verdicts = {v.run_id: v.verdict for v in
                session.scalars(select(db.Verdict).where(db.Verdict.run_id.in_(run_ids)))}  # fmt: skip
    placed = _placements(session, run_ids)
    kinds = _op_kinds(session, {r.model_sha256 for r in runs})
    # (key) → night → point parts
    points: dict[SeriesKey, dict[date, NightPoint]] = defaultdict(dict)
    simulated_of: dict[tuple[str, str], bool] = {}
    nightly = [r for r in runs if r.parent_run_id is None]
    children: dict[UUID, list[db.Run]] = defaultdict(list)  # repeats, then confirmations
    for r in sorted(runs, key=lambda r: (r.probe_repeat is None, r.probe_repeat or 0)):
        if r.parent_run_id is not None:
            children[r.parent_run_id].append(r)
    for run in runs:
        if run.simulated is not None and run.series is not None:
            simulated_of.setdefault((run.series, run.device_class), bool(run.simulated))
    for run in nightly:
        night = night_of[run.job_id]
        simulated = simulated_of.get((run.series or "", run.device_class))
        if simulated is None:
            continue  # never reached a device: the missing/failed night has no kind to join
        tonight = [run, *children.get(run.id, [])]
        for units in units_all:
            key = SeriesKey(run.series or "", run.device_class, units, simulated)
            measured = [(r, m) for r in tonight if r.status == "succeeded"
                        for m in measurements.get(r.id, [])
                        if m.compute_units == units and m.samples_ms and not m.error_kind]  # fmt: skip
            if not measured:
                if run.status in ("queued", "running", "waiting"):
                    continue  # not final (a night analysed early): no point
                got = next((m for m in measurements.get(run.id, [])
                            if m.compute_units == units), None)  # fmt: skip
                reason = (got.error_message if got is not None and got.error_kind else None) or (
                    run.error_message or f"run {run.status}"
                )
                points[key][night] = NightPoint(night, PointStatus.FAILED, reason[:500],
                                                conditions=_conditions(run))  # fmt: skip
                continue
            # The first run that measured gives the night's conditions, plan and times.
            first, got = measured[0]
            samples = [Run(tuple(float(x) for x in m.samples_ms if x and x > 0))
                       for _, m in measured]  # fmt: skip
            # Thermal: the hottest run in the night's figure (one throttled run moves it).
            hot = hottest(r.thermal_state or "" for r, _ in measured)
            conditions = replace(_conditions(first), thermal_state=hot)
            ops = placed.get(first.id) or placed.get(run.id)
            placement = (
                {name: PlacedOp(unit, kinds.get((run.model_sha256, name), ""))
                 for name, unit in ops.items()} if ops else None
            )  # fmt: skip
            points[key][night] = NightPoint(
                night, PointStatus.OK, runs=tuple(samples),
                verdict=verdicts.get(first.id) or verdicts.get(run.id),
                placement=placement, compile_ms=_positive(got.cold_load_ms),
                load_ms=_positive(got.warm_load_ms), conditions=conditions,
            )  # fmt: skip
    for missing in session.scalars(
        select(db.SweepMissing).where(db.SweepMissing.job_id.in_(job_ids))
    ):
        night = night_of[missing.job_id]
        classes = [missing.device_class] if missing.device_class else sorted(
            {c for (s, c) in simulated_of if s == missing.series})  # fmt: skip
        for device_class in classes:
            simulated = simulated_of.get((missing.series, device_class))
            if simulated is None:
                continue
            for units in [missing.compute_units] if missing.compute_units else units_all:
                key = SeriesKey(missing.series, device_class, units, simulated)
                points[key].setdefault(night, NightPoint(night, PointStatus.MISSING,
                                                         missing.reason[:500]))  # fmt: skip
    baselines = list(session.scalars(
        select(db.SweepBaseline).where(db.SweepBaseline.sweep_id == sweep.id)
        .order_by(db.SweepBaseline.created_at, db.SweepBaseline.id)
    ))  # fmt: skip
    out = []
    for key, by_night in sorted(points.items(), key=lambda kv: _order(kv[0], units_all)):
        ordered = tuple(by_night[n] for n in sorted(by_night))
        rule = _rule(baselines, key, night_of, set(by_night))
        out.append(SeriesHistory(key, ordered, rule))
    return out, night_runs(session, nights[-1][0]), nights[-1][1]


def _order(key: SeriesKey, units: list[str]) -> tuple[Any, ...]:
    rank = units.index(key.compute_units) if key.compute_units in units else len(units)
    return (key.simulated, key.device_class, key.series, rank)


def _conditions(run: db.Run) -> Conditions:
    return Conditions(
        model_sha256=run.model_sha256, os_version=run.os_version or "",
        os_build=run.os_build or "", runner_version=run.runner_version or "",
        udid=run.udid or "", thermal_state=run.thermal_state or "",
    )  # fmt: skip


def _positive(value: float | None) -> float | None:
    return value if value is not None and value > 0 else None
