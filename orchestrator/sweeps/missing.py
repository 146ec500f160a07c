"""Missing is data: a series that has no run tonight gets a stored record with its reason
(``sweep_missing``), so history shows a hole with a cause, never silence.

Which series and classes a night expects: tonight's files on the farm's live classes of
the selector, plus whatever ran in the sweep's recent nights (``RECENT_NIGHTS``) that the
definition can still produce — a class whose phones are all off, a glob's file that was
deleted. After ``RECENT_NIGHTS`` without a run such a series or class ends (a model no
longer shipped, a generation retired) instead of being a hole for ever; a model named
explicitly (``name:`` + ``path:``) stays expected as long as the definition names it.

A run that was tried and failed needs no record here: its run row keeps the error, and
history reports it as ``failed`` with that reason (``orchestrator.sweeps.history``).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator import catalog
from orchestrator.store import models as db
from orchestrator.sweeps.definition import MODEL_SUFFIXES, Found, Missing, SweepDefinition

Kind = db.MissingKind
RECENT_NIGHTS = 7


@dataclass(frozen=True)
class MissingSeries:
    """A series with no run tonight (one record per class; ``device_class`` None: all)."""

    series: str
    device_class: str | None
    kind: db.MissingKind
    reason: str
    model_path: str | None = None
    model_sha256: str | None = None


@dataclass(frozen=True)
class Recent:
    """What ran in the sweep's recent nights: series → the device classes it ran on."""

    series: dict[str, set[str]]

    @property
    def classes(self) -> set[str]:
        return set().union(*self.series.values()) if self.series else set()


def recent(session: Session, sweep_id: UUID, before: datetime) -> Recent:
    """Series and classes with a run in the sweep's last ``RECENT_NIGHTS`` nights."""
    jobs = list(
        session.scalars(
            select(db.Job.id)
            .where(db.Job.sweep_id == sweep_id, db.Job.scheduled_for < before)
            .order_by(db.Job.scheduled_for.desc())
            .limit(RECENT_NIGHTS)
        )
    )
    series: dict[str, set[str]] = {}
    if jobs:
        rows = session.execute(
            select(db.Run.series, db.Run.device_class)
            .where(db.Run.job_id.in_(jobs), db.Run.series.is_not(None))
            .distinct()
        )
        for name, device_class in rows:
            if name is not None:
                series.setdefault(name, set()).add(device_class)
    return Recent(series)


def chip_of(device_class: str) -> str:
    known = catalog.DEVICES.get(device_class)
    return known.chip if known else "unknown chip"


def produced_by(definition: SweepDefinition, series: str) -> bool:
    """Could an entry of the definition still produce ``series``? (a glob's file gone)"""
    for entry in definition.models:
        if entry.name == series:
            return True
        if entry.name is None:
            pattern = Path(entry.path).name
            if any(fnmatch.fnmatchcase(series + suffix, pattern) for suffix in MODEL_SUFFIXES):
                return True
    return False


def selected(definition: SweepDefinition, device_class: str) -> bool:
    """Does the sweep's selector still mean this class (in the catalog)?"""
    if definition.devices.strip().lower() == "live":
        return True
    return any(d.product_type == device_class
               for _, found in catalog.select_terms(definition.devices) for d in found)  # fmt: skip


def gone_models(
    definition: SweepDefinition, resolved: Iterable[Found | Missing], before: Recent
) -> list[MissingSeries]:
    """Series with no file tonight: a named entry that matches nothing, and a recent
    series its glob no longer finds."""
    items = list(resolved)
    tonight = {m.series for m in items if isinstance(m, Found)}
    out = [
        MissingSeries(m.series, None, Kind.MODEL_MISSING, m.reason, m.pattern)
        for m in items
        if isinstance(m, Missing) and m.series not in tonight and not _is_pattern(m.series)
    ]
    named = {m.series for m in out}
    for series in sorted(before.series):
        if series not in tonight and series not in named and produced_by(definition, series):
            out.append(
                MissingSeries(series, None, Kind.MODEL_MISSING,
                              f"no file for series {series!r} tonight (it ran on a recent night)")
            )  # fmt: skip
    return out


def _is_pattern(series: str) -> bool:
    return any(c in series for c in "*?[")


def per_class(
    missing: list[MissingSeries],
    models: Iterable[tuple[str, str, str | None]],
    *,
    live: set[str],
    absent: set[str],
    no_class_reason: str | None,
) -> list[MissingSeries]:
    """One record per (series, class): records about a model (no class) are expanded to
    every class expected tonight; each model of tonight gets one per absent class.
    ``models``: (series, path, sha256) of tonight's readable models."""
    models = list(models)
    expected = sorted(live | absent)
    out: list[MissingSeries] = []
    for record in missing:
        if record.device_class is None and expected:
            out += [MissingSeries(record.series, c, record.kind, record.reason,
                                  record.model_path, record.model_sha256) for c in expected]  # fmt: skip
        else:
            out.append(record)
    for device_class in sorted(absent):
        reason = (
            f"no live device of {device_class} ({chip_of(device_class)}) on the farm"
            " when the night started"
        )
        out += [MissingSeries(series, device_class, Kind.DEVICE_CLASS_ABSENT, reason, path, sha)
                for series, path, sha in models]  # fmt: skip
    if not expected and models:
        # No class at all: still a night, with the reason on record for every series.
        why = no_class_reason or "no device class to run on"
        out += [MissingSeries(series, None, Kind.DEVICE_CLASS_ABSENT, why, path, sha)
                for series, path, sha in models]  # fmt: skip
    return out


def adder(missing: list[MissingSeries], now: datetime) -> Callable[[Session, UUID, object], None]:
    """The rows of a night's records, added in the transaction that stores the night."""

    def add(session: Session, job_id: UUID, _runs: object) -> None:
        session.add_all(
            db.SweepMissing(
                job_id=job_id,
                series=m.series,
                device_class=m.device_class,
                kind=m.kind,
                reason=m.reason[:4000],
                model_path=m.model_path,
                model_sha256=m.model_sha256,
                created_at=now,
            )
            for m in missing
        )

    return add
