"""What every fault-injection test ends with (issue #12): every run terminal, exactly one
result per run, no measurement lost or duplicated; and a look into the broker's unacked
messages, to know a fault hit while a message was in flight."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections import Counter
from typing import Any

from orchestrator.ingest import FINAL
from orchestrator.store import models as db
from tests.pipeline.farm import Farm

TERMINAL_JOB = {db.JobStatus.DONE, db.JobStatus.FAILED, db.JobStatus.CANCELLED}


def assert_exactly_once(farm: Farm, job: str) -> list[dict[str, Any]]:
    """Every run of ``job`` is final with exactly one result; a summary per run."""
    summary = []
    with farm.sessions()() as session:
        job_row = session.get(db.Job, uuid.UUID(job))
        assert job_row is not None and job_row.status in TERMINAL_JOB, job_row
        units = sorted(job_row.spec["compute_units"])
        runs = session.query(db.Run).filter_by(job_id=job_row.id).all()
        assert runs, "the job has no runs"
        for run in runs:
            assert run.status in FINAL, (run.id, run.status)
            attempts = (
                session.query(db.RunAttempt)
                .filter_by(run_id=run.id)
                .order_by(db.RunAttempt.attempt)
                .all()
            )
            settings = [m.compute_units for m in session.query(db.Measurement).filter_by(
                run_id=run.id)]  # fmt: skip
            verdicts = session.query(db.Verdict).filter_by(run_id=run.id).count()
            numbers = [a.attempt for a in attempts]
            assert numbers == list(range(1, len(numbers) + 1)), (run.id, numbers)
            assert not [u for u, n in Counter(settings).items() if n > 1], (run.id, settings)
            if run.status == db.RunStatus.SUCCEEDED:
                assert [a.outcome for a in attempts].count("ok") == 1, (run.id, attempts)
                assert attempts[-1].outcome == "ok", (run.id, attempts)
                assert sorted(settings) == units, (run.id, settings)  # no setting lost
                assert verdicts == 1, (run.id, verdicts)
            else:
                assert verdicts == 0, (run.id, verdicts)
            summary.append(
                {
                    "run": str(run.id),
                    "status": str(run.status),
                    "attempts": [(a.attempt, a.outcome, a.failure_kind, a.udid) for a in attempts],
                    "measurements": len(settings),
                }
            )
    return summary


def unacked(client: Any) -> list[dict[str, Any]]:
    """Messages Redis holds as delivered but not acknowledged (kombu's ``unacked`` hash):
    routing key (the queue), task name and its payload."""
    entries = []
    for tag, raw in client.hgetall("unacked").items():
        message, exchange, routing_key = json.loads(raw)
        entries.append({"tag": tag, "exchange": exchange, "queue": routing_key, **_task(message)})
    return entries


def queued(client: Any, queue: str) -> list[dict[str, Any]]:
    """Messages waiting in ``queue`` (kombu keeps one list per priority step)."""
    keys = [k for k in client.keys(f"{queue}*") if client.type(k) == "list"]
    return [_task(json.loads(raw)) for key in keys for raw in client.lrange(key, 0, -1)]


def waiting(client: Any, queue: str) -> int:
    return len(queued(client, queue))


def _task(message: dict[str, Any]) -> dict[str, Any]:
    body = message["body"]
    if message.get("properties", {}).get("body_encoding") == "base64":
        body = base64.b64decode(body)
    args = json.loads(body)[0]
    return {"task": message.get("headers", {}).get("task"), "payload": args[0] if args else None}


def wait_for(what: str, check: Any, *, timeout: float, farm: Farm, every: float = 0.1) -> Any:
    """Poll ``check()`` until it returns something truthy (returned)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{farm.logs()}")


XR = "iPhone11,8"
BUSY_MODELS = ["conv10x10.mlpackage", "conv10x10_dilated4.mlpackage", "mobilenetv2_block.mlpackage",
               "maxpool15.mlpackage", "upsample4x.mlpackage", "attention_ane.mlpackage"]  # fmt: skip


def final_runs(farm: Farm, job: str) -> int:
    with farm.sessions()() as session:
        runs = session.query(db.Run).filter(db.Run.job_id == uuid.UUID(job)).all()
        return sum(run.status in FINAL for run in runs)


def start_busy_job(farm: Farm, samples: dict[str, Any]) -> str:
    """A coordinator, two XRs in realtime ×4 and six runs that take a few seconds in all:
    the job's id, once its first run is final (the job is mid-way)."""
    farm.start_coordinator()
    farm.start_agent(f"{XR}=2", time_mode="realtime", speed=4.0, wait_for=2)
    out = farm.cli("submit", *(str(samples[m]) for m in BUSY_MODELS), "--devices", XR,
                   "--iterations", "20", "--no-bisect", "--json")  # fmt: skip
    job = str(json.loads(out.stdout)["job"])
    wait_for("a first result", lambda: final_runs(farm, job) >= 1, timeout=90, farm=farm)
    return job
