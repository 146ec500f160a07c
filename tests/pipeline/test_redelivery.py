"""The reaper's second half (orchestrator/redelivery.py), on real Redis and a real database:
a queued run whose batch Redis holds nowhere is published again — and only then; waiting
runs are published when a device comes, and fail when none comes in time."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

from orchestrator.delivery import inflight
from orchestrator.ingest import Ingestor
from orchestrator.protocol.transport import (
    INGEST_RESULT_TASK,
    RESULTS_QUEUE,
    device_class_queue,
    publish,
    publish_batch,
)
from orchestrator.reaper import reap
from orchestrator.redelivery import NO_DEVICE
from orchestrator.store import models as db
from orchestrator.store.engine import session_scope
from tests.pipeline.test_reaper import LIVE_UDID, XR, busy, ingestor, live, stuck_run, waiting

__all__ = ["ingestor"]  # the fixture, shared with test_reaper

LONG_AGO = datetime.now(UTC) - timedelta(minutes=10)


def unpinned(ingestor: Ingestor, *, queued_at: datetime = LONG_AGO) -> uuid.UUID:
    run_id = stuck_run(ingestor.sessions, queued_at=queued_at)
    with session_scope(ingestor.sessions) as session:
        run = session.get(db.Run, run_id)
        assert run is not None
        run.pinned_udid = None
    return run_id


def run_of(ingestor: Ingestor, run_id: uuid.UUID) -> db.Run:
    with ingestor.sessions() as session:
        run = session.get(db.Run, run_id)
        assert run is not None
        session.expunge(run)
        return run


def test_a_queued_run_whose_batch_is_gone_is_published_again_once(ingestor):
    live(ingestor.redis, LIVE_UDID)
    run_id = unpinned(ingestor)
    assert reap(ingestor) == [str(run_id)]
    assert waiting(ingestor.redis, device_class_queue(XR)) == 1
    run = run_of(ingestor, run_id)
    assert (run.status, run.attempts) == ("queued", 1)  # the same attempt: never delivered
    assert run.queued_at is not None
    assert reap(ingestor) == []  # now Redis holds it
    assert waiting(ingestor.redis, device_class_queue(XR)) == 1


def test_a_batch_in_a_queue_running_or_with_its_result_waiting_is_not_lost(ingestor):
    client = ingestor.redis
    live(client, LIVE_UDID, pid=7)
    in_queue, running, reported = (unpinned(ingestor) for _ in range(3))
    with ingestor.sessions() as session:
        run = session.get(db.Run, in_queue)
        batch = ingestor.lifecycle.batch_for(session, run, pinned_udid=None)
    publish_batch(ingestor.app, batch)
    busy(client, LIVE_UDID, running, worker=7)
    publish(ingestor.app, INGEST_RESULT_TASK, {"run_id": str(reported), "attempt": 1},
            RESULTS_QUEUE)  # fmt: skip
    assert inflight.result_ids(client) == {f"{reported}-a1"}
    assert reap(ingestor) == []


def test_a_run_queued_moments_ago_is_not_lost_yet(ingestor):
    live(ingestor.redis, LIVE_UDID)
    unpinned(ingestor, queued_at=datetime.now(UTC))  # its publish may be under way
    assert reap(ingestor) == []


def test_a_waiting_run_is_published_when_a_device_of_its_class_is_live(ingestor):
    run_id = unpinned(ingestor)
    with session_scope(ingestor.sessions) as session:
        run = session.get(db.Run, run_id)
        run.status, run.waiting_since, run.queued_at = "waiting", datetime.now(UTC), None
    assert reap(ingestor) == []  # no device yet: it waits
    live(ingestor.redis, LIVE_UDID)
    assert reap(ingestor) == [str(run_id)]
    assert run_of(ingestor, run_id).status == "queued"
    assert waiting(ingestor.redis, device_class_queue(XR)) == 1


def test_runs_that_wait_too_long_for_a_device_fail(ingestor):
    ingestor.settings = ingestor.settings.model_copy(update={"device_wait_s": 60.0})
    waited, queued = unpinned(ingestor), unpinned(ingestor)
    with session_scope(ingestor.sessions) as session:
        run = session.get(db.Run, waited)
        run.status, run.waiting_since = "waiting", LONG_AGO
    assert sorted(reap(ingestor)) == sorted([str(waited), str(queued)])
    for run_id in (waited, queued):
        run = run_of(ingestor, run_id)
        assert (run.status, run.error_kind) == ("failed", NO_DEVICE)
        assert f"no device of {XR} was live within" in run.error_message
    # A batch of theirs that a device takes later is skipped by its worker.
    from orchestrator.protocol import livestate

    assert livestate.is_superseded(ingestor.redis, str(queued), 1)


def test_a_redis_restart_is_noticed_once_and_its_orphans_go_back(ingestor, redis_url):
    client = ingestor.redis
    assert inflight.restarted_at(client) is not None  # first sight of this server
    assert inflight.restarted_at(client) is None
    # A delivery taken by a consumer that then vanished (as a restart leaves it).
    publish(ingestor.app, INGEST_RESULT_TASK, {"run_id": "r"}, device_class_queue(XR),
            task_id="orphan")  # fmt: skip
    take = (
        "import sys, os\n"
        "from orchestrator.protocol.transport import create_app\n"
        "from orchestrator.settings import load_settings\n"
        "ch = create_app(load_settings(broker_url=sys.argv[1])).connection_for_write()"
        ".default_channel\n"
        "assert ch.basic_get(sys.argv[2], no_ack=False) is not None\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", take, redis_url, device_class_queue(XR)], check=True)
    assert waiting(client, device_class_queue(XR)) == 0
    client.set(inflight.RUN_ID_KEY, "another server")
    restart = inflight.restarted_at(client)
    assert restart is not None and restart <= time.time()
    assert inflight.restore_orphans(ingestor.app, time.time()) == 1
    assert waiting(client, device_class_queue(XR)) == 1
