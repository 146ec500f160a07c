"""The scheduler's claim path (orchestrator/sweeps/scheduler_loop.py) on a real database
and Redis, with an injected clock: a due night is started once through the real
``start_night``; a second scheduler racing for it ends at the unique key, with or without
the Redis lock; a paused sweep is held; a failed start is retried with back-off."""

from __future__ import annotations

import json
import sys
import threading
import traceback
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from orchestrator.protocol import ComputeUnits, RunBatch, RunPurpose
from orchestrator.protocol.transport import PipelinedPublisher, create_app, device_class_queue
from orchestrator.settings import Settings, load_settings
from orchestrator.store import models as db
from orchestrator.store.engine import session_scope
from orchestrator.sweeps import nights
from orchestrator.sweeps.definition import SweepDefinition
from orchestrator.sweeps.scheduler_loop import LOCK_PREFIX, Fired, Scheduler, load_schedules
from tests.contract.batches import run_batch

XR = "iPhone11,8"


def tiny_model(path: Path, seed: int) -> Path:
    """A distinct two-op neural network (.mlmodel, no conversion: a millisecond)."""
    from coremltools.models import datatypes
    from coremltools.models.neural_network import NeuralNetworkBuilder
    from coremltools.models.utils import save_spec

    weights = np.random.default_rng(seed).standard_normal((8, 16)).astype(np.float32)
    builder = NeuralNetworkBuilder([("x", datatypes.Array(16))], [("y", datatypes.Array(8))])
    builder.add_inner_product(name="fc", W=weights, b=None, input_channels=16, output_channels=8,
                              has_bias=False, input_name="x", output_name="h")  # fmt: skip
    builder.add_activation(name="relu", non_linearity="RELU", input_name="h", output_name="y")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_spec(builder.spec, str(path))
    return path


def store_sweep(sessions: sessionmaker[Session], models: list[Path], *, name: str = "nightly",
                cron: str = "0 2 * * *", tz: str = "UTC", devices: str = XR,
                since: datetime) -> uuid.UUID:  # fmt: skip
    """A stored sweep as `anefarm sweep add` leaves it, defined (or last edited) at ``since``."""
    definition = SweepDefinition.model_validate(
        {"name": name, "schedule": cron, "timezone": tz, "devices": devices,
         "models": [{"path": str(m)} for m in models], "compute_units": ["cpuAndNeuralEngine"],
         "iterations": 3}
    )  # fmt: skip
    with session_scope(sessions) as session:
        sweep = db.Sweep(name=name, definition=definition.model_dump(mode="json"), schedule=cron,
                         timezone=tz, paused=False, created_at=since, updated_at=since)  # fmt: skip
        session.add(sweep)
        session.flush()
        return sweep.id


def stored_nights(sessions: sessionmaker[Session], sweep_id: uuid.UUID) -> list[db.Job]:
    with sessions() as session:
        query = select(db.Job).where(db.Job.sweep_id == sweep_id).order_by(db.Job.scheduled_for)
        return list(session.scalars(query))


def when(job: db.Job) -> datetime:
    assert job.scheduled_for is not None
    moment = job.scheduled_for
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class Clock:
    """The scheduler's injected clock, set by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def settings(tmp_path: Path, db_url: str, redis_url: str) -> Settings:
    return load_settings(home=tmp_path / "home", database_url=db_url, broker_url=redis_url)


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return tiny_model(tmp_path / "models" / "detector.mlmodel", seed=1)


def make_scheduler(settings: Settings, sessions: sessionmaker[Session], clock: Clock,
                   **kw: Any) -> Scheduler:  # fmt: skip
    return Scheduler(settings, sessions=sessions, app=create_app(settings), clock=clock, **kw)


def test_a_due_night_is_started_once_through_start_night(settings, sessions, model, redis_url):
    sweep_id = store_sweep(sessions, [model], since=at("2026-11-26T12:00:00"))
    clock = Clock(at("2026-11-27T01:59:55"))
    scheduler = make_scheduler(settings, sessions, clock, client=redis.Redis.from_url(redis_url))
    assert scheduler.run_pass() == []  # not yet
    clock.now = at("2026-11-27T02:00:03")
    [fired] = scheduler.run_pass()
    assert (fired.outcome, fired.late) == ("started", False)
    assert scheduler.run_pass() == []  # the next tick finds it claimed
    clock.now = at("2026-11-27T02:00:40")
    assert scheduler.run_pass() == []
    [night] = stored_nights(sessions, sweep_id)
    assert night.id == fired.job_id
    assert when(night) == at("2026-11-27T02:00:00")
    assert night.trigger == db.NightTrigger.SCHEDULE and not night.late
    assert night.started_at is not None


def test_a_restart_after_missed_ticks_starts_one_late_night(settings, sessions, model):
    sweep_id = store_sweep(sessions, [model], cron="0 * * * *", since=at("2026-11-27T00:30:00"))
    clock = Clock(at("2026-11-27T05:20:00"))  # every coordinator was down since 00:30
    scheduler = make_scheduler(settings, sessions, clock)
    [fired] = scheduler.run_pass()
    assert fired.outcome == "started" and fired.late
    assert scheduler.run_pass() == []
    clock.now = at("2026-11-27T06:00:10")  # back on schedule
    [on_time] = scheduler.run_pass()
    assert not on_time.late
    found = [(when(j), j.late) for j in stored_nights(sessions, sweep_id)]
    assert found == [(at("2026-11-27T05:00:00"), True), (at("2026-11-27T06:00:00"), False)]


def test_a_fire_older_than_the_grace_is_dropped(settings, sessions, model):
    sweep_id = store_sweep(sessions, [model], since=at("2026-11-26T12:00:00"))
    short = settings.model_copy(update={"sweep_grace_s": 3600.0})
    scheduler = make_scheduler(short, sessions, Clock(at("2026-11-27T03:00:01")))
    assert scheduler.run_pass() == []
    assert stored_nights(sessions, sweep_id) == []


def test_two_schedulers_racing_past_the_check_end_at_the_unique_key(
    settings, sessions, model, monkeypatch
):
    """No Redis lock (Redis down, or a lease that expired while its holder planned): both
    schedulers see the night unclaimed and plan it; the database lets one in."""
    sweep_id = store_sweep(sessions, [model], since=at("2026-11-26T12:00:00"))
    # Each thread's first existence check (start_night's early one) says "none yet", as
    # when both check before either commits; the check after the unique key fires is real.
    real_check, seen = nights.existing_night, threading.local()

    def racing_check(session: Session, sweep: uuid.UUID, moment: datetime) -> uuid.UUID | None:
        if not getattr(seen, "checked", False):
            seen.checked = True
            return None
        return real_check(session, sweep, moment)

    monkeypatch.setattr(nights, "existing_night", racing_check)
    both = threading.Barrier(2)

    def start(**kw: Any) -> uuid.UUID:
        both.wait(timeout=30)
        return nights.start_night(**kw)

    clock = Clock(at("2026-11-27T02:00:02"))
    schedulers = [make_scheduler(settings, sessions, clock, start=start) for _ in range(2)]
    results: list[list[Fired]] = []
    threads = [threading.Thread(target=lambda s=s: results.append(s.run_pass()))
               for s in schedulers]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    stuck = [t for t in threads if t.is_alive()]
    # Once (fresh-clone run 9, late in a full run) one scheduler never returned: say where.
    assert not stuck, "a scheduler still runs after 60 s:\n" + "".join(
        "".join(traceback.format_stack(sys._current_frames()[t.ident or 0])) for t in stuck
    )
    fired = {f.outcome: f for result in results for f in result}
    assert sorted(fired) == ["exists", "started"]
    [night] = stored_nights(sessions, sweep_id)
    assert night.id == fired["started"].job_id == fired["exists"].job_id


def test_the_redis_lock_spares_the_other_coordinator_the_planning(
    settings, sessions, model, redis_client
):
    sweep_id = store_sweep(sessions, [model], since=at("2026-11-26T12:00:00"))
    clock = Clock(at("2026-11-27T02:00:02"))
    scheduler = make_scheduler(settings, sessions, clock, client=redis_client)
    held = redis_client.lock(f"{LOCK_PREFIX}{sweep_id}:{at('2026-11-27T02:00:00').isoformat()}",
                             timeout=30)  # fmt: skip
    assert held.acquire(blocking=False)  # the other coordinator is planning this night
    [fired] = scheduler.run_pass()
    assert fired.outcome == "locked" and stored_nights(sessions, sweep_id) == []
    held.release()  # it died before committing: the lock's lease ended
    [fired] = scheduler.run_pass()
    assert fired.outcome == "started"
    assert len(stored_nights(sessions, sweep_id)) == 1


def test_redis_down_leaves_the_database_to_decide(settings, sessions, model):
    sweep_id = store_sweep(sessions, [model], since=at("2026-11-26T12:00:00"))
    gone = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    scheduler = make_scheduler(settings, sessions, Clock(at("2026-11-27T02:00:02")), client=gone)
    [fired] = scheduler.run_pass()
    assert fired.outcome == "started"
    assert len(stored_nights(sessions, sweep_id)) == 1


def test_a_paused_sweep_is_held_and_resuming_does_not_catch_up(settings, sessions, model):
    sweep_id = store_sweep(sessions, [model], since=at("2026-11-26T12:00:00"))
    clock = Clock(at("2026-11-27T01:00:00"))
    scheduler = make_scheduler(settings, sessions, clock)

    def set_paused(paused: bool) -> None:
        with session_scope(sessions) as session:
            session.execute(update(db.Sweep).where(db.Sweep.id == sweep_id)
                            .values(paused=paused, updated_at=clock.now))  # fmt: skip

    set_paused(True)
    clock.now = at("2026-11-27T02:00:03")
    assert scheduler.run_pass() == []
    clock.now = at("2026-11-27T02:30:00")
    set_paused(False)  # resumed after its fire time: tonight's night is not owed
    assert scheduler.run_pass() == []
    clock.now = at("2026-11-28T02:00:01")
    [fired] = scheduler.run_pass()
    assert fired.outcome == "started" and not fired.late
    assert [when(j) for j in stored_nights(sessions, sweep_id)] == [at("2026-11-28T02:00:00")]


def test_a_failed_start_is_retried_with_back_off_not_every_tick(settings, sessions, model):
    sweep_id = store_sweep(sessions, [model], since=at("2026-11-26T12:00:00"))
    calls: list[datetime] = []
    failing = [True]

    def start(**kw: Any) -> uuid.UUID:
        calls.append(kw["scheduled_for"])
        if failing[0]:
            raise RuntimeError("database went away mid-plan")
        return nights.start_night(**kw)

    ticks = [1000.0]
    scheduler = make_scheduler(settings, sessions, Clock(at("2026-11-27T02:00:02")),
                               start=start, monotonic=lambda: ticks[0])  # fmt: skip
    [fired] = scheduler.run_pass()
    assert fired.outcome == "failed"
    assert scheduler.run_pass() == [] and len(calls) == 1  # backing off
    ticks[0] += 31
    failing[0] = False
    [fired] = scheduler.run_pass()
    assert fired.outcome == "started" and len(calls) == 2
    assert len(stored_nights(sessions, sweep_id)) == 1


def test_every_sweep_is_read_with_its_latest_night(settings, sessions, model, tmp_path):
    other = tiny_model(tmp_path / "models" / "other.mlmodel", seed=2)
    first = store_sweep(sessions, [model], name="a", since=at("2026-11-26T12:00:00"))
    store_sweep(sessions, [other], name="b", cron="0 4 * * *", tz="Europe/Berlin",
                since=at("2026-11-26T12:00:00"))  # fmt: skip
    scheduler = make_scheduler(settings, sessions, Clock(at("2026-11-27T02:00:01")))
    [fired] = scheduler.run_pass()
    assert fired.sweep == "a"
    with sessions() as session:
        found = {s.name: last for s, last in load_schedules(session, at("2026-11-27T02:30:00"))}
    assert found == {"a": at("2026-11-27T02:00:00"), "b": None}
    assert [j.sweep_id for j in stored_nights(sessions, first)] == [first]


def night_batch(i: int, purpose: RunPurpose = RunPurpose.USER) -> RunBatch:
    return run_batch(f"{i:064x}", units=[ComputeUnits.CPU_AND_NE], iterations=3, warmup=1,
                     timeout_s=60, purpose=purpose, device_class=XR)  # fmt: skip


def queued(client: redis.Redis, queue: str) -> list[str]:
    """Task ids waiting in ``queue`` (all priority lists), in the order a worker takes them."""
    ids = []
    keys = [k.decode() if isinstance(k, bytes) else str(k) for k in client.keys(f"{queue}*")]
    for key in sorted(keys):
        ids += [json.loads(m)["headers"]["id"] for m in reversed(client.lrange(key, 0, -1))]
    return ids


def test_a_nights_batches_go_to_redis_in_pipelines_as_the_one_publish_path_routes_them(
    tmp_path, redis_url, redis_client
):
    app = create_app(load_settings(home=tmp_path, broker_url=redis_url))
    users = [night_batch(i) for i in range(7)]
    probe = night_batch(99, RunPurpose.PROBE)
    with PipelinedPublisher(app, max_size=3) as publisher:
        for batch in [*users[:5], probe, *users[5:]]:
            publisher.batch(batch)
        sent = len(queued(redis_client, device_class_queue(XR)))
        assert 0 < sent < 8  # full pipelines already went out; the rest waits for the end
    # Every batch once, by its batch id, users before the probe (its lower priority).
    assert queued(redis_client, device_class_queue(XR)) == [b.batch_id for b in [*users, probe]]


def test_leaving_the_pipeline_by_an_error_drops_what_was_not_sent(
    tmp_path, redis_url, redis_client
):
    app = create_app(load_settings(home=tmp_path, broker_url=redis_url))
    with pytest.raises(RuntimeError), PipelinedPublisher(app, max_size=100) as publisher:
        publisher.batch(night_batch(1))
        raise RuntimeError("the night's transaction failed")
    assert queued(redis_client, device_class_queue(XR)) == []  # the reaper's job, if committed
