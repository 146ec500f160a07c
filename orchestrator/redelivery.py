"""Every queued run has a message, every waiting run gets one: the reaper's second half.

The database says which runs are unfinished; these passes make sure each has a live way
to finish within a bounded time (issue #12's invariant):

- a **queued run whose batch Redis no longer holds** (Redis restarted without its AOF, a
  publish failed after its transaction committed, a process died in between) is
  published again, same attempt: if the old copy turns up after all, the second result
  of that attempt is a duplicate to ingest and the worker skips a batch of a final run;
- a **waiting run** (no device of its class when it was submitted) is published once a
  device of the class is live, and fails "no device" after ``device_wait_s``;
- a **run queued for longer than ``device_wait_s`` whose class has no live device now**
  fails the same way, instead of waiting in a queue nobody consumes.

A run is only called lost ``grace_s`` after it was (re)queued, so a batch being published
right now, or held back by a retry's backoff, is never published twice.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.delivery import inflight
from orchestrator.ingest import Ingestor
from orchestrator.protocol import livestate
from orchestrator.runs import Effects
from orchestrator.store import models as db

log = logging.getLogger(__name__)
NO_DEVICE = "no_device"
# A second look, this much later, before a batch is called lost: a message can be
# between two of Redis's keys (popped from its queue, not yet in ``unacked``) for an
# instant, and a scan of several keys is not atomic.
SECOND_LOOK_S = 0.3


def grace_s(reap_every_s: float) -> float:
    return max(10.0, 2 * reap_every_s)


def republish_lost(
    ingestor: Ingestor, session: Session, after: Effects, *, grace: float
) -> list[str]:
    """Queued runs whose batch is nowhere in Redis, published again; their ids."""
    client = ingestor.redis
    cutoff = datetime.now(UTC) - timedelta(seconds=grace)
    old_enough = (db.Run.status == db.RunStatus.QUEUED) & (
        db.Run.queued_at.is_(None) | (db.Run.queued_at < cutoff)
    )
    if session.scalar(select(db.Run.id).where(old_enough).limit(1)) is None:
        return []  # the common case: reading every queue in Redis is not free
    # Redis first (in the direction messages flow), the database after: a run that was
    # ingested in between is final by then and not a candidate.
    held = _held(client)
    # Plain rows, not ORM objects: a large night has tens of thousands queued.
    candidates = session.execute(
        select(db.Run.id, db.Run.attempts, db.Run.pinned_udid)
        .where(old_enough)
        .order_by(db.Run.created_at)
    ).all()
    live = {d.udid for d in livestate.live_devices(client)}
    missing = [
        row
        for row in candidates
        # A batch pinned to a device that is gone is the first pass's (a new attempt).
        if (row.pinned_udid is None or row.pinned_udid in live) and not _is_held(row, held)
    ]
    if not missing:
        return []
    time.sleep(SECOND_LOOK_S)
    held = _held(client)
    handled = []
    for row in missing:
        run = session.get(db.Run, row.id, with_for_update=True)
        if run is None or run.status != db.RunStatus.QUEUED or _is_held(run, held):
            continue
        ingestor.lifecycle.republish(session, run, after)
        handled.append(str(run.id))
        log.warning("run %s attempt %d: its batch was lost; published again", run.id,
                    run.attempts)  # fmt: skip
    return handled


def _held(client: Any) -> tuple[set[str], set[str], set[str]]:
    return inflight.batch_ids(client), inflight.busy_runs(client), inflight.result_ids(client)


def _is_held(run: Any, held: tuple[set[str], set[str], set[str]]) -> bool:
    batches, busy, results = held
    batch_id = f"{run.id}-a{run.attempts}"
    return batch_id in batches or str(run.id) in busy or batch_id in results


def settle_waiting(
    ingestor: Ingestor, session: Session, after: Effects, *, device_wait_s: float
) -> list[str]:
    """Publish waiting runs whose class now has a device; fail runs that waited too long
    for one (waiting, or queued on a class with no live device)."""
    live = {
        d.product_type
        for d in livestate.live_devices(ingestor.redis)
        if d.state != livestate.DeviceState.QUARANTINED
    }
    now = datetime.now(UTC)
    deadline = now - timedelta(seconds=device_wait_s)
    handled = []
    waiting = session.scalars(
        select(db.Run).where(db.Run.status == db.RunStatus.WAITING).order_by(db.Run.created_at)
    ).all()
    for run in waiting:
        if run.device_class in live:
            ingestor.lifecycle.release(session, run, after)
            handled.append(str(run.id))
        elif _aware(run.waiting_since or run.created_at) < deadline:
            _no_device(ingestor, session, run, after, device_wait_s)
            handled.append(str(run.id))
    stale = session.scalars(
        select(db.Run)
        .where(db.Run.status == db.RunStatus.QUEUED)
        .where(db.Run.queued_at < deadline)
        .where(db.Run.device_class.not_in(live))
    ).all()
    for run in stale:
        _no_device(ingestor, session, run, after, device_wait_s)
        handled.append(str(run.id))
    return handled


def _no_device(
    ingestor: Ingestor, session: Session, run: db.Run, after: Effects, device_wait_s: float
) -> None:
    message = (
        f"no device of {run.device_class} was live within {device_wait_s / 3600:g} h"
        " (ANEFARM_DEVICE_WAIT_S)"
    )
    ingestor.lifecycle.finish(session, run, db.RunStatus.FAILED, NO_DEVICE, message,
                              infra=True, effects=after)  # fmt: skip


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes (stored as UTC).
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
