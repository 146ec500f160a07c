"""The coordinator's scheduler: every tick, start each stored sweep's due night.

A thread of the coordinator's main process (``anefarm coordinator``: nothing else to
start). Each pass reads the sweeps and their latest nights from the database, asks
``schedule.due_fire`` which scheduled time is due now, and starts that night through
``nights.start_night`` — the same path as `anefarm sweep run`. Nothing of the schedule
lives in memory or in Redis between passes, so any coordinator can take over at any
time, and a restarted one finds a missed fire in the database by itself.

Exactly one night per (sweep, scheduled time), whoever fires: the unique index
``uq_jobs_sweep_scheduled_for`` makes a second coordinator's start fail with
``NightExists``, which is the normal outcome of a race and logged as such. A Redis lock
per (sweep, scheduled time) only saves the loser the work of planning the night (hashing
and reading 200 models takes seconds); it is not the guard: a Redis that is down, or a
lock that expired while its holder still planned, leads to the unique key, not to a
second night.

Why not Celery beat (with celery-redbeat's lock): one more process to run, a schedule
copied into Redis that must be kept in step with the stored sweeps, and a hot standby
that takes over only after the lock's timeout; it would still need this unique key. Here
the database holds the schedule, and both coordinators simply try.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

import redis
from celery import Celery
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from orchestrator.errors import AnefarmError
from orchestrator.protocol.transport import PipelinedPublisher, Publisher
from orchestrator.settings import Settings
from orchestrator.store import models as db
from orchestrator.sweeps.schedule import DueFire, SweepSchedule, due_fire, utc

log = logging.getLogger("anefarm.sweeps.scheduler")

Clock = Callable[[], datetime]
LOCK_PREFIX = "anefarm:sweeps:night:"
# Longer than planning the largest night takes (bench/sweeps.py); if the holder dies
# while planning, the other coordinator starts the night after this, marked late.
LOCK_LEASE_S = 300
# A night whose start failed (not a duplicate: a database error, a broken definition) is
# tried again after this, doubling up to the maximum, while it is within the grace.
RETRY_FIRST_S, RETRY_MAX_S = 30.0, 1800.0


class StartNight(Protocol):
    def __call__(
        self,
        *,
        settings: Settings,
        sessions: sessionmaker[Session],
        app: Celery,
        sweep_name: str,
        scheduled_for: datetime,
        late: bool = False,
        trigger: str = "manual",
        publisher: Publisher | None = None,
    ) -> UUID: ...


def wall_clock() -> datetime:
    return datetime.now(UTC)


def warped_clock(anchor: float, speed: float, real: Callable[[], float] = time.time) -> Clock:
    """The scheduler's clock for tests: real time until ``anchor`` (a Unix time), then
    ``speed`` times faster, so that "every minute for five minutes" takes seconds while
    every night is still claimed through the database as in production. Two coordinators
    given the same anchor and speed agree on the time."""

    def now() -> datetime:
        moment = real()
        if moment > anchor:
            moment = anchor + (moment - anchor) * speed
        return datetime.fromtimestamp(moment, UTC)

    return now


def clock_of(settings: Settings) -> Clock:
    if settings.sweep_clock_anchor is None:
        return wall_clock
    return warped_clock(settings.sweep_clock_anchor, settings.sweep_clock_speed)


@dataclass(frozen=True)
class Fired:
    """What one pass did about one due night."""

    sweep: str
    scheduled_for: datetime
    late: bool
    outcome: str  # started | exists | locked | failed
    job_id: UUID | None = None


def load_schedules(session: Session, now: datetime) -> list[tuple[SweepSchedule, datetime | None]]:
    """Every sweep with the latest scheduled time (at or before now) that has a night."""
    rows = session.execute(
        select(db.Job.sweep_id, func.max(db.Job.scheduled_for))
        .where(db.Job.sweep_id.is_not(None), db.Job.scheduled_for <= now)
        .group_by(db.Job.sweep_id)
    )
    latest = {sweep_id: last for sweep_id, last in rows}
    found = []
    for sweep in session.scalars(select(db.Sweep).order_by(db.Sweep.name)):
        # Edits (a new schedule, pause, resume) restart the clock: no catch-up on a
        # schedule the sweep did not have, or on nights that fell due while paused.
        since = max(utc(sweep.created_at), utc(sweep.updated_at or sweep.created_at))
        schedule = SweepSchedule(sweep.id, sweep.name, sweep.schedule, sweep.timezone,
                                 sweep.paused, since)  # fmt: skip
        last = latest.get(sweep.id)
        found.append((schedule, utc(last) if last is not None else None))
    return found


class Scheduler:
    """One coordinator's scheduler; :meth:`run_pass` is one tick's work."""

    def __init__(
        self,
        settings: Settings,
        *,
        sessions: sessionmaker[Session],
        app: Celery,
        clock: Clock = wall_clock,
        client: redis.Redis | None = None,
        start: StartNight | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if start is None:
            from orchestrator.sweeps.nights import start_night

            start = start_night
        self.settings, self.sessions, self.app = settings, sessions, app
        self.clock, self.client, self.start = clock, client, start
        self.monotonic = monotonic  # the retry back-off's clock (tests step it)
        self.grace = timedelta(seconds=settings.sweep_grace_s)
        # A due tick older than this scheduler fell while it was down: its night is late.
        self.up_since = clock()
        self._retry: dict[tuple[UUID, datetime], tuple[float, float]] = {}

    def due(self) -> list[DueFire]:
        now = self.clock()
        with self.sessions() as session:
            schedules = load_schedules(session, now)
        fires = []
        for schedule, last in schedules:
            try:
                fire = due_fire(schedule, now=now, grace=self.grace, last_night=last,
                                up_since=self.up_since)  # fmt: skip
            except (AnefarmError, ValueError, KeyError) as error:
                # A stored sweep whose cron or timezone this version cannot read: the
                # others still fire.
                log.error("sweep %s: cannot compute its schedule: %s", schedule.name, error)
                continue
            if fire is not None:
                fires.append(fire)
        return fires

    def run_pass(self) -> list[Fired]:
        fired = []
        due = self.due()
        # Back-offs of nights no longer due (started since, or past the grace) are done.
        self._retry = {k: v for k, v in self._retry.items()
                       if any((f.sweep_id, f.scheduled_for) == k for f in due)}  # fmt: skip
        for fire in due:
            key = (fire.sweep_id, fire.scheduled_for)
            retry = self._retry.get(key)
            if retry is not None and self.monotonic() < retry[0]:
                continue
            fired.append(self._fire(fire))
        return fired

    def _fire(self, fire: DueFire) -> Fired:
        from orchestrator.sweeps.nights import NightExists

        lock = self._lock(fire)
        if lock is False:
            return Fired(fire.name, fire.scheduled_for, fire.late, "locked")
        try:
            # A night's batches go to Redis in pipelines, not one round trip each.
            with PipelinedPublisher(self.app) as publisher:
                job_id = self.start(settings=self.settings, sessions=self.sessions,
                                    app=self.app, sweep_name=fire.name,
                                    scheduled_for=fire.scheduled_for, late=fire.late,
                                    trigger="schedule", publisher=publisher)  # fmt: skip
        except NightExists as exists:
            log.info("sweep %s: night of %s already started by another coordinator",
                     fire.name, fire.scheduled_for.isoformat())  # fmt: skip
            return Fired(fire.name, fire.scheduled_for, fire.late, "exists", exists.job_id)
        except Exception as error:  # noqa: BLE001 - a failed start is retried, never kills the loop
            self._back_off(fire, error)
            return Fired(fire.name, fire.scheduled_for, fire.late, "failed")
        finally:
            self._unlock(lock)
        self._retry.pop((fire.sweep_id, fire.scheduled_for), None)
        if fire.late:
            log.warning("sweep %s: night of %s started %s late (job %s); %d earlier missed"
                        " fire(s) not run", fire.name, fire.scheduled_for.isoformat(),
                        self.clock() - fire.scheduled_for, job_id, fire.skipped)  # fmt: skip
        else:
            log.info("sweep %s: night of %s started (job %s)", fire.name,
                     fire.scheduled_for.isoformat(), job_id)  # fmt: skip
        return Fired(fire.name, fire.scheduled_for, fire.late, "started", job_id)

    def _back_off(self, fire: DueFire, error: BaseException) -> None:
        key = (fire.sweep_id, fire.scheduled_for)
        delay = min(RETRY_MAX_S, self._retry[key][1] * 2) if key in self._retry else RETRY_FIRST_S
        self._retry[key] = (self.monotonic() + delay, delay)
        text = error.one_line() if isinstance(error, AnefarmError) else repr(error)
        log.error("sweep %s: night of %s not started: %s; trying again in %.0f s",
                  fire.name, fire.scheduled_for.isoformat(), text, delay)  # fmt: skip

    def _lock(self, fire: DueFire) -> Any:
        """A Redis lock (saves the other coordinator the planning), False when another
        holds it, None when Redis cannot say (then the unique key alone decides)."""
        if self.client is None:
            return None
        name = f"{LOCK_PREFIX}{fire.sweep_id}:{fire.scheduled_for.isoformat()}"
        lock = self.client.lock(name, timeout=LOCK_LEASE_S, blocking=False)
        try:
            return lock if lock.acquire() else False
        except redis.RedisError as error:
            log.warning("no Redis lock for sweep %s (%s): the database decides", fire.name, error)
            return None

    @staticmethod
    def _unlock(lock: Any) -> None:
        if lock:
            # Expired, or Redis gone: the lease ends by itself.
            with contextlib.suppress(redis.RedisError):
                lock.release()

    def run(self, stop: threading.Event, tick_s: float) -> None:
        """Passes every ``tick_s`` until ``stop`` is set; a failed pass (database or Redis
        away) is logged and the next tick tries again."""
        self.up_since = self.clock()  # the coordinator's start-up (seconds) was not "up"
        while not stop.is_set():
            try:
                self.run_pass()
            except Exception as error:  # noqa: BLE001 - the loop must outlive any outage
                log.warning("sweep scheduler pass failed: %s", error)
            stop.wait(tick_s)


class SchedulerThread:
    """The scheduler running in a thread of the coordinator, with its own engine."""

    def __init__(self, settings: Settings, *, broker_url: str) -> None:
        from orchestrator.protocol import livestate
        from orchestrator.protocol.transport import create_app
        from orchestrator.store.engine import make_engine, session_factory

        self.stopping = threading.Event()
        self.engine = make_engine(settings.resolved_database_url)
        # The coordinator forks its ingest child after this thread may have used the
        # pool: the child must never close (or use) the parent's connections.
        os.register_at_fork(after_in_child=lambda: self.engine.dispose(close=False))
        self.scheduler = Scheduler(
            settings,
            sessions=session_factory(self.engine),
            app=create_app(settings),  # its own producer pool, apart from the worker's
            clock=clock_of(settings),
            client=livestate.connect(broker_url),
        )
        self.thread = threading.Thread(
            target=self.scheduler.run,
            args=(self.stopping, settings.sweep_tick_s),
            name="anefarm-sweep-scheduler",
            daemon=True,
        )

    def start(self) -> SchedulerThread:
        if self.thread.ident is None and not self.stopping.is_set():  # once; not after stop
            self.thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """No new night after this; a night being started is finished (its transaction
        and publish), waited for up to ``timeout``."""
        self.stopping.set()
        if self.thread.is_alive():
            self.thread.join(timeout)
        self.engine.dispose()
