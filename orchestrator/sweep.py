"""The coordinator's sweep: queued batches pinned to a device that went away are re-routed.

A batch pinned to one device (a retry sent to a chosen device, a probe run that must
measure the parent's OS build) waits in that device's own queue, which no other worker
consumes. If the device detaches, dies or is quarantined before taking it, the run would
wait forever. Every ``interval`` the sweep looks at queued runs with a pinned device that
has no live heartbeat (or is quarantined) and treats the lost delivery as an infra
attempt: recorded as ``device_gone``, then retried like any infra failure (another live
device of the class, the same OS for probes, within the attempt budget) or failed.

Exactly one result still holds: the lost attempt has its row, so if the device comes back
and runs the stale batch after all, ingest sees a duplicate (run, attempt) and drops it.

The sweep runs as a Celery task on the coordinator's own ``results`` queue, serially with
ingest (one writer for SQLite). Each run schedules the next one with a countdown; a Redis
lock (``SET NX`` with a TTL a little under the interval) lets only one chain live when a
coordinator restarts or two coordinators share a broker.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from celery import Celery

from orchestrator import livestate
from orchestrator.celery_app import RESULTS_QUEUE
from orchestrator.dispatch import publish
from orchestrator.ingest import FINAL, AfterCommit, Ingestor
from orchestrator.store import models as db
from orchestrator.store.engine import session_scope

log = logging.getLogger(__name__)
SWEEP_TASK = "anefarm.sweep"
LOCK_KEY = "anefarm:sweep:lock"
GONE = "device_gone"


def interval_s(heartbeat_ttl_s: float) -> float:
    """Half the heartbeat TTL: a device is called gone only once its heartbeat expired."""
    return max(1.0, heartbeat_ttl_s / 2)


def sweep(ingestor: Ingestor) -> list[str]:
    """Re-route queued runs pinned to devices that are gone; the run ids it handled."""
    client = ingestor.redis
    live = {
        d.udid
        for d in livestate.live_devices(client)
        if d.state != livestate.DeviceState.QUARANTINED
    }
    handled: list[str] = []
    after = AfterCommit()
    with session_scope(ingestor.sessions) as session:
        stuck = (
            session.query(db.Run)
            .filter(db.Run.status == db.RunStatus.QUEUED, db.Run.pinned_udid.isnot(None))
            .order_by(db.Run.created_at)
            .all()
        )
        for run in stuck:
            if run.pinned_udid in live or livestate.is_cancelled(client, str(run.job_id)):
                continue
            _reroute(ingestor, session, run, after)
            handled.append(str(run.id))
    for batch in after.batches:
        publish(ingestor.app, batch)
    return handled


def _reroute(ingestor: Ingestor, session: Any, run: Any, after: AfterCommit) -> None:
    gone = run.pinned_udid
    run = session.get(db.Run, run.id, with_for_update=True)
    if run is None or run.status in FINAL:
        return
    now = datetime.now(UTC)
    message = f"device {gone} went away (no heartbeat, or quarantined) before running the batch"
    session.add(
        db.RunAttempt(run_id=run.id, attempt=run.attempts, udid=gone, agent="", outcome="infra_error",
                      failure_kind=GONE, failure_message=message, diagnostics=[],
                      started_at=now, finished_at=now)
    )  # fmt: skip
    session.flush()
    if run.attempts < run.max_attempts:
        run.attempts += 1
        run.error_kind, run.error_message = GONE, message
        batch = ingestor.retry_batch(session, run, avoid=gone)
        run.pinned_udid = batch.pinned_udid
        after.batches.append(batch)
        log.warning("run %s: %s; attempt %d re-routed", run.id, message, run.attempts)
        return
    failure = f"gave up after {run.attempts} attempt(s): {message}"
    run.pinned_udid = None
    ingestor.finish(session, run, db.RunStatus.FAILED, GONE, failure, infra=True)
    ingestor.probe_final(session, run, None, failure, after)


def register(app: Celery, ingestor: Ingestor, every_s: float) -> None:
    """The sweep task on the coordinator's app; ``start`` kicks off its chain."""

    @app.task(name=SWEEP_TASK)  # type: ignore[untyped-decorator,unused-ignore]
    def sweep_task() -> int:
        # Only the chain that holds the lock continues; a duplicate chain ends here.
        if not ingestor.redis.set(LOCK_KEY, "1", nx=True, ex=max(1, int(every_s * 0.8))):
            return 0
        try:
            return len(sweep(ingestor))
        finally:
            schedule(app, every_s)


def schedule(app: Celery, countdown: float) -> None:
    app.send_task(SWEEP_TASK, queue=RESULTS_QUEUE, countdown=countdown)
