"""An agent frozen (SIGSTOP: a hung host, a laptop lid, a debugger) past the heartbeat TTL
while it runs a batch: the coordinator's sweep records the attempt as lost and re-routes
the run to the other device of the class; when the agent is resumed (SIGCONT) and sends
its late result for the old attempt, ingest drops it as a duplicate."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from agents.devices.simulation.farm import agent_udid
from orchestrator.protocol import livestate
from orchestrator.protocol.transport import (
    DEVICE_QUEUE_PREFIX,
    INGEST_RESULT_TASK,
    RESULTS_QUEUE,
    RUN_BATCH_TASK,
    create_app,
)
from orchestrator.reaper import GONE
from orchestrator.store import models as db
from tests.faults.invariants import assert_exactly_once, queued, unacked, wait_for
from tests.pipeline.farm import Farm

pytestmark = [pytest.mark.slow]
XR = "iPhone11,8"
UDID_A = agent_udid("SIM-iPhone11-8-0", "agent-a", 0)
UDID_B = agent_udid("SIM-iPhone11-8-1", "agent-b", 0)
TTL_S = 6  # ANEFARM_HEARTBEAT_TTL_S of the Farm helper
SPEED = "4"
MODELS = ["conv10x10.mlpackage", "conv10x10_dilated4.mlpackage", "mobilenetv2_block.mlpackage",
          "maxpool15.mlpackage"]  # fmt: skip


def start_second_device(farm: Farm) -> None:
    """Device B as its own process group. A simulated farm numbers its devices per class
    from 0, so two agents with one XR each would both be SIM-iPhone11-8-0: B is the second
    device of the farm ``XR=2``, run by the device worker alone (what the supervisor runs)."""
    with (farm.home / "agent-b.log").open("ab") as log:
        farm.procs["agent-b"] = subprocess.Popen(
            [sys.executable, "-m", "agents.worker", "--udid", UDID_B, "--agent", "agent-b",
             "--farm", f"{XR}=2", "--time-mode", "realtime", "--speed", SPEED,
             "--broker-url", farm.broker_url],
            env=farm.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip


# Farm.at starts the agent's Celery workers in the test body
@pytest.mark.celery
def test_agent_stopped_past_the_heartbeat_ttl_then_resumed(tmp_path, redis_url, samples):
    farm = Farm.at(tmp_path, redis_url)
    group = None
    try:
        farm.start_coordinator()
        farm.start_agent(f"{XR}=1", name="agent-a", time_mode="realtime", speed=float(SPEED))
        start_second_device(farm)
        farm.wait_devices(2)
        out = farm.cli("submit", *(str(samples[m]) for m in MODELS), "--devices", XR,
                       "--iterations", "20", "--no-bisect", "--json")  # fmt: skip
        job = json.loads(out.stdout)["job"]
        client = farm.redis()
        mark = wait_for(f"{UDID_A} running a batch", lambda: _busy(client, UDID_A),
                        timeout=60, farm=farm, every=0.05)  # fmt: skip
        run_id = uuid.UUID(mark["run"])
        assert mark["attempt"] == 1
        # The whole agent: supervisor, device worker and the pool child running the batch.
        group = farm.procs["agent-a"].pid
        assert os.getpgid(mark["pid"]) == os.getpgid(mark["worker"]) == group
        os.killpg(group, signal.SIGSTOP)
        stopped = time.monotonic()
        wait_for("the sweep to re-route the frozen batch", lambda: _attempts(farm, run_id),
                 timeout=60, farm=farm, every=0.2)  # fmt: skip
        rerouted = time.monotonic() - stopped
        time.sleep(max(0.0, stopped + 2 * TTL_S - time.monotonic()))  # well past the TTL
        assert _batch_held(client, run_id), "the frozen agent still holds attempt 1's batch"
        os.killpg(group, signal.SIGCONT)
        group = None
        resumed = time.monotonic()

        farm.wait_job(job, timeout=120)
        # The late result: the resumed agent finishes attempt 1, publishes its result and
        # acks the batch; ingest then consumes that result. Wait for both.
        wait_for("the resumed agent's late result to be consumed",
                 lambda: _late_result_consumed(client, run_id), timeout=90, farm=farm)  # fmt: skip
        before = _state(farm, run_id)
        # Anything else the resumed agent might still send for attempt 1 is sent before it
        # clears its busy mark; then a sentinel result sent now is ingested after all of it
        # (the coordinator ingests one result at a time, in queue order).
        wait_for(f"{UDID_A} done with attempt 1", lambda: not _busy_with(client, run_id),
                 timeout=60, farm=farm)  # fmt: skip
        create_app(farm.settings()).send_task(
            INGEST_RESULT_TASK, args=[{"run_id": "sentinel"}], queue=RESULTS_QUEUE
        )
        wait_for("the sentinel result", lambda: _state(farm, run_id)["raw_results"] == 1,
                 timeout=60, farm=farm)  # fmt: skip
        assert _state(farm, run_id) == {**before, "raw_results": 1}
        tries = [(a.attempt, a.outcome, a.failure_kind, a.udid) for a in _attempts(farm, run_id)]
        assert tries == [(1, "infra_error", GONE, UDID_A), (2, "ok", None, UDID_B)], tries
        assert before["raw_results"] == 0  # the duplicate is dropped, not kept as unknown
        summary = assert_exactly_once(farm, job)
        assert all(row["status"] == "succeeded" for row in summary), summary
        assert next(r for r in summary if r["run"] == str(run_id))["measurements"] == 4
        settled = time.monotonic() - resumed
        print(f"FIGURE agent SIGSTOP past the heartbeat TTL ({TTL_S} s): recovered in"
              f" {rerouted:.1f} s (stop → batch re-routed to {UDID_B});"
              f" late result dropped, job settled {settled:.1f} s after SIGCONT")  # fmt: skip
    finally:
        if group is not None:
            os.killpg(group, signal.SIGCONT)
        farm.kill()  # a teardown: no warm shutdown to wait for


def _busy(client: Any, udid: str) -> dict[str, Any] | None:
    raw = client.get(livestate.BUSY_KEY.format(udid=udid))
    mark = json.loads(raw) if raw else None
    return mark if mark and mark.get("attempt") is not None else None  # not a reboot mark


def _busy_with(client: Any, run_id: uuid.UUID) -> bool:
    mark = _busy(client, UDID_A)
    return mark is not None and mark["run"] == str(run_id) and mark["attempt"] == 1


def _attempts(farm: Farm, run_id: uuid.UUID) -> list[db.RunAttempt]:
    with farm.sessions()() as session:
        query = select(db.RunAttempt).where(db.RunAttempt.run_id == run_id)
        return list(session.scalars(query.order_by(db.RunAttempt.attempt)))


def _first_attempt(entry: dict[str, Any], run_id: uuid.UUID) -> bool:
    payload = entry["payload"] or {}
    return payload.get("run_id") == str(run_id) and payload.get("attempt") == 1


def _batch_held(client: Any, run_id: uuid.UUID) -> bool:
    """Attempt 1's batch is delivered and not acknowledged: its agent is still on it."""
    return any(_first_attempt(e, run_id) for e in unacked(client) if e["task"] == RUN_BATCH_TASK)


def _late_result_consumed(client: Any, run_id: uuid.UUID) -> bool:
    """The agent acked attempt 1's batch (after publishing its result: acks late), that
    batch was not handed back to a queue, and ingest has consumed the result."""
    requeued = any(
        _first_attempt(e, run_id)
        for key in client.keys(f"{DEVICE_QUEUE_PREFIX}*")
        for e in queued(client, key)
    )
    assert not requeued, "attempt 1's batch went back to a queue instead of finishing"
    result_pending = any(
        _first_attempt(e, run_id)
        for e in unacked(client) + queued(client, RESULTS_QUEUE)
        if e["task"] == INGEST_RESULT_TASK
    )
    return not _batch_held(client, run_id) and not result_pending


def _state(farm: Farm, run_id: uuid.UUID) -> dict[str, Any]:
    with farm.sessions()() as session:
        run = session.get(db.Run, run_id)
        assert run is not None
        return {
            "run": (run.status, run.attempts, run.udid, run.error_kind),
            "attempts": [(a.attempt, a.outcome, a.udid, a.finished_at)
                         for a in session.scalars(select(db.RunAttempt)
                                                  .where(db.RunAttempt.run_id == run_id))],
            "measurements": sorted(session.scalars(select(db.Measurement.id)
                                                   .where(db.Measurement.run_id == run_id))),
            "verdicts": list(session.scalars(select(db.Verdict.id)
                                             .where(db.Verdict.run_id == run_id))),
            "raw_results": session.scalar(select(func.count()).select_from(db.RawResult)),
        }  # fmt: skip
