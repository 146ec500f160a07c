"""Packed probes (issue 21 item 1): a parent's probe runs share runner launches.

The acceptance runs the real pipeline but the transport in this process (bench/
packed_probes.py's PackedFarm: dispatch, the agent's execute_all on a SIMULATED XR on iOS
16, the real Ingestor on a real Redis), packing on and off, and compares the placements.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agents.batch import execute_all
from agents.devices.simulated import build_farm
from bench.packed_probes import PackedFarm, chain_model
from orchestrator import modelkit, reaper, redelivery
from orchestrator.artifacts.store import ArtifactStore
from orchestrator.bisect import packing
from orchestrator.delivery import inflight
from orchestrator.modelkit.materialize import materialize
from orchestrator.protocol import (
    BatchOutcome,
    ComputeUnits,
    RunBatch,
    RunnerManifest,
    RunPurpose,
    livestate,
)
from orchestrator.protocol.transport import Sent, create_app, device_queue, publish_batch
from orchestrator.runs import Effects
from orchestrator.settings import load_settings
from orchestrator.store import models as db
from orchestrator.store.engine import session_scope
from tests.bisect.packed_farms import XR_IOS16, placements
from tests.contract.batches import run_batch


@pytest.fixture(scope="module")
def twenty_signatures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = chain_model(tmp_path_factory.mktemp("packed") / "chain.mlpackage", 22, seed=3)
    ops = modelkit.inspect_model(path).ops
    assert len({modelkit.op_signature(op) for op in ops} - {None}) == 20  # the premise
    return path


def _bisect(home: Path, redis_url: str, model: Path, *, packing: bool) -> PackedFarm:
    farm = PackedFarm.start(home, redis_url, packing=packing, farm=XR_IOS16)
    farm.submit(model, iterations=20)
    farm.run_all()
    return farm


def test_twenty_signatures_take_at_most_three_launches_and_place_as_unpacked(
    tmp_path: Path, redis_url: str, twenty_signatures: Path
) -> None:
    packed = _bisect(tmp_path / "packed", redis_url, twenty_signatures, packing=True)
    unpacked = _bisect(tmp_path / "unpacked", redis_url, twenty_signatures, packing=False)
    try:
        # Single-op probes: not the lifted ones, not context-search windows.
        single_op = [launch for launch in packed.probe_launches(repeat=1) if not launch.window]
        assert sum(launch.runs for launch in single_op) == 20  # every signature probed
        assert len(single_op) <= 3
        off = [launch for launch in unpacked.probe_launches(repeat=1) if not launch.window]
        assert len(off) == 20  # packing off: one each
        placed = placements(packed)
        assert len(placed) == 20
        assert placed == placements(unpacked)
        # Less device time for the same answer (figures: bench/packed_probes.py).
        assert packed.device_seconds() < unpacked.device_seconds()
        # Each probe run ended with its own attempt, stored once.
        assert all(o == "stored" for o in packed.outcomes)
    finally:
        packed.close()
        unpacked.close()


# -- packing ---------------------------------------------------------------------------
def _batch(sha: str, filename: str = "p.mlpackage", **varied: Any) -> RunBatch:
    """A probe run pinned to the one simulated device, measured in every compute unit."""
    return run_batch(sha, filename=filename, units=list(ComputeUnits), pinned_udid="sim-1",
                     purpose=RunPurpose.PROBE, **varied)  # fmt: skip


def _stored_probes(
    tmp_path: Path, probes: list[Path]
) -> tuple[list[RunBatch], Callable[[RunBatch], Path]]:
    """A probe batch for each model, fetched from an artifact store as an agent would."""
    store = ArtifactStore(tmp_path / "store", 10**9)
    refs = [store.add(p) for p in probes]
    batches = [_batch(ref.sha256, iterations=10, filename=path.name, size_bytes=ref.size_bytes,
                      location="file:///") for ref, path in zip(refs, probes, strict=True)]  # fmt: skip

    def fetch(batch: RunBatch) -> Path:
        return materialize(store.path_of(batch.model.sha256), batch.model, tmp_path / "m")

    return batches, fetch


def _sha(i: int) -> str:
    return f"{i:064x}"


def test_packs_stay_within_the_budget_and_keep_every_run_once(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path)
    # 4 settings × (1 + 5 × 5 + 50) predictions × 20 ms + 1 s = 7.08 s a probe; 60 s
    # timeouts leave 30 s a pack: 4 probes each.
    batches = [_batch(_sha(i), timeout_s=60) for i in range(10)]
    packs = packing.pack(batches, settings=settings, repeat=1)
    each = packing.probe_estimate_s(batches[0].spec, repeat=1, prediction_ms=20.0)
    assert each == pytest.approx(7.08)
    assert [len(p.members()) for p in packs] == [4, 4, 2]
    assert all(len(p.members()) * each <= packing.budget_s(p.spec) for p in packs)
    runs = [m.run_id for p in packs for m in p.members()]
    assert runs == [b.run_id for b in batches]  # in order, each once
    # Lifted probes (16 copies) cost 16× the predictions: fewer per pack.
    lifted = packing.pack(batches, settings=settings, repeat=16)
    assert all(len(p.members()) == 1 for p in lifted)
    # A model twice never shares a launch; packing off changes nothing.
    twice = packing.pack([batches[0], _batch(_sha(0))], settings=settings, repeat=1)
    assert [len(p.members()) for p in twice] == [1, 1]
    off = load_settings(home=tmp_path, probe_packing=False)
    assert packing.pack(batches, settings=off, repeat=1) == batches
    capped = load_settings(home=tmp_path, probe_pack_max=3)
    assert [len(p.members()) for p in packing.pack(batches, settings=capped, repeat=1)] == [
        3, 3, 3, 1,
    ]  # fmt: skip


def test_single_run_messages_are_unchanged_on_the_wire_and_packed_ones_say_version_2() -> None:
    single = _batch(_sha(1))
    wire = single.model_dump(mode="json")
    assert "packed" not in wire and wire["schema_version"] == 1
    packed = RunBatch.pack([single, _batch(_sha(2)), _batch(_sha(3))])
    wire = json.loads(packed.model_dump_json())
    assert wire["schema_version"] == 2 and len(wire["packed"]) == 2
    assert RunBatch.model_validate(wire).members()[1].model.sha256 == _sha(2)
    assert packed.members()[0].batch_id == packed.batch_id == single.batch_id
    with pytest.raises(ValueError, match="schema_version 2"):
        RunBatch.model_validate(wire | {"schema_version": 1})
    with pytest.raises(ValueError, match="schema_version 2"):
        RunBatch.model_validate(single.model_dump() | {"schema_version": 2})
    with pytest.raises(ValueError, match="twice"):
        RunBatch.pack([single, single])


# -- split on crash -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def four_probes(tmp_path_factory: pytest.TempPathFactory, twenty_signatures: Path) -> list[Path]:
    out = tmp_path_factory.mktemp("probes")
    index = modelkit.write_probes(twenty_signatures, out)
    return [out / p.file for p in index.probes[:4]]


def test_a_probe_that_crashes_the_runner_is_split_off_and_the_others_are_measured(
    tmp_path: Path, four_probes: list[Path]
) -> None:
    batches, fetch = _stored_probes(tmp_path, four_probes)
    bad = batches[2].model.sha256
    [device] = build_farm(f"{XR_IOS16}!crash#{bad[:16]}", seed=3)
    results = execute_all(RunBatch.pack(batches), device, agent="a", fetch_model=fetch)
    by_run = {r.run_id: r for r in results}
    assert len(results) == 4 and set(by_run) == {b.run_id for b in batches}
    crashed = by_run[batches[2].run_id]
    assert crashed.outcome is BatchOutcome.INFRA_ERROR and crashed.failure is not None
    assert crashed.failure.kind == "runner_crash"
    for batch in (batches[0], batches[1], batches[3]):
        result = by_run[batch.run_id]
        assert result.outcome is BatchOutcome.OK and result.runner_result is not None
        assert result.runner_result.model_sha256 == batch.model.sha256
        assert result.runner_result.schema_version == 1  # what ingest stores, as before
        assert len(result.runner_result.settings) == 4
    # Launches: the pack, its halves, the bad half's halves: 1 + 2 log2(4) at most.
    assert device.runs <= 1 + 2 * math.ceil(math.log2(4))
    # The crash counts against the device once: on the launch that was the bad probe alone.
    assert [r.counts_against_device for r in results if r.failure] == [True]


def test_the_simulated_runner_launches_once_for_a_packed_manifest(
    tmp_path: Path, four_probes: list[Path]
) -> None:
    [alone] = build_farm(XR_IOS16, seed=3)
    [packed] = build_farm(XR_IOS16, seed=3)
    inventories = [modelkit.inspect_model(p) for p in four_probes]
    single = []
    for inventory, path in zip(inventories, four_probes, strict=True):
        manifest = RunnerManifest(batch_id="b-a1", model={"filename": path.name,
                                  "sha256": inventory.sha256, "format": "mlpackage"},
                                  compute_units=list(ComputeUnits), iterations=10, warmup=2,
                                  time_budget_s=540)  # fmt: skip
        single.append(manifest)
        alone.simulate_batch(manifest, inventory, 600)
    models = [m.model for m in single]
    manifest = single[0].model_copy(update={"schema_version": 2, "models": models})
    result, truth = packed.simulate_batch(
        RunnerManifest.model_validate(manifest.model_dump()), inventories, 600
    )
    assert packed.runs == 1 and alone.runs == 4
    assert result.models is not None and [m.model_sha256 for m in result.models] == [
        i.sha256 for i in inventories
    ]
    assert all(len(m.settings) == 4 and m.error is None for m in result.models)
    # The launch is paid once: three launches (1.5 s each) less than four alone.
    assert alone.busy_s - packed.busy_s == pytest.approx(3 * 1.5, abs=0.5)
    assert truth.device_s == pytest.approx(packed.busy_s)
    assert [t.device_s > 0 for t in packed.last_truths] == [True] * 4


def test_redelivery_sees_every_run_of_a_packed_batch_in_redis(
    redis_url: str, tmp_path: Path
) -> None:
    settings = load_settings(home=tmp_path, broker_url=redis_url)
    app = create_app(settings)
    batch = RunBatch.pack([_batch(_sha(i)) for i in range(3)])
    client = livestate.connect(redis_url)
    try:
        publish_batch(app, batch)
        held = inflight.batch_ids(client)
        assert {m.batch_id for m in batch.members()} <= held
    finally:
        client.delete(device_queue("sim-1"))
        for key in client.scan_iter(match=f"{device_queue('sim-1')}*"):
            client.delete(key)
        client.close()


@pytest.fixture
def probes_sent(
    tmp_path: Path, redis_url: str, twenty_signatures: Path
) -> Iterator[tuple[PackedFarm, RunBatch]]:
    """A packing farm right after the user run: its verdict planned the twenty probes,
    sent as one packed batch (to the stub publisher only: Redis never held it)."""
    farm = PackedFarm.start(tmp_path, redis_url, packing=True, farm=XR_IOS16)
    try:
        farm.submit(twenty_signatures, iterations=10)
        assert farm.run_next()
        [batch] = [s.batch for s in farm.publisher.sent[farm.done :]]
        assert batch.packed is not None and len(batch.members()) == 20
        yield farm, batch
    finally:
        farm.close()


def test_every_run_of_a_packed_batch_redis_lost_is_published_again_and_ends(
    probes_sent: tuple[PackedFarm, RunBatch],
) -> None:
    farm, lost = probes_sent
    # The stub publisher sent nothing to Redis: to the reaper the packed batch is lost.
    farm.done = len(farm.publisher.sent)
    [device] = farm.devices
    ident = device.identity
    livestate.put_device(farm.ingestor.redis, livestate.DeviceStatus(
        udid=ident.udid, product_type=ident.product_type, chip=ident.chip,
        os_version=ident.os_version, os_build=ident.os_build, name=ident.name,
        simulated=True, agent="bench-agent", state="ready"), ttl_s=60)  # fmt: skip
    after = Effects()
    with session_scope(farm.sessions) as session:
        again = redelivery.republish_lost(farm.ingestor, session, after, grace=0.0)
    farm.ingestor.apply(after)
    assert sorted(again) == sorted(str(m.run_id) for m in lost.members())
    republished = [s.batch for s in farm.publisher.sent[farm.done :]]
    assert sorted(b.batch_id for b in republished) == sorted(m.batch_id for m in lost.members())
    farm.run_all()  # alone now, each run ends
    with farm.sessions() as session:
        probes = session.query(db.Run).filter_by(purpose="probe").all()
        assert len(probes) >= 20 and all(r.status == "succeeded" for r in probes)
    assert farm.parent(farm.job).bisect_state == "done"


def test_leaving_the_foreground_in_a_packed_launch_fails_only_the_model_it_hit(
    tmp_path: Path, four_probes: list[Path]
) -> None:
    batches, fetch = _stored_probes(tmp_path, four_probes)
    [device] = build_farm(f"{XR_IOS16}!background@1", seed=3)
    results = execute_all(RunBatch.pack(batches), device, agent="a", fetch_model=fetch)
    assert device.runs == 1
    assert [r.outcome for r in results] == [BatchOutcome.OK] * 3 + [BatchOutcome.INFRA_ERROR]
    last = results[-1]
    assert last.run_id == batches[-1].run_id and last.failure is not None
    assert last.failure.kind == "interrupted"


def test_a_worker_that_dies_in_a_packed_batch_loses_every_run_of_it_to_the_reaper(
    probes_sent: tuple[PackedFarm, RunBatch],
) -> None:
    farm, batch = probes_sent
    members = batch.members()
    client = farm.ingestor.redis
    udid = farm.devices[0].identity.udid
    # The pool child's mark; the worker (pid 1 here) has no heartbeat: it is gone.
    livestate.set_busy(client, udid, run_id=str(batch.run_id), pid=2, ttl_s=60,
                       attempt=1, worker_pid=1,
                       packed=[(str(m.run_id), m.attempt) for m in members[1:]])  # fmt: skip
    assert inflight.busy_runs(client) == {str(m.run_id) for m in members}
    after = Effects()
    with session_scope(farm.sessions) as session:
        handled = reaper._lost_workers(farm.ingestor, session, after)
    farm.ingestor.apply(after)
    assert sorted(handled) == sorted(str(m.run_id) for m in members)
    assert all(livestate.is_superseded(client, str(m.run_id), 1) for m in members)
    with farm.sessions() as session:
        lost = session.query(db.RunAttempt).filter_by(attempt=1, failure_kind=reaper.GONE)
        assert {a.run_id for a in lost} == {m.run_id for m in members}


def test_the_lifts_one_launch_plans_are_repacked_and_other_work_is_left_alone(
    tmp_path: Path,
) -> None:
    settings = load_settings(home=tmp_path)
    lifts = [_batch(_sha(i), iterations=10) for i in range(5)]
    retry = _batch(_sha(9)).model_copy(update={"attempt": 2})
    user = _batch(_sha(10)).model_copy(update={"purpose": RunPurpose.USER})
    sent = [Sent(b, "q", 9, None) for b in lifts] + [
        Sent(retry, "q", 9, 1.0), Sent(user, "q", 0, None),
    ]  # fmt: skip
    out = packing.repack(sent, settings=settings)
    assert [(b.batch_id, c) for b, c in out[:2]] == [(retry.batch_id, 1.0), (user.batch_id, None)]
    # 16 copies: 4 × (1 + 25 + 10) × 20 ms × 16 + 1 s = 47 s a lift, 300 s a launch: 6 fit.
    [packed] = [b for b, _ in out[2:]]
    assert [m.run_id for m in packed.members()] == [b.run_id for b in lifts]


def test_a_heavy_probe_is_estimated_by_its_flops_and_gets_a_launch_of_its_own(
    tmp_path: Path,
) -> None:
    settings = load_settings(home=tmp_path)
    light, heavy, other = (_batch(_sha(i), timeout_s=60) for i in range(3))
    # 1e9 FLOPs at 5e6 a ms: 200 ms a prediction, 304 predictions: 61.8 s > 30 s alone.
    flops = {heavy.model.sha256: 1e9, light.model.sha256: 1e3}
    packs = packing.pack([light, heavy, other], settings=settings, repeat=1, flops=flops)
    assert [[m.run_id for m in p.members()] for p in packs] == [
        [light.run_id, other.run_id], [heavy.run_id],
    ]  # fmt: skip
    assert packing.probe_estimate_s(heavy.spec, repeat=1, prediction_ms=20.0, flops=1e9) > 60
