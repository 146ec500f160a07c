"""Failure policy end to end: infra failures retry on another device of the class, then
give up and quarantine; model failures are final after one attempt."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import select

from agents.devices.simulation.farm import agent_udid
from orchestrator.protocol import livestate
from orchestrator.protocol.transport import device_class_queue
from orchestrator.store import models as db
from tests.faults.invariants import waiting
from tests.pipeline.farm import farm
from tests.pipeline.test_pipeline import A12, count, submit

__all__ = ["farm"]  # the fixture: a farm with its coordinator running

pytestmark = [pytest.mark.slow]
# The UDIDs of the XRs of Farm.start_agent's agent (agent-1, seed 0).
XR_0, XR_1 = (agent_udid(f"SIM-iPhone11-8-{n}", "agent-1", 0) for n in (0, 1))


@pytest.mark.parametrize("fault", ["crash", "hang", "disconnect", "malformed", "background"])
def test_infra_failure_is_retried_on_another_device_of_the_class(farm, samples, fault):
    # Device 0 always fails this way; device 1 of the same class is healthy.
    farm.start_agent(f"{A12}=1!{fault},{A12}=1", wait_for=2)
    job = submit(farm, samples["conv10x10.mlpackage"], samples["mobilenetv2_block.mlpackage"])
    report = farm.wait_job(job, timeout=120)
    assert [row["status"] for row in report["rows"]] == ["succeeded", "succeeded"]
    for row in report["rows"]:
        tries = farm.attempts(row["run"])
        assert tries[-1].outcome == "ok" and tries[-1].udid == XR_1
        assert all(t.outcome == "infra_error" and t.udid == XR_0 for t in tries[:-1])
        assert count(farm, db.Measurement, run_id=uuid.UUID(row["run"])) == 4  # one result per run


def test_only_device_failing_gives_up_as_infra_and_is_quarantined(farm, samples):
    farm.start_agent(f"{A12}=1!crash", wait_for=1)
    job = submit(farm, samples["conv10x10.mlpackage"])
    report = farm.wait_job(job, timeout=120)
    row = report["rows"][0]
    assert row["status"] == "failed" and row["error"].startswith("runner_crash")
    assert len(farm.attempts(row["run"])) == 3  # the retry budget (ANEFARM_MAX_ATTEMPTS)
    # Two crashes in a row: the agent restarts the device once before it is quarantined.
    assert farm.logs().count("restarting after repeated infra failures") == 1
    assert livestate.is_quarantined(farm.redis(), XR_0)
    with farm.sessions()() as session:
        assert session.get(db.Device, XR_0).state == "quarantined"
        run = session.get(db.Run, uuid.UUID(row["run"]))
        assert run.infra_failure
    listing = json.loads(farm.cli("devices", "list", "--json").stdout)
    assert [d["state"] for d in listing if d["udid"] == XR_0] in (["quarantined"], [])


def test_model_failure_is_final_after_one_attempt(farm, samples):
    farm.start_agent(f"{A12}=1!compilefail", wait_for=1)
    job = submit(farm, samples["conv10x10.mlpackage"], samples["lstm.mlpackage"])
    report = farm.wait_job(job, timeout=120)
    assert [row["status"] for row in report["rows"]] == ["failed", "failed"]
    for row in report["rows"]:
        assert row["error"].startswith("compile")
        tries = farm.attempts(row["run"])
        assert [t.outcome for t in tries] == ["model_error"]  # never retried
    with farm.sessions()() as session:
        assert not session.get(db.Run, uuid.UUID(report["rows"][0]["run"])).infra_failure
    assert not livestate.is_quarantined(farm.redis(), XR_0)


def test_cancel_stops_queued_work(farm, samples):
    # No agent: the work waits in its queue, then is cancelled.
    job = submit(farm, samples["conv10x10.mlpackage"])
    out = farm.cli("cancel", job)
    assert "1 unfinished run(s) cancelled" in out.stdout
    status = json.loads(farm.cli("status", job, "--json").stdout)
    assert status["status"] == "cancelled" and status["by_status"] == {"cancelled": 1}
    # A later job queued behind it, in the same class queue (first in, first out, one
    # device): once the later job is done, the agent has taken the cancelled batch first.
    later = submit(farm, samples["maxpool15.mlpackage"], extra=("--no-bisect",))
    farm.start_agent(f"{A12}=1", wait_for=1)
    report = farm.wait_job(later)
    assert [row["status"] for row in report["rows"]] == ["succeeded"]
    assert waiting(farm.redis(), device_class_queue(A12)) == 0
    with farm.sessions()() as session:
        attempted = set(session.execute(select(db.RunAttempt.run_id)).scalars())
        cancelled = set(
            session.execute(select(db.Run.id).where(db.Run.job_id == uuid.UUID(job))).scalars()
        )
    assert attempted == {uuid.UUID(row["run"]) for row in report["rows"]}
    assert cancelled and not cancelled & attempted  # the agent skipped the cancelled run
    status = json.loads(farm.cli("status", job, "--json").stdout)
    assert status["status"] == "cancelled" and status["by_status"] == {"cancelled": 1}
