"""Overhead per batch on the agent's side (issue 21, docs/performance.md): what was cut
keeps its guarantees.

- a model blob is hashed once per cache entry, across processes, and hashed again (and
  replaced) when the file is no longer the one that was verified;
- the next batches' models are read from the device's queues without taking the batches,
  and prefetched into the cache while a batch runs;
- one round trip tells a worker whether a batch's job is cancelled, its device quarantined,
  or which of its runs are superseded or final.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agents import fetch
from agents.device_worker import DeviceWorker, WorkerSpec, open_device
from agents.devices.simulation.farm import agent_udid
from agents.fetch import ArtifactFetcher, Prefetcher, blob_relpath
from orchestrator.artifacts.store import ArtifactStore
from orchestrator.protocol import ModelFormat, ModelRef, RunBatch, RunPurpose, RunSpec, livestate
from orchestrator.protocol.transport import (
    create_app,
    device_class_queue,
    device_queue,
    next_batches,
    publish_batch,
)
from orchestrator.runs.lifecycle import model_ref
from orchestrator.settings import load_settings

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
