"""Many processes of one host bring the same model into one agent cache at once.

Seen in the field: two device workers fetched the same probe model at the same moment,
``materialize`` raced on the final rename ("Directory not empty"), the exception escaped
the Celery task and the run stayed queued for ever. Here eight real processes (spawned,
as on macOS, and forked) run the worker's own ``fetch_model`` on one stored package at
the same instant, under one filename and under eight different ones.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from agents.device_worker import DeviceWorker
from agents.devices.simulated import build_farm
from orchestrator.artifacts import ArtifactStore
from orchestrator.modelkit.locking import sha_lock
from orchestrator.modelkit.materialize import materialize
from orchestrator.protocol import ModelFormat, ModelRef
from orchestrator.settings import load_settings

PROCESSES = 8
MODEL = "conv10x10.mlpackage"


def _fetch_model(home: str, store_uri: str, ref_json: str, barrier: Any, results: Any) -> None:
    """One device worker's model fetch, as ``DeviceWorker.handle`` runs it."""
    ref = ModelRef.model_validate_json(ref_json)
    try:
        # The broker is never contacted: fetch_model needs only the settings' paths.
        settings = load_settings(home=Path(home), artifact_url=store_uri)
        device = build_farm("iPhone11,8=1")[0]
        worker = DeviceWorker(settings, device, agent="race", broker_url="redis://unused")
        batch = type("Batch", (), {"model": ref})()  # fetch_model reads only batch.model
        barrier.wait(timeout=120)
        began = time.monotonic()
        path = worker.fetch_model(batch)
        results.put((ref.filename, str(path), None, time.monotonic() - began))
    except BaseException as error:
        results.put((ref.filename, None, f"{type(error).__name__}: {error}", 0.0))
        raise


def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def stored(
    samples: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, ModelRef]:
    """The sample package in a coordinator ArtifactStore, and its ModelRef, as dispatch makes them."""
    root = tmp_path_factory.mktemp("artifacts")
    artifact = ArtifactStore(root, 1 << 30).add(samples[MODEL])
    ref = ModelRef(sha256=artifact.sha256, filename=artifact.filename,
                   format=ModelFormat(artifact.format), size_bytes=artifact.size_bytes,
                   location=root.as_uri())  # fmt: skip
    return root, ref


@pytest.mark.parametrize("start", ["spawn", "fork"])
@pytest.mark.parametrize("names", ["one filename", "eight filenames"])
def test_eight_processes_materialise_one_model_at_once(stored, samples, tmp_path, start, names):
    root, ref = stored
    # "fork": the eight children are forked — as Celery's prefork pool forks its children on
    # Linux — from the forkserver, a clean single-threaded parent. Forked straight from this
    # pytest worker they would inherit whatever threads earlier tests left in it (a lock
    # held at the fork never released): late in a full run, half of them once hung before
    # the barrier (fresh-clone run 9), which said nothing about materialising.
    context = multiprocessing.get_context("forkserver" if start == "fork" else start)
    barrier, results = context.Barrier(PROCESSES), context.Queue()
    filenames = [MODEL if names == "one filename" else f"m{i}-{MODEL}" for i in range(PROCESSES)]
    procs = [
        context.Process(target=_fetch_model, args=(str(tmp_path), root.as_uri(),
                        ref.model_copy(update={"filename": name}).model_dump_json(),
                        barrier, results))
        for name in filenames
    ]  # fmt: skip
    began = time.monotonic()
    for proc in procs:
        proc.start()
    try:
        outcomes = [results.get(timeout=180) for _ in procs]
    finally:
        for proc in procs:  # none left behind holding this worker's descriptors
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
    wall = time.monotonic() - began
    slowest = max(o[3] for o in outcomes)
    print(
        f"\n{PROCESSES} {start}ed processes, {names}: fetch + materialise {slowest:.3f} s"
        f" from the common start (slowest process), {wall:.2f} s wall with start-up"
    )

    assert [o[2] for o in outcomes if o[2]] == []
    assert all(proc.exitcode == 0 for proc in procs)
    cache = tmp_path / "agent-cache"
    models = cache / "models"
    assert {Path(o[1]) for o in outcomes} == {models / ref.sha256 / n for n in filenames}
    # No staging left behind, nothing but the one model in the cache.
    assert sorted(p.name for p in models.iterdir()) == [ref.sha256]
    assert sorted(p.name for p in (models / ref.sha256).iterdir()) == sorted(set(filenames))
    blobs = [p for p in (cache / "blobs").rglob("*") if p.is_file()]
    assert [p.name for p in blobs] == [ref.sha256]  # one download kept, no .part- files
    source = _tree(samples[MODEL])
    for name in set(filenames):
        assert _tree(models / ref.sha256 / name) == source
    # One extracted copy: every filename's files are the same inodes.
    for rel in source:
        inodes = {os.stat(models / ref.sha256 / name / rel).st_ino for name in filenames}
        assert len(inodes) == 1, rel


def _hold_lock(models: str, sha256: str, ready: Any) -> None:
    with sha_lock(Path(models), sha256):
        # What a worker killed mid-extraction leaves: a half-filled stage.
        stage = Path(models) / f".stage-{sha256}-dead"
        (stage / "half.mlpackage").mkdir(parents=True)
        ready.set()
        time.sleep(600)


def test_a_holder_killed_mid_extraction_blocks_nobody(stored, samples, tmp_path):
    root, ref = stored
    models = tmp_path / "models"
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    holder = context.Process(target=_hold_lock, args=(str(models), ref.sha256, ready))
    holder.start()
    try:
        assert ready.wait(timeout=60)
        done: list[Path] = []
        blob = ArtifactStore(root, 1 << 30).verify(ref.sha256)
        waiter = threading.Thread(target=lambda: done.append(materialize(blob, ref, models)))
        waiter.start()
        waiter.join(timeout=0.5)
        assert not done, "materialize must wait while another process holds the model's lock"
        assert holder.pid is not None
        os.kill(holder.pid, signal.SIGKILL)  # the kernel releases its flock
        waiter.join(timeout=30)
        assert done == [models / ref.sha256 / ref.filename]
        assert _tree(done[0]) == _tree(samples[MODEL])
        assert sorted(p.name for p in models.iterdir()) == [ref.sha256]  # stale stage removed
    finally:
        holder.kill()
        holder.join()
