"""What a batch result writes of a run's record: the device that ran it, its measurements
and its compute plan.

The coordinator ingests one result at a time on one process, so every row it writes per
result is time the whole farm waits for (docs/performance.md). The rows of a result are
therefore written as one multi-row INSERT per table (an executemany, no ORM object per
row), and the rows of an earlier attempt are deleted only when there can be any: a run
still on its first attempt has stored nothing before.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, insert
from sqlalchemy.orm import Session

from orchestrator import catalog
from orchestrator.protocol import RunBatchResult, RunnerResult, livestate
from orchestrator.store import models as db


def touch_device(session: Session, result: RunBatchResult) -> db.Device:
    """The row of the device that ran the batch (made on its first result), locked for the
    transaction and brought up to date with what the result says of it."""
    info = result.device
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
    device.os_version, device.os_build, device.name = info.os_version, info.os_build, info.name
    device.simulated, device.agent = info.simulated, result.agent
    device.last_seen = datetime.now(UTC)
    return device


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
        session.execute(insert(db.Measurement), rows)
    if runner.compute_plan is not None and runner.compute_plan.ops:
        session.execute(
            insert(db.OpPlacement),
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
