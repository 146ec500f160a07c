"""An exception nobody expected, inside an agent's batch, ends as a reported attempt.

Before: ``execute`` caught only anefarm errors, so an OSError or a driver bug escaped the
Celery task, the message was acknowledged and its run stayed queued for ever. Now it is
an ``infra_error`` attempt of kind ``agent_error`` whose diagnostics hold the traceback,
the busy mark is cleared and the coordinator retries or gives up within the attempt
budget. The fault is the simulated device's ``exception`` mode: a plain RuntimeError out
of the driver, at the Device boundary, as a bug would raise it.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agents.batch import execute
from agents.device_worker import DeviceWorker
from agents.devices.base import DeviceIdentity, Diagnostics, Readiness
from agents.devices.simulated import build_farm
from orchestrator.protocol import (
    BatchOutcome,
    FailureInfo,
    ModelFormat,
    ModelRef,
    RunBatch,
    RunSpec,
    livestate,
)
from orchestrator.settings import load_settings
from orchestrator.store import models as db
from tests.pipeline.farm import Farm, farm
from tests.pipeline.test_pipeline import A12, count, submit

__all__ = ["farm"]  # the fixture: a farm with its coordinator running

MODEL = "conv10x10.mlpackage"
TRACEBACK = "Traceback (most recent call last):"


def batch_for(path: Path) -> RunBatch:
    return RunBatch(
        run_id=uuid.uuid4(),
        attempt=1,
        job_id=uuid.uuid4(),
        model=ModelRef(
            sha256="e" * 64, filename=path.name, format=ModelFormat.MLPACKAGE, size_bytes=1
        ),
        device_class=A12,
        spec=RunSpec(compute_units=["all", "cpuOnly"], iterations=5, warmup=1, timeout_s=60),
        created_at=datetime.now(UTC),
    )


def test_a_driver_bug_becomes_an_agent_error_with_its_traceback(samples):
    device = build_farm(f"{A12}=1!exception")[0]
    out = execute(
        batch_for(samples[MODEL]), device, agent="a", fetch_model=lambda b: samples[MODEL]
    )
    failure = out.failure
    assert out.outcome is BatchOutcome.INFRA_ERROR and failure is not None and failure.infra
    assert failure.kind == "agent_error"
    assert "\n" not in failure.message
    assert failure.message.startswith("unexpected RuntimeError in the agent on SIM-iPhone11-8-0")
    assert "simulated driver bug" in failure.message
    lines = failure.diagnostics
    assert lines[0] == TRACEBACK
    assert any("simulated.py" in line for line in lines)
    assert lines[lines.index("RuntimeError: simulated driver bug on SIM-iPhone11-8-0 (SIMULATED)")]
    assert "driver: unexpected exception (SIMULATED bug)" in lines  # the device's own log


def test_a_broken_model_cache_is_an_artifact_failure_not_an_escape(samples, tmp_path):
    home = tmp_path / "home"
    (home / "agent-cache").mkdir(parents=True)
    (home / "agent-cache" / "models").write_text("a file where the model cache should be")
    settings = load_settings(home=home, artifact_url=(tmp_path / "store").as_uri())
    store = tmp_path / "store"
    from orchestrator.artifacts import ArtifactStore

    artifact = ArtifactStore(store, 1 << 30).add(samples[MODEL])
    device = build_farm(f"{A12}=1")[0]
    worker = DeviceWorker(settings, device, agent="a", broker_url="redis://unused")
    batch = batch_for(samples[MODEL]).model_copy(update={"model": ModelRef(
        sha256=artifact.sha256, filename=MODEL, format=ModelFormat.MLPACKAGE,
        size_bytes=artifact.size_bytes)})  # fmt: skip
    out = execute(batch, device, agent="a", fetch_model=worker.fetch_model)
    assert out.outcome is BatchOutcome.INFRA_ERROR and out.failure is not None
    assert out.failure.kind == "artifact"
    assert out.failure.message.startswith(f"cannot materialise model {artifact.sha256[:12]}")
    assert device.runs == 0


class DeepBugDevice:
    """A device whose driver fails deep in a recursion with a huge multi-line message."""

    identity = DeviceIdentity("SIM-X-0", A12, "A12", "18.7", "22H20", "XR", True)

    def readiness(self, *, deep: bool = True) -> Readiness:
        return Readiness()

    def run(self, manifest, model_path, timeout_s):
        return self._down(300)  # 600 frames, over 1000 traceback lines

    # Two alternating frames: Python folds only identical consecutive ones.
    def _down(self, depth):
        return self._across(depth - 1) if depth else self._fail()

    def _across(self, depth):
        return self._down(depth)

    def _fail(self):
        raise KeyError("x" * 9000 + "\nsecond line")

    def diagnostics(self) -> Diagnostics:
        raise OSError("the diagnostics channel is broken too")

    def reboot(self) -> None: ...

    def close(self) -> None: ...


def test_a_huge_traceback_fits_the_protocol_limits(samples):
    out = execute(batch_for(samples[MODEL]), DeepBugDevice(), agent="a",
                  fetch_model=lambda b: Path("/nonexistent/model.mlpackage"))  # fmt: skip
    failure = out.failure
    assert failure is not None and failure.kind == "agent_error"
    FailureInfo.model_validate(failure.model_dump())  # within every limit
    assert len(failure.message) <= 4000 and "\n" not in failure.message
    assert len(failure.diagnostics) <= 500
    assert failure.diagnostics[0] == TRACEBACK
    assert any("lines left out" in line for line in failure.diagnostics)
    assert any(line.startswith("KeyError:") for line in failure.diagnostics)  # the end is kept
    assert failure.diagnostics[-1].startswith("diagnostics unavailable: OSError(")


# -- end to end: real Redis, a real coordinator, a real agent ---------------------------


def assert_agent_error_attempt(attempt: db.RunAttempt) -> None:
    assert attempt.outcome == "infra_error" and attempt.failure_kind == "agent_error"
    assert attempt.failure_message is not None
    assert attempt.failure_message.startswith("unexpected RuntimeError in the agent")
    assert TRACEBACK in attempt.diagnostics
    assert any(
        line.startswith("RuntimeError: simulated driver bug") for line in attempt.diagnostics
    )


def run_with_fault(farm: Farm, samples: dict[str, Path], fault: str) -> tuple[Any, float]:
    """The model's report row from an agent whose one A12 has ``fault``, and the seconds
    from submit to the job's end."""
    farm.start_agent(f"{A12}=1!{fault}", wait_for=1)
    began = time.monotonic()
    report = farm.wait_job(submit(farm, samples[MODEL]), timeout=120)
    return report["rows"][0], time.monotonic() - began


@pytest.mark.slow
def test_the_run_recovers_after_an_agent_error(farm, samples):
    row, wall = run_with_fault(farm, samples, "exception@1")  # the device's first batch fails
    assert row["status"] == "succeeded"
    failed, ok = farm.attempts(row["run"])  # exactly two attempts
    assert_agent_error_attempt(failed)
    assert ok.outcome == "ok" and ok.attempt == 2
    assert count(farm, db.Measurement, run_id=uuid.UUID(row["run"])) == 4  # one per setting
    assert livestate.busy_marks(farm.redis()) == []
    recovery = (ok.finished_at - failed.finished_at).total_seconds()
    print(f"\nagent_error → ok on retry: {recovery:.2f} s to recovery, {wall:.2f} s submit → done")


@pytest.mark.slow
def test_a_device_that_always_fails_so_gives_up_within_the_budget(farm, samples):
    row, wall = run_with_fault(farm, samples, "exception")
    assert row["status"] == "failed"
    assert row["error"].startswith(
        "agent_error: gave up after 3 attempt(s): unexpected RuntimeError"
    )
    tries = farm.attempts(row["run"])
    assert [t.attempt for t in tries] == [1, 2, 3]  # the attempt budget, one row each
    for attempt in tries:
        assert_agent_error_attempt(attempt)
    assert count(farm, db.Measurement, run_id=uuid.UUID(row["run"])) == 0
    assert count(farm, db.Verdict, run_id=uuid.UUID(row["run"])) == 0
    assert livestate.busy_marks(farm.redis()) == []
    print(f"\nthree agent_error attempts → run failed: {wall:.2f} s submit → terminal")
