"""Stored sweep definitions: add (create or update, saying what changed), list, show,
remove, pause and resume. The definition is validated before anything is written."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from orchestrator.store import models as db
from orchestrator.sweeps.definition import SweepDefinition, load_file, shown
from orchestrator.sweeps.nights import load_sweep
from orchestrator.sweeps.schedule import next_fire


@dataclass
class AddOutcome:
    name: str
    created: bool
    changes: list[str] = field(default_factory=list)  # "key: old → new", one per key

    def summary(self) -> str:
        if self.created:
            return f"sweep {self.name}: added"
        if not self.changes:
            return f"sweep {self.name}: unchanged"
        return f"sweep {self.name}: updated ({len(self.changes)} change(s))"


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """One line per top-level key that changed, in the definition's key order."""
    lines = []
    for key in dict.fromkeys([*new, *old]):
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        if key == "models" and isinstance(before, list) and isinstance(after, list):
            gone = [m for m in before if m not in after]
            came = [m for m in after if m not in before]
            parts = [f"+{_entry(m)}" for m in came] + [f"-{_entry(m)}" for m in gone]
            lines.append(f"models: {', '.join(parts) or 'reordered'}")
            continue
        lines.append(f"{key}: {_short(before)} → {_short(after)}")
    return lines


def _entry(model: dict[str, Any]) -> str:
    return f"{model['name']}={model['path']}" if model.get("name") else str(model["path"])


def add_file(session: Session, path: Path, *, now: datetime | None = None) -> AddOutcome:
    """Validate ``path`` and store it: a new sweep, or an update of the one of its name."""
    definition = load_file(path)
    return add(session, definition, source_path=str(Path(path).resolve()), now=now)


def add(
    session: Session,
    definition: SweepDefinition,
    *,
    source_path: str | None,
    now: datetime | None = None,
) -> AddOutcome:
    now = now or datetime.now(UTC)
    data = definition.model_dump(mode="json")
    sweep = session.scalars(select(db.Sweep).where(db.Sweep.name == definition.name)).one_or_none()
    if sweep is None:
        sweep = db.Sweep(name=definition.name, paused=False, created_at=now)
        _take(sweep, definition, data, source_path=source_path, now=now)
        session.add(sweep)
        session.flush()
        return AddOutcome(definition.name, created=True)
    changes = diff(shown(sweep.definition), shown(data))
    if sweep.source_path != source_path:
        changes.append(f"file: {sweep.source_path} → {source_path}")
    if changes:
        _take(sweep, definition, data, source_path=source_path, now=now)
    return AddOutcome(definition.name, created=False, changes=changes)


def _take(
    sweep: db.Sweep,
    definition: SweepDefinition,
    data: dict[str, Any],
    *,
    source_path: str | None,
    now: datetime,
) -> None:
    """What a sweep file decides, on a new sweep or on the one of its name it updates."""
    sweep.definition = data
    sweep.schedule = definition.schedule
    sweep.timezone = definition.timezone
    sweep.source_path = source_path
    sweep.updated_at = now


def set_paused(session: Session, name: str, paused: bool) -> bool:
    """Pause or resume; whether anything changed."""
    sweep = load_sweep(session, name)
    if sweep.paused == paused:
        return False
    sweep.paused = paused
    sweep.updated_at = datetime.now(UTC)
    return True


def remove(session: Session, name: str) -> int:
    """Delete the definition; its nights stay as ordinary jobs (`anefarm jobs`, `report`)
    and leave the sweep's history. The number of nights released."""
    sweep = load_sweep(session, name)
    released = len(session.scalars(select(db.Job.id).where(db.Job.sweep_id == sweep.id)).all())
    session.execute(update(db.Job).where(db.Job.sweep_id == sweep.id).values(sweep_id=None))
    session.delete(sweep)
    return released


@dataclass(frozen=True)
class NightSummary:
    job: UUID
    scheduled_for: datetime | None
    started_at: datetime | None
    status: str
    late: bool
    trigger: str | None
    runs: int
    missing: int

    def to_json(self) -> dict[str, Any]:
        return {
            "job": str(self.job),
            "scheduled_for": _iso(self.scheduled_for),
            "started_at": _iso(self.started_at),
            "status": self.status,
            "late": self.late,
            "trigger": self.trigger,
            "runs": self.runs,
            "missing": self.missing,
        }


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


def nights(session: Session, sweep_id: UUID, *, limit: int = 7) -> list[NightSummary]:
    """The newest nights of a sweep (by scheduled time), with their run and missing counts."""
    jobs = list(
        session.scalars(
            select(db.Job)
            .where(db.Job.sweep_id == sweep_id)
            .order_by(db.Job.scheduled_for.desc())
            .limit(limit)
        )
    )
    ids = [j.id for j in jobs]
    runs = dict(
        session.execute(
            select(db.Run.job_id, func.count())
            .where(db.Run.job_id.in_(ids), db.Run.series.is_not(None))
            .group_by(db.Run.job_id)
        ).all()
    )
    missing = dict(
        session.execute(
            select(db.SweepMissing.job_id, func.count())
            .where(db.SweepMissing.job_id.in_(ids))
            .group_by(db.SweepMissing.job_id)
        ).all()
    )
    return [
        NightSummary(j.id, j.scheduled_for, j.started_at, str(j.status), bool(j.late),
                     str(j.trigger) if j.trigger else None, runs.get(j.id, 0),
                     missing.get(j.id, 0))
        for j in jobs
    ]  # fmt: skip


def describe(sweep: db.Sweep, *, now: datetime | None = None) -> dict[str, Any]:
    """A sweep as `sweep list/show --json` print it (without its nights)."""
    definition = SweepDefinition.model_validate(sweep.definition)
    now = now or datetime.now(UTC)
    # In the sweep's own timezone: the wall-clock time its cron means.
    fires = next_fire(sweep.schedule, sweep.timezone, now).astimezone(definition.zone)
    return {
        "name": sweep.name,
        "schedule": sweep.schedule,
        "timezone": sweep.timezone,
        "paused": sweep.paused,
        "next_fire": None if sweep.paused else fires.isoformat(),
        "devices": definition.devices,
        "models": len(definition.models),
        "source_path": sweep.source_path,
        "created_at": _iso(sweep.created_at),
        "updated_at": _iso(sweep.updated_at),
    }


def list_sweeps(session: Session) -> list[db.Sweep]:
    return list(session.scalars(select(db.Sweep).order_by(db.Sweep.name)))
