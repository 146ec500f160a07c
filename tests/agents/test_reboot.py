"""The agent restarts a device after repeated device-side infra failures (runner crash or
hang, malformed result), once, before the coordinator would quarantine it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from agents.device_worker import DeviceWorker
from agents.devices.simulated import build_farm
from orchestrator.protocol import BatchOutcome, FailureInfo, RunBatchResult
from orchestrator.settings import load_settings


@pytest.fixture
def worker(tmp_path):
    [device] = build_farm("iPhone11,8=1", seed=0)
    settings = load_settings(home=tmp_path, broker_url="redis://127.0.0.1:1/0")
    yield DeviceWorker(settings, device, agent="a", broker_url=settings.broker_url or "")
    device.close()


def failed(worker: DeviceWorker, kind: str, *, infra: bool = True) -> RunBatchResult:
    now = datetime.now(UTC)
    return RunBatchResult(
        run_id=uuid.uuid4(), attempt=1, job_id=uuid.uuid4(), agent="a",
        device=worker.identity.to_info(),
        outcome=BatchOutcome.INFRA_ERROR if infra else BatchOutcome.MODEL_ERROR,
        failure=FailureInfo(kind=kind, message=kind, infra=infra), started_at=now, finished_at=now,
    )  # fmt: skip


def test_two_device_side_failures_in_a_row_ask_for_one_restart(worker) -> None:
    assert worker.after_batch(failed(worker, "runner_crash")) is False
    assert worker.after_batch(failed(worker, "runner_timeout")) is True
    assert worker.after_batch(failed(worker, "runner_crash")) is False  # counting starts over


@pytest.mark.parametrize(
    ("between", "expected"),
    [
        ("compile", False),  # a model failure: the device works, counting starts over
        ("device_gone", True),  # nothing to restart, but it does not clear the streak
        ("not_ready", True),
    ],
)
def test_what_counts(worker, between: str, expected: bool) -> None:
    worker.after_batch(failed(worker, "runner_crash"))
    worker.after_batch(failed(worker, between, infra=between != "compile"))
    assert worker.after_batch(failed(worker, "protocol")) is expected


def test_reboot_after_zero_never_restarts(worker) -> None:
    worker.settings = worker.settings.model_copy(update={"reboot_after": 0})
    assert not any(worker.after_batch(failed(worker, "runner_crash")) for _ in range(5))


def test_the_restart_reaches_the_device_and_a_failed_one_does_not_raise(worker) -> None:
    worker.reboot()
    assert worker.device.reboots == 1
    worker.device.close()
    worker.reboot()  # a closed device cannot restart: logged, the coordinator decides
