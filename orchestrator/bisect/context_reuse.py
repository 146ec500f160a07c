"""Context search once per model, device class, OS build and runner: a later run of the
same model on the same conditions (tonight's night of a sweep, a resubmitted job) reads
the windows measured before instead of running them again (issue 17: unchanged models
are cheap; timing of the model itself is always measured again).

Single-op probes are reused through the compatibility matrix (``bisect/matrix.py``); a
window is not an op signature but a stretch of one model, so its reading is reused from
the earlier run of that very model (same sha256) whose windows were the same.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.bisect.window_reading import WindowReading
from orchestrator.store import models as db

if TYPE_CHECKING:
    from orchestrator.bisect.window_runs import Window

CANDIDATES = 5  # the latest earlier runs looked at: the newest match is enough


@dataclass(frozen=True)
class Reused:
    run: str  # the earlier parent run whose windows are read again
    windows: list[dict[str, Any]]
    readings: dict[str, WindowReading]


def earlier_windows(session: Session, parent: db.Run, wanted: list[Window]) -> Reused | None:
    """The windows (and their readings) of the latest earlier run of the same model on
    the same device class, OS build, runner version and kind (SIMULATED or real), when
    they were the same windows and every one of them was read; else None."""
    if parent.os_build is None or parent.runner_version is None:
        return None
    shape = [_shape(asdict(w)) for w in wanted]
    earlier = session.scalars(
        select(db.Run)
        .where(
            db.Run.model_sha256 == parent.model_sha256,
            db.Run.device_class == parent.device_class,
            db.Run.os_build == parent.os_build,
            db.Run.runner_version == parent.runner_version,
            db.Run.simulated == parent.simulated,
            db.Run.purpose == parent.purpose,
            db.Run.id != parent.id,
            db.Run.bisect_state == db.BisectState.DONE,
        )
        .order_by(db.Run.created_at.desc())
        .limit(CANDIDATES)
    )
    for run in earlier:
        context = (run.bisection or {}).get("context") or {}
        windows = context.get("windows") or []
        # The first round's windows decide: later rounds (prefix search narrowing, windows
        # beside the cause it found) follow from its readings, which are the ones reused.
        first = [_shape(w) for w in windows if int(w.get("round") or 1) == 1]
        if context.get("state") != "done" or first != shape:
            continue
        readings = _readings(session, windows)
        if readings is not None:
            return Reused(str(run.id), [dict(w) for w in windows], readings)
    return None


def _shape(window: dict[str, Any]) -> tuple[int, int, tuple[int, ...], tuple[int, ...]]:
    return (window["start"], window["stop"], tuple(window["inner"]), tuple(window["causes"]))


def _readings(session: Session, windows: list[dict[str, Any]]) -> dict[str, WindowReading] | None:
    out = {}
    for w in windows:
        try:
            probe = session.get(db.Run, UUID(str(w["run"])))
        except ValueError:  # "model-i": read from the model's own timing, nothing to reuse
            return None
        reading = (probe.bisection or {}).get("reading") if probe is not None else None
        if reading is None:
            return None
        out[str(w["run"])] = WindowReading(**reading)
    return out
