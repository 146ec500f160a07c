"""A model whose Core ML specification needs a newer iOS than the device runs is a
*model* failure on that device ("needs iOS 16, device runs 12.0"): recorded once, never
retried, nothing measured, whichever driver runs the device.

Seen before: ``anefarm profile conv10x10.mlpackage --simulate iPhone11,8@12.0=1`` said
FULL with latencies for an ML program (specification 7, iOS 16) on iOS 12.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from agents.batch import execute
from agents.devices.simulated import build_farm
from orchestrator.errors import ModelError
from orchestrator.modelkit.targets import TARGETS, os_too_old, read_spec_version
from orchestrator.protocol import BatchOutcome, ModelFormat, ModelRef, RunBatch, RunSpec
from orchestrator.store import models as db
from orchestrator.store.engine import make_engine, session_factory
from tests.ios.conftest import fake_mux, ios_device

__all__ = ["fake_mux", "ios_device"]  # the iOS driver's fixtures, used below

PROGRAM = "conv10x10.mlpackage"  # ML program, specification version 7: iOS 16
NETWORK = "conv10x10_nn.mlmodel"  # neural network, specification version 1: iOS 11


def coremltools_spec_version(path: Path) -> int:
    import coremltools as ct

    return int(ct.utils.load_spec(str(path)).specificationVersion)


def test_the_reader_agrees_with_coremltools_on_every_sample(samples):
    assert {p.suffix for p in samples.values()} == {".mlpackage", ".mlmodel"}
    for path in samples.values():
        assert read_spec_version(path) == coremltools_spec_version(path), path.name
    assert read_spec_version(samples[PROGRAM]) == 7


def test_the_reader_on_a_neural_network_of_another_version(samples, tmp_path):
    import coremltools as ct

    spec = ct.utils.load_spec(str(samples[NETWORK]))
    spec.specificationVersion = 4  # iOS 13
    path = tmp_path / "net_v4.mlmodel"
    ct.utils.save_spec(spec, str(path))
    assert read_spec_version(path) == 4 == coremltools_spec_version(path)


def test_the_reader_finds_the_version_after_other_fields(tmp_path):
    # Field 2 (description, length-delimited) before field 1: skipped by its length.
    path = tmp_path / "reordered.mlmodel"
    path.write_bytes(bytes([0x12, 3]) + b"abc" + bytes([0x08, 8]))
    assert read_spec_version(path) == 8


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"", "no specification version"),
        (b"\x12\x05ab", "no specification version"),  # length past the end
        (b"\x08\xff\xff", "truncated protobuf varint"),
        (b"\x0f", "unexpected protobuf wire type 7"),
    ],
)
def test_the_reader_refuses_what_is_not_a_model(tmp_path, content, says):
    path = tmp_path / "bad.mlmodel"
    path.write_bytes(content)
    with pytest.raises(ModelError, match=says):
        read_spec_version(path)


def test_the_reader_refuses_a_package_pointing_outside_itself(samples, tmp_path):
    package = tmp_path / "evil.mlpackage"
    package.mkdir()
    manifest = {"rootModelIdentifier": "x", "itemInfoEntries": {"x": {"path": "../../etc/passwd"}}}
    (package / "Manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="is missing"):
        read_spec_version(package)


@pytest.mark.parametrize(
    ("spec", "os_version", "message"),
    [
        (7, "12.0", "needs iOS 16, device runs 12.0"),
        (7, "15.8.3", "needs iOS 16, device runs 15.8.3"),
        (7, "16.0", None),
        (2, "11.1", "needs iOS 11.2, device runs 11.1"),
        (2, "11.2", None),
        (1, "12.0", None),
        (10, "18.7", "needs iOS 26, device runs 18.7"),
        (max(TARGETS) + 1, "26.1", "needs an iOS newer than 26, device runs 26.1"),
        (max(TARGETS) + 1, "27.0", None),  # newer than we know: the device decides
        (7, "", None),  # unreadable: the device decides
    ],
)
def test_the_gate_table(spec, os_version, message):
    error = os_too_old(spec, os_version)
    assert (error.message if error else None) == message
    if error:
        assert error.kind == "os_too_old" and not error.infra


def batch_for(path: Path) -> RunBatch:
    fmt = ModelFormat.MLPACKAGE if path.suffix == ".mlpackage" else ModelFormat.MLMODEL
    return RunBatch(
        run_id=uuid.uuid4(),
        attempt=1,
        job_id=uuid.uuid4(),
        model=ModelRef(sha256="f" * 64, filename=path.name, format=fmt, size_bytes=1),
        device_class="iPhone11,8",
        spec=RunSpec(compute_units=["all", "cpuOnly"], iterations=5, warmup=1, timeout_s=60),
        created_at=datetime.now(UTC),
    )


def test_simulated_device_on_ios_12_refuses_an_ml_program_before_running_it(samples):
    device = build_farm("iPhone11,8@12.0=1")[0]
    out = execute(
        batch_for(samples[PROGRAM]), device, agent="a", fetch_model=lambda b: samples[PROGRAM]
    )
    assert out.outcome is BatchOutcome.MODEL_ERROR and out.runner_result is None
    assert out.failure is not None and out.failure.kind == "os_too_old" and not out.failure.infra
    assert out.failure.message.startswith("needs iOS 16, device runs 12.0 (")
    assert device.runs == 0  # refused by the agent, never sent to the device
    ok = execute(
        batch_for(samples[NETWORK]), device, agent="a", fetch_model=lambda b: samples[NETWORK]
    )
    assert ok.outcome is BatchOutcome.OK  # a neural network of iOS 11 runs there


def test_the_simulated_runner_is_as_strict_as_core_ml(samples):
    # Called directly, bypassing the agent's gate: the device still refuses, as Core ML does.
    from agents.batch import manifest_for

    device = build_farm("iPhone11,8@12.0=1")[0]
    result = device.run(manifest_for(batch_for(samples[PROGRAM])), samples[PROGRAM], 60)
    assert result.error is not None and result.error.kind == "compile"
    assert "specification version 7" in result.error.message and not result.settings


def test_ios_driver_refuses_an_ml_program_on_ios_15_without_launching(ios_device, samples):
    device, fake, services = ios_device(os_version="15.7")
    out = execute(
        batch_for(samples[PROGRAM]), device, agent="a", fetch_model=lambda b: samples[PROGRAM]
    )
    assert out.failure is not None, out
    assert (out.outcome, out.failure.kind) == (BatchOutcome.MODEL_ERROR, "os_too_old")
    assert out.failure.message.startswith("needs iOS 16, device runs 15.7")
    assert services.launched == [] and fake.staging == {}  # nothing pushed, nothing launched


# `anefarm profile` starts its own Redis and Celery workers
@pytest.mark.redis
@pytest.mark.celery
@pytest.mark.slow
def test_profile_on_ios_12_fails_once_with_the_reason(samples, tmp_path):
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANEFARM_")}
    env["ANEFARM_HOME"] = str(home)  # its own embedded Redis, coordinator, agent, database
    out = subprocess.run(
        [sys.executable, "-m", "orchestrator", "profile", str(samples[PROGRAM]),
         str(samples[NETWORK]), "--simulate", "iPhone11,8@12.0=1", "--json"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 4, out.stderr  # 4: some run failed
    rows = {row["model"]: row for row in json.loads(out.stdout)["rows"]}
    program = rows[PROGRAM]
    assert program["status"] == "failed" and program["attempts"] == 1
    assert program["error"].startswith("os_too_old: needs iOS 16, device runs 12.0")
    assert program["verdict"] is None and program["latency_ms"] == {}
    assert rows[NETWORK]["status"] == "succeeded"  # the same device runs what it can
    engine = make_engine(f"sqlite:///{home / 'anefarm.db'}")
    try:
        with session_factory(engine)() as session:
            run_id = uuid.UUID(program["run"])
            attempts = (
                session.execute(select(db.RunAttempt).where(db.RunAttempt.run_id == run_id))
                .scalars()
                .all()
            )
            assert [(a.outcome, a.failure_kind) for a in attempts] == [
                ("model_error", "os_too_old")
            ]
            measured = (
                select(func.count())
                .select_from(db.Measurement)
                .where(db.Measurement.run_id == run_id)
            )
            assert session.execute(measured).scalar_one() == 0
    finally:
        engine.dispose()
