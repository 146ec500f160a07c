"""Runs per night: a sweep night's repeats of each series (docs/sweeps.md "Runs per night").

The night's definition says N (``repeats``, else ``ANEFARM_SWEEP_REPEATS``). ``dispatch``
plans the nightly run of each (model, class), as for any night; ``Repeats.add`` (dispatch's
``before_commit``, same transaction) adds repeats 1 … N−1 of each: copies with
``parent_run_id`` → the nightly run (as a confirmation run is), bisection skipped (the
nightly run bisects when it needs to; its copies only time). Where the class has several
usable live devices the N runs are pinned to distinct ones (repeat k of the class's m-th
series on device (m + k) mod D: different devices per series, even load); else they go to
the class queue (the same device when it is alone). ``RepeatPublisher`` sends each repeat's
batch right after its nightly run's, through the one publish path, after the commit. A
repeat retried after an infra failure goes to a live device its series does not use that
night when there is one (``runs.series_devices``, ``pick_device``'s ``used``), else to
another live device of the class as any retry.

The repeat index is kept in ``runs.probe_repeat`` (0 the nightly run; NULL on a
confirmation run): the column of a probe run's copies, reused to avoid a migration (a
``runs.repeat`` column is the clean form for the next one). ``alerts.inputs`` reads it to
tell repeats from confirmation runs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

import redis
from sqlalchemy.orm import Session

from orchestrator import runs
from orchestrator.dispatch import SubmittedRun
from orchestrator.protocol import RunBatch, livestate
from orchestrator.protocol.transport import Publisher
from orchestrator.settings import Settings
from orchestrator.store import models as db

log = logging.getLogger(__name__)


USABLE = (livestate.DeviceState.QUARANTINED, livestate.DeviceState.NOT_READY)  # states not to pin


def usable_devices(devices: Sequence[Any]) -> dict[str, list[str]]:
    """Device class → the udids a repeat may be pinned to (live, not quarantined, ready)."""
    out: dict[str, list[str]] = {}
    for d in devices:
        if d.state not in USABLE:
            out.setdefault(d.product_type, []).append(d.udid)
    return {c: sorted(set(udids)) for c, udids in out.items()}


@dataclass
class Repeats:
    """Tonight's runs per series beyond the nightly one: added to the night's transaction
    (``add``, dispatch's ``before_commit``), published right after their nightly run's
    batch by ``RepeatPublisher``."""

    count: int
    devices: dict[str, list[str]]  # device class → usable udids
    settings: Settings
    pins: dict[UUID, str] = field(default_factory=dict)  # nightly run → its device
    follow: dict[UUID, list[RunBatch]] = field(default_factory=dict)  # nightly run → repeats

    def devices_for(self, device_class: str, nth: int) -> list[str | None]:
        """Device of each repeat of the class's ``nth`` series: distinct where the class
        has ≥ 2 usable devices (shifted per series to spread the load), else the queue."""
        udids = self.devices.get(device_class, [])
        if len(udids) < 2:
            return [None] * self.count
        return [udids[(nth + k) % len(udids)] for k in range(self.count)]

    def add(self, session: Session, job_id: UUID, submitted: list[SubmittedRun]) -> None:
        if self.count <= 1:
            return
        lifecycle = runs.Lifecycle(self.settings)
        nth: dict[str, int] = {}
        for item in submitted:
            nightly = session.get(db.Run, item.run_id)
            assert nightly is not None, "dispatch flushed the night's runs"
            where = self.devices_for(item.device_class, nth.get(item.device_class, 0))
            nth[item.device_class] = nth.get(item.device_class, 0) + 1
            nightly.probe_repeat = 0
            if where[0] is not None and not item.waiting:
                nightly.pinned_udid = self.pins[nightly.id] = where[0]
            copies = [
                db.Run(
                    id=uuid4(), job_id=job_id, model_sha256=nightly.model_sha256,
                    device_class=nightly.device_class, status=nightly.status, attempts=1,
                    max_attempts=nightly.max_attempts, created_at=nightly.created_at,
                    queued_at=nightly.queued_at, waiting_since=nightly.waiting_since,
                    purpose=nightly.purpose, parent_run_id=nightly.id, series=nightly.series,
                    pinned_udid=None if item.waiting else udid, bisect_state="skipped",
                    probe_repeat=k,
                )
                for k, udid in enumerate(where[1:], start=1)
            ]  # fmt: skip
            session.add_all(copies)
            session.flush()
            if not item.waiting:  # a waiting class's repeats are published with it (reaper)
                self.follow[nightly.id] = [
                    lifecycle.batch_for(session, c, pinned_udid=c.pinned_udid) for c in copies
                ]


@dataclass
class RepeatPublisher:
    """The night's publisher, with each nightly batch pinned as ``Repeats`` chose and its
    repeats' batches sent right after it: through the one publish path, after the commit
    (a crash in between leaves queued runs the reaper publishes, as for any night)."""

    inner: Publisher
    repeats: Repeats

    def batch(
        self, batch: RunBatch, *, countdown: float | None = None, to_class: bool = False
    ) -> None:
        pinned = self.repeats.pins.get(batch.run_id)
        if pinned is not None:
            batch = batch.model_copy(update={"pinned_udid": pinned})
        self.inner.batch(batch, countdown=countdown, to_class=to_class)
        for copy in self.repeats.follow.pop(batch.run_id, []):
            self.inner.batch(copy)


def live_devices(settings: Settings) -> list[Any]:
    """The farm's live devices now (livestate.DeviceStatus); none without a broker or
    when Redis cannot be reached (the repeats then go to the class queue)."""
    if not settings.broker_url:
        return []
    try:
        return list(livestate.live_devices(livestate.connect(settings.broker_url)))
    except (redis.RedisError, OSError) as error:
        log.warning("live devices unknown (%s): tonight's repeats go to the class queue", error)
        return []
