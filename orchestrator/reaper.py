"""The coordinator's reaper of stranded runs: batches stranded by a device or worker that
went away are re-routed. (Not the nightly sweeps of models × devices: this module was
``orchestrator/sweep.py``; its task and lock keep their wire names.)

A batch pinned to one device (a retry sent to a chosen device, a probe run that must
measure the parent's OS build) waits in that device's own queue, which no other worker
consumes. If the device detaches, dies or is quarantined before taking it, the run would
wait forever. Every ``interval`` the reaper looks at queued runs with a pinned device that
has no live heartbeat (or is quarantined) and treats the lost delivery as an infra
attempt: recorded as ``device_gone``, then retried like any infra failure
(``orchestrator.runs``: the run lifecycle's retry-or-fail) (another live
device of the class, the same OS for probes, within the attempt budget) or failed.

A batch whose worker died mid-run (its busy mark outlives the worker: the device has no
heartbeat, or its heartbeat comes from a restarted worker) is handled the same way, at
once instead of after the broker's visibility timeout (twice the run timeout); the old
delivery, if Redis hands it out again, is marked superseded and skipped by the worker.

Exactly one result still holds: the lost attempt has its row, so if the device comes back
and runs the stale batch after all, ingest sees a duplicate (run, attempt) and drops it.

It then makes sure every other unfinished run has a way to finish
(``orchestrator.redelivery``): a queued run whose message Redis lost is published again,
a waiting run is published once a device of its class is live, and a run that waited
longer than ``device_wait_s`` for any device fails. After a Redis restart, deliveries
orphaned by it are handed back at once (``orchestrator.delivery.inflight``).

The reaper runs as a Celery task on the coordinator's own ``results`` queue, serially with
ingest (one writer for SQLite). A timer thread in the coordinator's main process sends
it every ``interval``; nothing of the schedule lives in Redis (a countdown message held
by the worker was lost with a Redis restart, and with it every later pass). A Redis lock
(``SET NX`` with a TTL a little under the interval) lets only one pass run per interval
when two coordinators share a broker.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from uuid import UUID

from celery import Celery
from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator import redelivery
from orchestrator.delivery import inflight
from orchestrator.ingest import Ingestor
from orchestrator.protocol import livestate
from orchestrator.protocol.transport import RESULTS_QUEUE
from orchestrator.runs import FINAL, Effects
from orchestrator.store import models as db
from orchestrator.store.engine import session_scope

log = logging.getLogger(__name__)
# Wire names of the first version (orchestrator/sweep.py): coordinators of both versions
# sharing a broker still take one lock and one task name.
REAP_TASK = "anefarm.sweep"
LOCK_KEY = "anefarm:sweep:lock"
GONE = "device_gone"


def interval_s(heartbeat_ttl_s: float) -> float:
    """Half the heartbeat TTL: a device is called gone only once its heartbeat expired."""
    return max(1.0, heartbeat_ttl_s / 2)


def reap(ingestor: Ingestor) -> list[str]:
    """Re-route runs stranded by a device or worker that went away, re-publish lost
    batches, settle waiting runs; the run ids handled."""
    client = ingestor.redis
    restart = inflight.restarted_at(client)
    if restart is not None:
        inflight.restore_orphans(ingestor.app, restart)
    live = {
        d.udid
        for d in livestate.live_devices(client)
        if d.state != livestate.DeviceState.QUARANTINED
    }
    handled: list[str] = []
    after = Effects()
    with session_scope(ingestor.sessions) as session:
        stuck = session.scalars(
            select(db.Run)
            .where(db.Run.status == db.RunStatus.QUEUED, db.Run.pinned_udid.is_not(None))
            .order_by(db.Run.created_at)
        ).all()
        for run in stuck:
            if run.pinned_udid in live or livestate.is_cancelled(client, str(run.job_id)):
                continue
            message = (
                f"device {run.pinned_udid} went away (no heartbeat, or quarantined)"
                " before running the batch"
            )
            gone = str(run.pinned_udid)
            if _reroute(ingestor, session, run.id, run.attempts, gone, message, after):
                handled.append(str(run.id))
        handled += _lost_workers(ingestor, session, after)
        every = interval_s(ingestor.settings.heartbeat_ttl_s)
        # Runs that waited too long for a device fail first: nothing to publish for them.
        handled += redelivery.settle_waiting(
            ingestor, session, after, device_wait_s=ingestor.settings.device_wait_s
        )
        handled += redelivery.republish_lost(
            ingestor, session, after, grace=redelivery.grace_s(every)
        )
    ingestor.apply(after)
    return handled


def _lost_workers(ingestor: Ingestor, session: Session, after: Effects) -> list[str]:
    """Batches whose worker died while running them (a busy mark outlives its worker): the
    attempt is lost now, not when Redis hands the batch out again after the visibility
    timeout (twice the run timeout)."""
    client, handled = ingestor.redis, []
    ttl = int(2 * ingestor.settings.run_timeout_s + 120)
    for udid, raw, mark in livestate.lost_batches(client):
        # A packed batch's mark names its other runs too: each was lost with the worker.
        for entry in [mark, *(mark.get("packed") or [])]:
            try:
                run_id, attempt = UUID(str(entry.get("run"))), int(entry["attempt"])
            except (ValueError, TypeError, KeyError):  # a reboot mark, or an older agent's
                continue
            message = f"the worker running it on {udid} went away mid-run"
            if _reroute(ingestor, session, run_id, attempt, udid, message, after):
                livestate.supersede(client, str(run_id), attempt, ttl_s=ttl)
                handled.append(str(run_id))
        livestate.clear_busy_if(client, udid, raw)
    return handled


def _reroute(
    ingestor: Ingestor,
    session: Session,
    run_id: UUID,
    attempt: int,
    gone: str,
    message: str,
    after: Effects,
) -> bool:
    """Record ``attempt`` of the run as lost and retry it (or fail it within the budget);
    False when the run is final, already past that attempt, or has its result."""
    run = session.get(db.Run, run_id, with_for_update=True)
    if run is None or run.status in FINAL or run.attempts != attempt:
        return False
    recorded = select(db.RunAttempt.id).where(
        db.RunAttempt.run_id == run.id, db.RunAttempt.attempt == attempt
    )
    if session.scalar(recorded.limit(1)) is not None:
        return False
    now = datetime.now(UTC)
    session.add(
        db.RunAttempt(run_id=run.id, attempt=attempt, udid=gone, agent="", outcome="infra_error",
                      failure_kind=GONE, failure_message=message, diagnostics=[],
                      started_at=now, finished_at=now)
    )  # fmt: skip
    session.flush()
    live = livestate.live_devices(ingestor.redis)
    if ingestor.lifecycle.retry_or_fail(session, run, GONE, message, avoid=gone, live=live,
                                        effects=after, backoff=False):  # fmt: skip
        log.warning("run %s: %s; attempt %d re-routed", run.id, message, run.attempts)
    return True


def register(app: Celery, ingestor: Ingestor, every_s: float) -> None:
    """The reaper task on the coordinator's app (sent by :func:`start_timer`)."""

    @app.task(name=REAP_TASK)  # type: ignore[untyped-decorator,unused-ignore]
    def reap_task() -> int:
        # One pass per interval, however many coordinators send one.
        if not ingestor.redis.set(LOCK_KEY, "1", nx=True, ex=max(1, int(every_s * 0.8))):
            return 0
        return len(reap(ingestor))


def start_timer(app: Celery, every_s: float) -> threading.Event:
    """Send the reaper task now and every ``every_s`` until the returned event is set. A
    broker that is down is waited out: the next tick tries again."""
    stop = threading.Event()

    def tick() -> None:
        while True:
            try:
                # No retries: a tick that fails is followed by the next one anyway.
                app.send_task(REAP_TASK, queue=RESULTS_QUEUE, retry=False)
            except Exception as error:  # noqa: BLE001 - kombu/redis raise many kinds: all "not sent"
                log.warning("reaper not sent (broker unreachable?): %s", error)
            if stop.wait(every_s):
                return

    threading.Thread(target=tick, name="anefarm-reaper-timer", daemon=True).start()
    return stop
