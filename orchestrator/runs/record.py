"""What a batch result writes of a run's record: the device that ran it, its measurements
and its compute plan; and the rows a transaction of results reads, read once.

The coordinator ingests one result at a time on one process, so every row it writes per
result is time the whole farm waits for (docs/performance.md). The rows of a result are
therefore written as one multi-row INSERT per table (Core statements: no ORM object per
row, no autoflush), and the rows of an earlier attempt are deleted only when there can be
any: a run still on its first attempt has stored nothing before.

Results stored together (orchestrator/delivery/drain.py) mostly share their job, model and
device: :class:`Loaded` reads the runs (locked), their jobs and models, the devices (locked)
and the attempts already stored in one query each, and holds them for the transaction —
the session's identity map is weak, so without a strong reference every ``session.get`` of
the same job or model by the lifecycle and bisection was a query (and an autoflush) again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any, cast
from uuid import UUID

from sqlalchemy import Insert, Table, delete, insert, select
from sqlalchemy.orm import Session

from orchestrator import catalog
from orchestrator.modelkit.inventory import LintFinding
from orchestrator.protocol import RunBatchResult, RunnerResult, livestate
from orchestrator.store import models as db


@dataclass
class Loaded:
    """The rows one transaction of results reads, each read once and held until it ends."""

    runs: dict[UUID, db.Run] = field(default_factory=dict)  # locked (FOR UPDATE)
    devices: dict[str, db.Device] = field(default_factory=dict)  # locked, or added now
    devices_read: set[str] = field(default_factory=set)  # udids looked for (found or not)
    attempts: set[tuple[UUID, int]] = field(default_factory=set)  # (run, attempt) stored
    held: list[Any] = field(default_factory=list)  # jobs and models, for the identity map
    lint: dict[tuple[str, str], list[LintFinding]] = field(default_factory=dict)  # (sha, chip)

    @classmethod
    def read(cls, session: Session, results: list[RunBatchResult]) -> Loaded:
        """Runs first, then devices, each in one statement in key order: the locks are
        taken in the same order whatever the order of the results."""
        loaded = cls()
        run_ids = sorted({r.run_id for r in results})
        runs = session.scalars(
            select(db.Run).where(db.Run.id.in_(run_ids)).order_by(db.Run.id).with_for_update()
        ).all()
        loaded.runs = {run.id: run for run in runs}
        if not runs:
            return loaded
        loaded.attempts = {
            (row.run_id, row.attempt)
            for row in session.execute(
                select(db.RunAttempt.run_id, db.RunAttempt.attempt).where(
                    db.RunAttempt.run_id.in_(loaded.runs)
                )
            )
        }
        jobs = {run.job_id for run in runs}
        models = {run.model_sha256 for run in runs}
        loaded.held += session.scalars(select(db.Job).where(db.Job.id.in_(jobs))).all()
        loaded.held += session.scalars(select(db.Model).where(db.Model.sha256.in_(models))).all()
        udids = sorted({r.device.udid for r in results if r.run_id in loaded.runs})
        devices = session.scalars(
            select(db.Device)
            .where(db.Device.udid.in_(udids))
            .order_by(db.Device.udid)
            .with_for_update()
        ).all()
        loaded.devices = {device.udid: device for device in devices}
        loaded.devices_read = set(udids)
        return loaded


def touch_device(
    session: Session, result: RunBatchResult, loaded: Loaded | None = None
) -> db.Device:
    """The row of the device that ran the batch (made on its first result), locked for the
    transaction and brought up to date with what the result says of it."""
    info = result.device
    device = loaded.devices.get(info.udid) if loaded is not None else None
    if device is None and (loaded is None or info.udid not in loaded.devices_read):
        device = session.get(db.Device, info.udid, with_for_update=True)
    if device is None:
        known = catalog.DEVICES.get(info.product_type)
        device = db.Device(
            udid=info.udid,
            product_type=info.product_type,
            chip=known.chip if known else "unknown",
            state=livestate.DeviceState.READY,
            reasons=[],
            infra_failures_in_row=0,
        )
        session.add(device)
    if loaded is not None:
        loaded.devices[info.udid] = device
    device.os_version, device.os_build, device.name = info.os_version, info.os_build, info.name
    device.simulated, device.agent = info.simulated, result.agent
    device.last_seen = datetime.now(UTC)
    return device


@cache
def core_insert(model: type[db.Base]) -> Insert:
    """An INSERT into the model's table as a Core statement: executed at once, one executemany
    for a list of rows, without the ORM's bulk path or an autoflush. One statement object per
    table: SQLAlchemy memoises its cache key on it (not recomputed per result)."""
    return insert(cast(Table, model.__table__))


def earlier_attempts(run: db.Run) -> bool:
    """True when an earlier attempt of ``run`` may have stored rows: attempt numbers never
    exceed ``run.attempts``, so a run on its first attempt has none."""
    return run.attempts > 1


def store_measurements(session: Session, run: db.Run, runner: RunnerResult) -> None:
    """The run's measurements and plan placements, replacing an earlier attempt's: a run
    only ever keeps the rows of the attempt that finished it (a model failure may come
    after infra attempts that stored some)."""
    if earlier_attempts(run):
        session.execute(delete(db.Measurement).where(db.Measurement.run_id == run.id))
        session.execute(
            delete(db.OpPlacement).where(
                db.OpPlacement.run_id == run.id, db.OpPlacement.source == "plan"
            )
        )
    rows = [_measurement(run, setting) for setting in runner.settings]
    if rows:
        session.execute(core_insert(db.Measurement), rows)
    if runner.compute_plan is not None and runner.compute_plan.ops:
        session.execute(
            core_insert(db.OpPlacement),
            [
                {
                    "run_id": run.id,
                    "source": "plan",
                    "index": op.index,
                    "name": op.name,
                    "op_type": op.op_type,
                    "preferred": op.preferred,
                    "supported": [str(u) for u in op.supported],
                    "cost": op.cost,
                }
                for op in runner.compute_plan.ops
            ],
        )


def _measurement(run: db.Run, setting: Any) -> dict[str, Any]:
    stats, error = setting.stats, setting.error
    return {
        "run_id": run.id,
        "compute_units": setting.compute_units,
        "cold_load_ms": setting.cold_load_ms,
        "cold_load_provenance": setting.cold_load_provenance,
        "warm_load_ms": setting.warm_load_ms,
        "first_prediction_ms": setting.first_prediction_ms,
        "samples_ms": list(setting.latencies_ms),
        "count": stats.count if stats else 0,
        "min": stats.min if stats else None,
        "max": stats.max if stats else None,
        "mean": stats.mean if stats else None,
        "std": stats.std if stats else None,
        "p50": stats.p50 if stats else None,
        "p90": stats.p90 if stats else None,
        "p99": stats.p99 if stats else None,
        "error_kind": error.kind if error else None,
        "error_message": error.message if error else None,
    }
