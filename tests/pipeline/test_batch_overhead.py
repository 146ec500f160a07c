"""Overhead per batch (issue 21, docs/performance.md): what was cut keeps its guarantees.

- a model blob is hashed once per cache entry, across processes, and hashed again (and
  replaced) when the file is no longer the one that was verified;
- the next batches' models are read from the device's queues without taking the batches,
  and prefetched into the cache while a batch runs;
- one round trip tells a worker whether a batch's job is cancelled, its device quarantined,
  or which of its runs are superseded or final;
- ingest's multi-row writes keep one row per setting and op when a retried run replaces an
  earlier attempt's measurements.
"""

from __future__ import annotations

import copy
import hashlib
import multiprocessing
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from agents import fetch
from agents.device_worker import DeviceWorker, WorkerSpec, open_device
from agents.devices.simulation.farm import agent_udid
from agents.fetch import ArtifactFetcher, Prefetcher, blob_relpath
from orchestrator.artifacts.store import ArtifactStore
from orchestrator.ingest import Ingestor, IngestOutcome
from orchestrator.protocol import ModelFormat, ModelRef, RunBatch, RunPurpose, RunSpec, livestate
from orchestrator.protocol.transport import (
    INGEST_LAUNCH_TASK,
    INGEST_RESULT_TASK,
    RESULTS_QUEUE,
    create_app,
    device_class_queue,
    device_queue,
    next_batches,
    publish_batch,
)
from orchestrator.runs.lifecycle import model_ref
from orchestrator.settings import load_settings
from orchestrator.store import models as db
from orchestrator.store.engine import session_scope
from tests.pipeline.ingesting import run_awaiting_result

NOW = datetime(2026, 11, 27, tzinfo=UTC)


# -- the blob cache: one hash per entry ---------------------------------------------------


def _put(store: Path, data: bytes) -> ModelRef:
    sha = hashlib.sha256(data).hexdigest()
    path = store / blob_relpath(sha)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return ModelRef(sha256=sha, filename="m.mlmodel", format=ModelFormat.MLMODEL,
                    size_bytes=len(data), location=store.as_uri())  # fmt: skip


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every file the fetcher hashes (after a download's own streaming hash)."""
    seen: list[Path] = []
    real = fetch._sha256_of

    def counted(path: Path) -> str:
        seen.append(path)
        return real(path)

    monkeypatch.setattr(fetch, "_sha256_of", counted)
    return seen


def _fetch_in_child(cache: str, ref_json: str, out: Any) -> None:
    hashed: list[str] = []
    real = fetch._sha256_of
    fetch._sha256_of = lambda p: hashed.append(str(p)) or real(p)  # type: ignore[assignment,func-returns-value]
    path = ArtifactFetcher(Path(cache)).fetch(ModelRef.model_validate_json(ref_json))
    out.put((str(path), len(hashed)))


def test_a_blob_is_hashed_once_per_cache_entry_even_in_another_process(tmp_path, hashes):
    ref = _put(tmp_path / "store", b"model bytes" * 5000)
    cache = tmp_path / "cache"
    first = ArtifactFetcher(cache).fetch(ref)  # downloaded: hashed while streaming
    assert hashes == []
    # A new fetcher, as a new pool child would have: the stamp says the file is verified.
    assert ArtifactFetcher(cache).fetch(ref) == first
    assert hashes == []
    # And a process of its own (spawned: it shares nothing with this one).
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    child = ctx.Process(target=_fetch_in_child, args=(str(cache), ref.model_dump_json(), out))
    child.start()
    child.join(60)
    assert out.get(timeout=5) == (str(first), 0)
    assert not [p for p in cache.rglob("*") if p.is_file() and p != first]  # stamps beside it


def test_a_blob_rewritten_in_place_is_hashed_again_and_replaced(tmp_path, hashes):
    data = b"A" * 4096
    ref = _put(tmp_path / "store", data)
    cache = tmp_path / "cache"
    blob = ArtifactFetcher(cache).fetch(ref)
    # Same size, other bytes, a later modification time: the stamp no longer names it.
    blob.write_bytes(b"B" * 4096)
    os.utime(blob, ns=(blob.stat().st_atime_ns, blob.stat().st_mtime_ns + 10**9))
    again = ArtifactFetcher(cache).fetch(ref)
    assert hashes == [blob]  # verified again, found corrupt, downloaded anew
    assert again.read_bytes() == data
    assert ArtifactFetcher(cache).fetch(ref) == again and hashes == [blob]


def test_a_blob_without_a_stamp_is_verified_once_then_trusted(tmp_path, hashes):
    data = b"C" * 1000
    ref = _put(tmp_path / "store", data)
    cache = tmp_path / "cache"
    # A cache filled by an older agent: the blob is there, no stamp.
    target = cache / blob_relpath(ref.sha256)
    target.parent.mkdir(parents=True)
    target.write_bytes(data)
    assert ArtifactFetcher(cache).fetch(ref) == target
    assert ArtifactFetcher(cache).fetch(ref) == target
    assert hashes == [target]


# -- the next batches and their models -----------------------------------------------------


def _batch(ref: ModelRef, *, purpose: RunPurpose = RunPurpose.USER, pinned: str | None = None):
    return RunBatch(run_id=uuid.uuid4(), attempt=1, job_id=uuid.uuid4(), model=ref,
                    device_class="iPhone11,8", pinned_udid=pinned, purpose=purpose,
                    spec=RunSpec(compute_units=["all", "cpuOnly"], iterations=5, warmup=1),
                    created_at=NOW)  # fmt: skip


@pytest.fixture
def farm_settings(tmp_path: Path, redis_url: str) -> Any:
    return load_settings(home=tmp_path / "home", broker_url=redis_url,
                         database_url=f"sqlite:///{tmp_path / 'a.db'}")  # fmt: skip


def test_next_batches_are_read_without_taking_them_user_work_first(
    farm_settings, redis_client, samples
):
    app = create_app(farm_settings)
    store = ArtifactStore(farm_settings.resolved_artifact_dir, farm_settings.max_model_bytes)
    ref = model_ref(store.add(samples["conv10x10.mlpackage"]), farm_settings.resolved_artifact_url)
    probe, first_user, second_user = (
        _batch(ref, purpose=RunPurpose.PROBE), _batch(ref), _batch(ref)
    )  # fmt: skip
    for batch in (probe, first_user, second_user):
        publish_batch(app, batch)
    pinned = _batch(ref, pinned="SIM-iPhone11-8-0")
    publish_batch(app, pinned)
    redis_client.lpush(device_class_queue("iPhone13,2"), b"not a message")
    queues = [device_queue("SIM-iPhone11-8-0"), device_class_queue("iPhone11,8"),
              device_class_queue("iPhone13,2"), device_class_queue("iPhone12,1")]  # fmt: skip
    found = next_batches(redis_client, queues)
    # The pinned one; the class queue's next is the first user batch (FIFO, before probes);
    # the junk and the empty queue give nothing.
    assert [b.batch_id for b in found] == [pinned.batch_id, first_user.batch_id]
    assert redis_client.llen(device_class_queue("iPhone11,8")) == 2  # nothing taken
    app.close()


def test_a_worker_prefetches_the_next_batch_model_into_the_cache(farm_settings, samples):
    app = create_app(farm_settings)
    store = ArtifactStore(farm_settings.resolved_artifact_dir, farm_settings.max_model_bytes)
    ref = model_ref(store.add(samples["maxpool15.mlpackage"]), farm_settings.resolved_artifact_url)
    spec = WorkerSpec(udid=agent_udid("SIM-iPhone11-8-0", "a", 0), agent="a", farm="iPhone11,8=1")
    device = open_device(spec, farm_settings)
    worker = DeviceWorker(farm_settings, device, agent="a", broker_url=farm_settings.broker_url)
    target = worker.models_dir / ref.sha256 / ref.filename
    assert not target.exists()
    publish_batch(app, _batch(ref))
    assert worker.prefetcher.start(worker.prefetch_next)
    worker.prefetcher.wait(60)
    assert (target / "Manifest.json").is_file()  # complete: it appeared by one rename
    assert worker.fetcher.fetch(ref).is_file()
    device.close()
    app.close()


def test_the_prefetcher_runs_one_prefetch_at_a_time_and_survives_a_failure():
    import threading

    gate, ran = threading.Event(), []
    prefetcher = Prefetcher()
    assert prefetcher.start(lambda: (gate.wait(10), ran.append(1)))
    assert not prefetcher.start(lambda: ran.append(2))  # still busy: skipped
    gate.set()
    prefetcher.wait(10)
    assert prefetcher.start(lambda: 1 / 0)  # logged, not raised
    prefetcher.wait(10)
    assert prefetcher.start(lambda: ran.append(3))
    prefetcher.wait(10)
    assert ran == [1, 3]


# -- one round trip before a batch ---------------------------------------------------------


def test_batch_gate_reads_cancel_quarantine_superseded_and_final_at_once(redis_client):
    job, a, b, c = (str(uuid.uuid4()) for _ in range(4))
    runs = [(a, 1), (b, 2), (c, 1)]
    gate = livestate.batch_gate(redis_client, job_id=job, udid="SIM-1", runs=runs)
    assert (gate.cancelled, gate.quarantined, gate.superseded) == (False, False, frozenset())
    livestate.supersede(redis_client, b, 2, ttl_s=60)
    livestate.supersede(redis_client, a, 2, ttl_s=60)  # another attempt of a: not this one
    livestate.mark_final(redis_client, [c], ttl_s=60)
    livestate.mark_cancelled(redis_client, job)
    livestate.quarantine(redis_client, "SIM-1", "test")
    gate = livestate.batch_gate(redis_client, job_id=job, udid="SIM-1", runs=runs)
    assert gate.cancelled and gate.quarantined
    assert gate.superseded == {(b, 2), (c, 1)}
    for run, attempt in runs:  # the same answers as the one-key-at-a-time readers
        assert ((run, attempt) in gate.superseded) == livestate.is_superseded(
            redis_client, run, attempt
        )


# -- ingest's multi-row writes -------------------------------------------------------------


def _queued_run(ingestor: Ingestor) -> dict[str, Any]:
    spec = {"compute_units": ["all"], "iterations": 5, "warmup": 1}
    return run_awaiting_result(ingestor, db.RunStatus.QUEUED, spec, attempts=1, max_attempts=3)


def _rows(ingestor: Ingestor, run_id: str, table: Any) -> int:
    with ingestor.sessions() as session:
        return int(session.scalar(
            select(func.count()).select_from(table).where(table.run_id == uuid.UUID(run_id))
        ) or 0)  # fmt: skip


def test_a_retried_run_keeps_only_the_rows_of_the_attempt_that_finished_it(ingestor):
    ok = _queued_run(ingestor)
    runner = ok["runner_result"]
    settings, ops = len(runner["settings"]), len(runner["compute_plan"]["ops"])
    # Attempt 1 measured, then the runner app left the foreground: infra, retried.
    interrupted = copy.deepcopy(ok)
    interrupted["runner_result"]["settings"][0]["error"] = {
        "kind": "interrupted", "message": "the screen locked"
    }  # fmt: skip
    interrupted.update(outcome="infra_error", failure={"kind": "interrupted",
                       "message": "the runner app left the foreground", "infra": True})  # fmt: skip
    assert ingestor.ingest(interrupted) is IngestOutcome.RETRY
    assert _rows(ingestor, ok["run_id"], db.Measurement) == settings
    assert _rows(ingestor, ok["run_id"], db.OpPlacement) == ops
    second = copy.deepcopy(ok)
    second["attempt"] = 2
    assert ingestor.ingest(second) is IngestOutcome.STORED
    assert _rows(ingestor, ok["run_id"], db.Measurement) == settings
    assert _rows(ingestor, ok["run_id"], db.OpPlacement) == ops
    with ingestor.sessions() as session:
        errors = session.scalars(
            select(db.Measurement.error_kind).where(
                db.Measurement.run_id == uuid.UUID(ok["run_id"])
            )
        ).all()
    assert errors == [None] * settings  # attempt 2's rows, not attempt 1's
    assert ingestor.ingest(second) is IngestOutcome.DUPLICATE  # and a redelivery adds none
    assert _rows(ingestor, ok["run_id"], db.Measurement) == settings


def test_a_first_attempt_stores_one_row_per_setting_and_per_plan_op(ingestor):
    ok = _queued_run(ingestor)
    assert ingestor.ingest(ok) is IngestOutcome.STORED
    runner = ok["runner_result"]
    with ingestor.sessions() as session:
        rows = session.scalars(
            select(db.Measurement).where(db.Measurement.run_id == uuid.UUID(ok["run_id"]))
        ).all()
        placements = session.scalars(
            select(db.OpPlacement).where(db.OpPlacement.run_id == uuid.UUID(ok["run_id"]))
        ).all()
    assert sorted(str(r.compute_units) for r in rows) == sorted(
        s["compute_units"] for s in runner["settings"]
    )
    by_units = {str(r.compute_units): r for r in rows}
    for setting in runner["settings"]:
        row = by_units[setting["compute_units"]]
        assert row.samples_ms == setting["latencies_ms"]
        assert (row.count, row.p50) == (setting["stats"]["count"], setting["stats"]["p50"])
    assert sorted((p.index, p.name, p.source) for p in placements) == sorted(
        (op["index"], op["name"], "plan") for op in runner["compute_plan"]["ops"]
    )


# -- results waiting on the queue, stored in one transaction -------------------------------


def _as_task(ingestor: Ingestor) -> Any:
    """The coordinator's ingest task, run in this process (Task.apply: a real task context)."""
    app = ingestor.app

    @app.task(name=INGEST_RESULT_TASK)
    def ingest_result(payload: Any) -> str:
        return str(ingestor.ingest(payload))

    return ingest_result


def test_the_results_waiting_behind_one_are_stored_with_it_and_acknowledged(ingestor, redis_client):
    messages = [_queued_run(ingestor) for _ in range(4)]
    for message in messages[1:]:
        ingestor.app.send_task(INGEST_RESULT_TASK, args=[message], queue=RESULTS_QUEUE)
    # A packed launch's results: Celery's to deliver (taken last, given back at once).
    launch = {"results": [_queued_run(ingestor)]}
    ingestor.app.send_task(INGEST_LAUNCH_TASK, args=[launch], queue=RESULTS_QUEUE)
    assert _as_task(ingestor).apply(args=[messages[0]]).get() == "stored"
    for message in messages:
        assert _rows(ingestor, message["run_id"], db.Measurement) == len(
            message["runner_result"]["settings"]
        )
        assert livestate.is_superseded(redis_client, message["run_id"], 1)  # marked final
    assert redis_client.llen(RESULTS_QUEUE) == 1
    assert _rows(ingestor, launch["results"][0]["run_id"], db.Measurement) == 0
    assert redis_client.hlen("unacked") == 0  # every taken message acknowledged


def test_a_taken_result_that_does_not_validate_goes_back_to_the_queue(ingestor, redis_client):
    good, other = _queued_run(ingestor), _queued_run(ingestor)
    bad = copy.deepcopy(other)
    bad["attempt"] = "first"
    ingestor.app.send_task(INGEST_RESULT_TASK, args=[bad], queue=RESULTS_QUEUE)
    ingestor.app.send_task(INGEST_RESULT_TASK, args=[other], queue=RESULTS_QUEUE)
    assert _as_task(ingestor).apply(args=[good]).get() == "stored"
    assert _rows(ingestor, other["run_id"], db.Measurement) > 0  # taken and stored
    assert redis_client.llen(RESULTS_QUEUE) == 1  # the bad one, for Celery to deliver alone
    assert redis_client.hlen("unacked") == 0
    with ingestor.sessions() as session:
        assert session.scalar(select(func.count()).select_from(db.RawResult)) == 0


def test_results_are_taken_along_only_by_the_ingest_task(ingestor, redis_client):
    first, waiting = _queued_run(ingestor), _queued_run(ingestor)
    ingestor.app.send_task(INGEST_RESULT_TASK, args=[waiting], queue=RESULTS_QUEUE)
    assert ingestor.ingest(first) is IngestOutcome.STORED  # called directly: alone
    assert redis_client.llen(RESULTS_QUEUE) == 1


# -- what a transaction of results reads, read once ----------------------------------------


def _runs_of_one_job(ingestor: Ingestor, count: int) -> list[dict[str, Any]]:
    """``count`` queued runs of one job and one model, their results from one new device."""
    first = _queued_run(ingestor)
    messages = [first]
    with session_scope(ingestor.sessions) as session:
        for _ in range(count - 1):
            message = copy.deepcopy(first)
            message["run_id"] = str(uuid.uuid4())
            session.add(db.Run(id=uuid.UUID(message["run_id"]), job_id=uuid.UUID(first["job_id"]),
                               model_sha256=first["runner_result"]["model_sha256"],
                               device_class=first["device"]["product_type"],
                               status=db.RunStatus.QUEUED, attempts=1, max_attempts=3,
                               created_at=NOW))  # fmt: skip
            messages.append(message)
    return messages


def _selects(ingestor: Ingestor) -> list[str]:
    """Every SELECT the ingestor's engine runs from now on."""
    from sqlalchemy import event

    engine = ingestor.sessions.kw["bind"]
    seen: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", before)
    return seen


def test_results_stored_together_read_their_job_model_and_device_once(ingestor, redis_client):
    messages = _runs_of_one_job(ingestor, 6)
    for message in messages[1:]:
        ingestor.app.send_task(INGEST_RESULT_TASK, args=[message], queue=RESULTS_QUEUE)
    selects = _selects(ingestor)
    assert _as_task(ingestor).apply(args=[messages[0]]).get() == "stored"
    for table in ("jobs", "models", "devices", "run_attempts"):
        reads = [s for s in selects if f"FROM {table} " in s + " "]
        assert len(reads) == 1, (table, reads)  # not once per result
    with ingestor.sessions() as session:
        runs = session.scalars(
            select(db.Run).where(db.Run.job_id == uuid.UUID(messages[0]["job_id"]))
        )
        assert {r.status for r in runs} == {db.RunStatus.SUCCEEDED}
        assert session.scalar(select(func.count()).select_from(db.Device)) == 1  # made once
        assert session.scalar(select(func.count()).select_from(db.RunAttempt)) == 6
        assert session.scalar(select(func.count()).select_from(db.Verdict)) == 6
        job = session.get(db.Job, uuid.UUID(messages[0]["job_id"]))
        assert job is not None and job.status == db.JobStatus.DONE
    for message in messages:  # one pipeline of final marks, every run in it
        assert livestate.is_superseded(redis_client, message["run_id"], 1)
    assert redis_client.hlen("unacked") == 0


def test_a_result_taken_twice_in_one_transaction_is_stored_once(ingestor, redis_client):
    message = _queued_run(ingestor)
    ingestor.app.send_task(INGEST_RESULT_TASK, args=[message], queue=RESULTS_QUEUE)
    assert _as_task(ingestor).apply(args=[message]).get() == "stored"
    assert _rows(ingestor, message["run_id"], db.RunAttempt) == 1
    assert _rows(ingestor, message["run_id"], db.Verdict) == 1
    assert _rows(ingestor, message["run_id"], db.Measurement) == len(
        message["runner_result"]["settings"]
    )
    assert redis_client.llen(RESULTS_QUEUE) == 0 and redis_client.hlen("unacked") == 0


def test_effects_of_results_stored_together_are_applied_together_but_quarantines_apart():
    from orchestrator.ingest import _merged
    from orchestrator.runs import Effects

    night = uuid.uuid4()
    plain = [Effects(finished=["r1"], nights=[night]), Effects(finished=["r2"], nights=[night])]
    quarantining = Effects(finished=["r3"], quarantine=("udid-1", "3 infra failures in a row"))
    merged = _merged([plain[0], quarantining, plain[1]])
    assert len(merged) == 2
    assert merged[0].finished == ["r1", "r2"] and merged[0].nights == [night]  # analysed once
    assert merged[1].quarantine == ("udid-1", "3 infra failures in a row")
    assert merged[1].finished == ["r3"]
