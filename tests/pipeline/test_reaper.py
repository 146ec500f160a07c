"""The coordinator's reaper: a queued batch pinned to a device that went away is re-routed
as a new attempt (or fails within the attempt budget), on real Redis and a real database."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import pytest
import redis
from sqlalchemy import select

from orchestrator.ingest import Ingestor
from orchestrator.protocol import livestate
from orchestrator.protocol.transport import create_app, device_class_queue, device_queue
from orchestrator.reaper import GONE, reap
from orchestrator.settings import load_settings
from orchestrator.store import models as db
from orchestrator.store.engine import make_engine, session_factory, session_scope
from orchestrator.store.migrate import upgrade
from tests.pipeline.farm import Farm
from tests.pipeline.test_pipeline import count

XR = "iPhone11,8"
GONE_UDID, LIVE_UDID = "SIM-iPhone11-8-0", "SIM-iPhone11-8-1"
NOW = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture
def ingestor(tmp_path, redis_url):
    url = f"sqlite:///{tmp_path / 'anefarm.db'}"
    upgrade(url)
    engine = make_engine(url)
    settings = load_settings(home=tmp_path, broker_url=redis_url, database_url=url)
    client = livestate.connect(redis_url)
    client.flushdb()
    yield Ingestor(
        settings, sessions=session_factory(engine), app=create_app(settings), client=client
    )
    engine.dispose()


def live(
    client, udid: str, *, os_version: str = "16.7.8", state: str = "ready", pid: int | None = None
) -> None:
    status = livestate.DeviceStatus(udid=udid, product_type=XR, chip="A12", os_version=os_version,
                                    os_build="20H338sim", name=udid, simulated=True, agent="a",
                                    state=state, pid=pid)  # fmt: skip
    livestate.put_device(client, status, ttl_s=60)


def stuck_run(
    sessions, *, attempts: int = 1, purpose: str = "user", bisection=None, queued_at=None
) -> uuid.UUID:
    """A queued run pinned to GONE_UDID, queued just now unless ``queued_at`` says
    otherwise (within the grace period, so the lost-batch check leaves it alone)."""
    with session_scope(sessions) as session:
        job = db.Job(id=uuid.uuid4(), created_at=NOW, status="running", selector=XR,
                     spec={"compute_units": ["all"]})  # fmt: skip
        if session.get(db.Model, "ab" * 32) is None:
            session.add(db.Model(sha256="ab" * 32, filename="m.mlmodel", format="mlmodel",
                                 size_bytes=1, created_at=NOW))  # fmt: skip
        session.add(job)
        run = db.Run(id=uuid.uuid4(), job_id=job.id, model_sha256="ab" * 32, device_class=XR,
                     status="queued", attempts=attempts, max_attempts=3, created_at=NOW,
                     purpose=purpose, pinned_udid=GONE_UDID, bisection=bisection,
                     queued_at=queued_at or datetime.now(UTC))  # fmt: skip
        session.add(run)
        return run.id


def waiting(client: redis.Redis, queue: str) -> int:
    # kombu keeps one Redis list per priority step: the queue name, and name + sep + step.
    return sum(int(client.llen(key)) for key in client.keys(f"{queue}*"))


def test_a_batch_pinned_to_a_gone_device_is_a_new_attempt_on_a_live_one(ingestor):
    live(ingestor.redis, LIVE_UDID)
    run_id = stuck_run(ingestor.sessions)
    assert reap(ingestor) == [str(run_id)]
    with ingestor.sessions() as session:
        run = session.get(db.Run, run_id)
        assert (run.status, run.attempts, run.pinned_udid) == ("queued", 2, LIVE_UDID)
        [lost] = session.scalars(select(db.RunAttempt).where(db.RunAttempt.run_id == run_id)).all()
        # The lost delivery has its row: a late result for attempt 1 is a duplicate.
        assert (lost.attempt, lost.outcome, lost.failure_kind, lost.udid) == (
            1,
            "infra_error",
            GONE,
            GONE_UDID,
        )
    assert waiting(ingestor.redis, device_queue(LIVE_UDID)) == 1
    assert reap(ingestor) == []  # now pinned to a live device: left alone


def test_a_live_pinned_device_is_left_alone_and_a_quarantined_one_is_not(ingestor):
    live(ingestor.redis, GONE_UDID)
    run_id = stuck_run(ingestor.sessions)
    assert reap(ingestor) == []
    livestate.quarantine(ingestor.redis, GONE_UDID, "3 infra failures")
    live(ingestor.redis, GONE_UDID, state="quarantined")
    assert reap(ingestor) == [str(run_id)]
    assert waiting(ingestor.redis, device_class_queue(XR)) == 1  # no other device: the class


def test_the_attempt_budget_still_holds(ingestor):
    run_id = stuck_run(ingestor.sessions, attempts=3)
    assert reap(ingestor) == [str(run_id)]
    with ingestor.sessions() as session:
        run = session.get(db.Run, run_id)
        assert (run.status, run.error_kind, run.infra_failure) == ("failed", GONE, True)
        assert "gave up after 3 attempt(s)" in run.error_message
    assert waiting(ingestor.redis, device_class_queue(XR)) == 0


def test_a_probe_goes_only_to_a_device_on_the_same_os(ingestor):
    live(ingestor.redis, LIVE_UDID, os_version="18.7")  # another OS build: not for this probe
    key = {"chip": "A12", "os_build": "20H338sim", "runner_version": "sim-1", "simulated": True,
           "device_class": XR, "os_version": "16.7.8"}  # fmt: skip
    run_id = stuck_run(ingestor.sessions, purpose="probe", bisection={"key": key})
    assert reap(ingestor) == [str(run_id)]
    assert waiting(ingestor.redis, device_queue(LIVE_UDID)) == 0
    assert waiting(ingestor.redis, device_class_queue(XR)) == 1


# Farm.at starts the agent's Celery workers in the test body
@pytest.mark.celery
def test_the_coordinator_reaps_on_its_own(tmp_path, redis_url):
    farm = Farm.at(tmp_path, redis_url)
    try:
        sessions = farm.sessions()
        live(farm.redis(), LIVE_UDID)
        run_id = stuck_run(sessions)
        farm.start_coordinator()  # heartbeat TTL 6 s in the farm: a reaper pass every 3 s
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with sessions() as session:
                if session.get(db.Run, run_id).attempts == 2:
                    break
            time.sleep(0.3)
        else:
            raise AssertionError("the coordinator never re-routed the run\n" + farm.logs())
    finally:
        farm.kill()  # nothing is asserted after: no warm shutdown to wait for


def busy(client, udid: str, run_id, *, worker: int, attempt: int = 1) -> None:
    livestate.set_busy(client, udid, run_id=str(run_id), pid=worker + 1, ttl_s=600,
                       attempt=attempt, worker_pid=worker)  # fmt: skip


def test_a_batch_whose_worker_died_mid_run_is_retried_at_once(ingestor):
    client = ingestor.redis
    live(client, LIVE_UDID)
    run_id = stuck_run(ingestor.sessions)
    with session_scope(ingestor.sessions) as session:
        session.get(db.Run, run_id).pinned_udid = None  # it was running, from the class queue
    # The supervisor restarted the dead worker: the heartbeat now comes from another pid.
    live(client, GONE_UDID, pid=222)
    busy(client, GONE_UDID, run_id, worker=111)
    assert reap(ingestor) == [str(run_id)]
    with ingestor.sessions() as session:
        [lost] = session.scalars(select(db.RunAttempt).where(db.RunAttempt.run_id == run_id)).all()
        assert (lost.attempt, lost.failure_kind, lost.udid) == (1, GONE, GONE_UDID)
        assert "went away mid-run" in lost.failure_message
        assert session.get(db.Run, run_id).attempts == 2
    assert livestate.is_superseded(client, str(run_id), 1)  # the old delivery is skipped
    assert not livestate.is_superseded(client, str(run_id), 2)
    assert client.get(f"anefarm:busy:{GONE_UDID}") is None
    assert reap(ingestor) == []


def test_a_busy_mark_of_a_live_worker_or_a_finished_run_is_not_a_loss(ingestor):
    client = ingestor.redis
    run_id = stuck_run(ingestor.sessions)
    with session_scope(ingestor.sessions) as session:
        session.get(db.Run, run_id).pinned_udid = None
    live(client, GONE_UDID, pid=111)
    busy(client, GONE_UDID, run_id, worker=111)
    assert reap(ingestor) == []  # its worker is alive and running it
    client.delete(f"anefarm:device:{GONE_UDID}")  # the device is gone, but the result is in
    with session_scope(ingestor.sessions) as session:
        session.add(db.RunAttempt(run_id=run_id, attempt=1, udid=GONE_UDID, agent="a",
                                  outcome="ok", started_at=NOW, finished_at=NOW))  # fmt: skip
    assert reap(ingestor) == []
    assert client.get(f"anefarm:busy:{GONE_UDID}") is None  # the stale mark is cleared


# Farm.at starts the agent's Celery workers in the test body
@pytest.mark.celery
def test_sigkill_of_a_whole_worker_mid_run_is_retried_long_before_the_visibility_timeout(
    tmp_path, redis_url, samples
):
    import json
    import os
    import signal

    model = samples["conv10x10.mlpackage"]
    farm = Farm.at(tmp_path, redis_url)
    try:
        farm.start_coordinator()
        farm.start_agent(f"{XR}=2", time_mode="realtime", speed=1.0, wait_for=2)
        out = farm.cli(
            "submit", str(model), "--devices", XR, "--iterations", "20", "--no-bisect", "--json"
        )
        job = json.loads(out.stdout)["job"]
        client, deadline, mark = farm.redis(), time.monotonic() + 60, None
        while time.monotonic() < deadline and mark is None:
            keys = client.keys("anefarm:busy:*")
            mark = (keys[0], json.loads(client.get(keys[0]))) if keys else None
            time.sleep(0.05)
        assert mark is not None, farm.logs()
        udid = mark[0].removeprefix("anefarm:busy:")
        # The whole worker: its parent (heartbeat, consumer) and the child running the batch.
        for pid in (mark[1]["worker"], mark[1]["pid"]):
            os.kill(pid, signal.SIGKILL)
        started = time.monotonic()
        report = farm.wait_job(job, timeout=90)
        took = time.monotonic() - started
        [row] = report["rows"]
        assert row["status"] == "succeeded", report
        tries = [(a.attempt, a.outcome, a.udid) for a in _attempts(farm, row["run"])]
        assert tries[0] == (1, "infra_error", udid) and tries[-1][1] == "ok" and len(tries) == 2
        assert count(farm, db.Verdict, run_id=uuid.UUID(row["run"])) == 1
        assert took < 60  # the visibility timeout here is 1860 s
    finally:
        farm.kill()  # nothing is asserted after: no warm shutdown to wait for


def _attempts(farm: Farm, run_id: str) -> list[db.RunAttempt]:
    with farm.sessions()() as session:
        query = select(db.RunAttempt).where(db.RunAttempt.run_id == uuid.UUID(run_id))
        return list(session.scalars(query.order_by(db.RunAttempt.attempt)))
