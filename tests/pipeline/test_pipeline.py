"""The main job end to end, with real Redis, a real coordinator process and real agent
worker processes on a simulated farm: submit → queue per device class → worker →
runner → results queue → idempotent ingest → verdict → report."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from orchestrator.store import models as db
from tests.faults.invariants import wait_for
from tests.pipeline.farm import Farm
from tests.services.common import provides

pytestmark = [pytest.mark.slow]

A12 = "iPhone11,8"


@pytest.fixture
@provides("celery")  # Farm.at starts the agent's Celery workers
def farm(tmp_path, redis_url) -> Iterator[Farm]:
    farm = Farm.at(tmp_path, redis_url)
    farm.start_coordinator()
    yield farm
    farm.kill()  # a teardown: nothing is asserted about the shutdown


def submit(farm: Farm, *models: Path, devices: str = A12, extra: tuple[str, ...] = ()) -> str:
    out = farm.cli(
        "submit",
        *map(str, models),
        "--devices",
        devices,
        "--iterations",
        "20",
        "--warmup",
        "2",
        "--json",
        *extra,
    )
    return json.loads(out.stdout)["job"]


def count(farm: Farm, table, **where) -> int:
    with farm.sessions()() as session:
        query = select(func.count()).select_from(table)
        for key, value in where.items():
            query = query.where(getattr(table, key) == value)
        return int(session.execute(query).scalar_one())


def test_original_writeup_pair_on_a12(farm, samples):
    farm.start_agent(f"{A12}=1", wait_for=1)
    job = submit(farm, samples["conv10x10.mlpackage"], samples["conv10x10_dilated4.mlpackage"])
    report = farm.wait_job(job)
    verdicts = {row["model"]: row for row in report["rows"]}
    assert verdicts["conv10x10.mlpackage"]["verdict"] == "FULL"
    dilated = verdicts["conv10x10_dilated4.mlpackage"]
    assert dilated["verdict"] in {"PARTIAL", "NONE"}
    assert any(op["type"] == "conv" for op in dilated["ops_off_ane"])
    assert all(row["simulated"] is True for row in report["rows"])
    # The CLI gives the same data as the report function.
    out = json.loads(farm.cli("report", job, "--json").stdout)
    assert out == report
    csv_text = farm.cli("report", job, "--csv").stdout
    assert "SIMULATED" in csv_text


def test_bad_input_is_refused_before_anything_is_stored(farm, samples, tmp_path):
    corrupt = tmp_path / "corrupt.mlmodel"
    corrupt.write_bytes(b"\x08\x07garbage")
    before = (
        list((farm.home / "artifacts").rglob("*")) if (farm.home / "artifacts").exists() else []
    )
    out = farm.cli(
        "submit", str(samples["conv10x10.mlpackage"]), str(corrupt), "--devices", A12, check=False
    )
    assert out.returncode == 1 and "Traceback" not in out.stderr
    out = farm.cli(
        "submit", str(samples["conv10x10.mlpackage"]), "--devices", "iPhone99,1", check=False
    )
    assert out.returncode == 2 and "iPhone" in out.stderr
    out = farm.cli(
        "submit",
        str(samples["conv10x10.mlpackage"]),
        "--devices",
        A12,
        "--iterations",
        "0",
        check=False,
    )
    assert out.returncode == 2
    after = list((farm.home / "artifacts").rglob("*")) if (farm.home / "artifacts").exists() else []
    assert after == before
    assert count(farm, db.Job) == 0
    assert farm.redis().llen(f"device.{A12}") == 0


# Farm.at starts the agent's Celery workers in the test body
@pytest.mark.celery
def test_the_same_result_delivered_twice_makes_one_row(tmp_path, redis_url, samples):
    """No coordinator: take the agent's real result message off the results queue and
    deliver it twice (and a third time through the queue)."""
    farm = Farm.at(tmp_path, redis_url)
    try:
        farm.start_agent(f"{A12}=1", wait_for=1)
        job = submit(farm, samples["conv10x10.mlpackage"])
        from orchestrator.ingest import Ingestor, IngestOutcome
        from orchestrator.protocol.transport import RESULTS_QUEUE, create_app

        settings = farm.settings()
        app = create_app(settings)
        payload = None
        with app.connection_for_read() as conn:
            queue = conn.SimpleQueue(RESULTS_QUEUE)
            message = queue.get(timeout=60)
            args = (
                message.payload[0] if isinstance(message.payload, list) else message.payload["args"]
            )
            payload = args[0]
            message.ack()
            queue.close()
        ingestor = Ingestor(settings, sessions=farm.sessions(), app=app, client=farm.redis())
        assert ingestor.ingest(payload) == IngestOutcome.STORED
        assert ingestor.ingest(payload) == IngestOutcome.DUPLICATE
        import uuid

        run_id = uuid.UUID(payload["run_id"])
        assert count(farm, db.RunAttempt, run_id=run_id) == 1
        settings_measured = count(farm, db.Measurement, run_id=run_id)
        assert settings_measured == 4
        farm.start_coordinator()
        from orchestrator.protocol.transport import INGEST_RESULT_TASK

        app.send_task(INGEST_RESULT_TASK, args=[payload], queue=RESULTS_QUEUE)
        # A sentinel behind it: the coordinator ingests results one at a time in queue
        # order (concurrency 1, prefetch 1, acks late), so once the sentinel is kept as
        # an invalid result, the third delivery has had its turn to be (not) written.
        sentinel = {"run_id": "sentinel-after-the-third-delivery"}
        app.send_task(INGEST_RESULT_TASK, args=[sentinel], queue=RESULTS_QUEUE)
        report = farm.wait_job(job)
        wait_for("the sentinel result", lambda: count(farm, db.RawResult) == 1, timeout=60,
                 farm=farm)  # fmt: skip
        assert report["rows"][0]["status"] == "succeeded"
        # The cold load reaches the report with what it followed (stored by ingest).
        row = report["rows"][0]
        assert row["cold_load_ms"] is not None and row["simulated"]
        assert row["cold_load_provenance"] in {"fresh_compile", "fresh_process", "warm_cache"}
        assert count(farm, db.Measurement, run_id=run_id) == settings_measured
        assert count(farm, db.Verdict, run_id=run_id) == 1
    finally:
        farm.kill()  # nothing is asserted after: no warm shutdown to wait for


def test_invalid_result_is_kept_raw_and_fails_its_run(farm, samples):
    from orchestrator.protocol.transport import INGEST_RESULT_TASK, RESULTS_QUEUE, create_app

    app = create_app(farm.settings())
    app.send_task(
        INGEST_RESULT_TASK,
        args=[{"run_id": "not-a-uuid", "latency": float("nan")}],
        queue=RESULTS_QUEUE,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and count(farm, db.RawResult) == 0:
        time.sleep(0.2)
    with farm.sessions()() as session:
        raw = session.execute(select(db.RawResult)).scalar_one()
    assert "invalid result" in raw.error


def test_sigkill_of_a_worker_mid_run_is_redelivered_and_stored_once(farm, samples):
    # Realtime simulation so the batch is still running when the worker dies.
    farm.start_agent(f"{A12}=1", time_mode="realtime", speed=1.0, wait_for=1)
    job = submit(farm, samples["conv10x10.mlpackage"])
    deadline = time.monotonic() + 60
    victim = None
    while time.monotonic() < deadline and victim is None:
        busy = [d for d in _live(farm) if d.current_run]
        victim = busy[0] if busy else None
        time.sleep(0.05)
    assert victim is not None, farm.logs()
    os.kill(victim.pid, signal.SIGKILL)
    report = farm.wait_job(job, timeout=180)
    assert [row["status"] for row in report["rows"]] == ["succeeded"]
    run_id = report["rows"][0]["run"]
    import uuid

    assert count(farm, db.RunAttempt, run_id=uuid.UUID(run_id)) == 1
    assert count(farm, db.Verdict, run_id=uuid.UUID(run_id)) == 1


def _live(farm: Farm):
    from orchestrator.protocol import livestate

    return livestate.live_devices(farm.redis())
