"""The whole coordinator SIGKILLed while it holds an ingest message: a restarted
coordinator hands the message back at start-up (orchestrator/delivery/recovery.py) and
ingests it within seconds, instead of after the broker's visibility timeout (~31 min)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from orchestrator.delivery.recovery import restore_unacked
from orchestrator.protocol import livestate
from orchestrator.protocol.transport import (
    INGEST_RESULT_TASK,
    RESULTS_QUEUE,
    RUN_BATCH_TASK,
    create_app,
    device_class_queue,
    publish,
)
from orchestrator.settings import load_settings
from tests.faults.invariants import (
    BUSY_MODELS,
    XR,
    assert_exactly_once,
    start_busy_job,
    unacked,
    wait_for,
    waiting,
)
from tests.pipeline.farm import Farm

# Takes one message from each queue named on the command line, never acks, and dies the
# way a SIGKILLed worker does: without handing anything back.
TAKE_AND_DIE = """
import os, sys
from orchestrator.protocol.transport import create_app
from orchestrator.ingest import FINAL
from orchestrator.settings import load_settings
from orchestrator.store import models as db
channel = create_app(load_settings(broker_url=sys.argv[1])).connection_for_write().default_channel
for queue in sys.argv[2:]:
    assert channel.basic_get(queue, no_ack=False) is not None, queue
os._exit(0)
"""


def test_only_results_messages_are_handed_back(tmp_path, redis_url):
    app = create_app(load_settings(broker_url=redis_url, home=tmp_path))
    publish(app, INGEST_RESULT_TASK, {"run_id": "r1"}, RESULTS_QUEUE, task_id="result-1")
    publish(app, RUN_BATCH_TASK, {"run_id": "b1"}, device_class_queue(XR), task_id="batch-1")
    queues = [RESULTS_QUEUE, device_class_queue(XR)]
    subprocess.run([sys.executable, "-c", TAKE_AND_DIE, redis_url, *queues], check=True)
    client = livestate.connect(redis_url)
    assert client.hlen("unacked") == 2 and waiting(client, RESULTS_QUEUE) == 0

    assert restore_unacked(app) == 1
    assert waiting(client, RESULTS_QUEUE) == 1
    [left] = unacked(client)
    assert left["queue"] == device_class_queue(XR)  # a device batch stays where it was
    assert waiting(client, device_class_queue(XR)) == 0
    assert restore_unacked(app) == 0  # handed back once only
    # The message itself, unchanged: a worker gets the same task and payload.
    with app.connection_for_write() as connection:
        message = connection.default_channel.basic_get(RESULTS_QUEUE, no_ack=True)
        assert message.headers["id"] == "result-1"
        assert message.decode()[0] == [{"run_id": "r1"}]
    app.close()


# Farm.at starts the agent's Celery workers in the test body
@pytest.mark.celery
@pytest.mark.slow
def test_sigkill_of_the_coordinator_mid_ingest(tmp_path, redis_url, samples):
    farm = Farm.at(tmp_path, redis_url)
    database = farm.home / "anefarm.db"
    lock = None
    try:
        job = start_busy_job(farm, samples)
        client = farm.redis()
        # Hold SQLite's write lock: the coordinator's next ingest blocks inside the task,
        # its message delivered and not acknowledged; that is when the coordinator dies.
        lock = sqlite3.connect(database, timeout=30, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")
        held = wait_for("an ingest message in the coordinator's hands",
                        lambda: _ingest_unacked(client), timeout=60, farm=farm)  # fmt: skip
        os.killpg(farm.procs["coordinator"].pid, signal.SIGKILL)
        farm.procs.pop("coordinator").wait()
        lock.execute("ROLLBACK")
        lock.close()
        lock = None
        run_ids = {entry["payload"]["run_id"] for entry in held}
        assert _ingest_unacked(client), "the killed coordinator's message must still be unacked"
        time.sleep(2)  # results keep coming while no coordinator runs
        restarted = time.monotonic()
        farm.start_coordinator()
        farm.wait_job(job, timeout=120)
        took = time.monotonic() - restarted
        summary = assert_exactly_once(farm, job)
        assert len(summary) == len(BUSY_MODELS)
        assert all(row["status"] == "succeeded" for row in summary), summary
        assert run_ids <= {row["run"] for row in summary}
        assert not _ingest_unacked(client)
        assert took < 60, took  # the visibility timeout here is 1860 s
        print(f"FIGURE coordinator SIGKILL mid-ingest: recovered in {took:.1f} s"
              f" (restart → job done; {len(held)} held message(s) handed back)")  # fmt: skip
    finally:
        if lock is not None:
            lock.close()
        farm.kill()  # nothing is asserted after: no warm shutdown to wait for


def _ingest_unacked(client) -> list[dict]:
    return [e for e in unacked(client) if e["task"] == INGEST_RESULT_TASK]
