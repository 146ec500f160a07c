"""Issue 14, item 9: the worker's heartbeat (its parent process) never looks at the device
while the pool child runs a batch on it, and when it looks, it asks for the lockdown-level
check only (no tunnel, no disk image, no install)."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from pathlib import Path

import pytest

from agents.device_worker import DeviceWorker
from agents.devices.base import Readiness
from agents.devices.simulated import build_farm
from orchestrator.protocol import livestate
from orchestrator.settings import load_settings


class CountingDevice:
    """A simulated device that records how it was asked for readiness."""

    def __init__(self) -> None:
        [self.inner] = build_farm("iPhone11,8=1", seed=0)
        self.asked: list[bool] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def readiness(self, *, deep: bool = True) -> Readiness:
        self.asked.append(deep)
        return Readiness(reasons=["battery 5% and not charging"])


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[DeviceWorker]:
    device = CountingDevice()
    settings = load_settings(home=tmp_path, broker_url="redis://127.0.0.1:1/0")
    yield DeviceWorker(settings, device, agent="a", broker_url="redis://127.0.0.1:1/0")  # type: ignore[arg-type]
    device.inner.close()


def _hold_for(path: Path, started: object, release: object) -> None:
    from agents.device_lock import DeviceLock

    with DeviceLock(path).hold():
        started.set()  # type: ignore[attr-defined]
        release.wait(30)  # type: ignore[attr-defined]


def test_the_heartbeat_asks_for_the_shallow_check(worker: DeviceWorker) -> None:
    worker.check_readiness()
    assert worker.device.asked == [False]  # type: ignore[attr-defined]
    assert worker.state is livestate.DeviceState.NOT_READY


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_the_heartbeat_leaves_a_device_alone_while_a_batch_holds_it(
    worker: DeviceWorker, method: str
) -> None:
    context = multiprocessing.get_context(method)
    started, release = context.Event(), context.Event()
    batch = context.Process(target=_hold_for, args=(worker.lock.path, started, release))  # type: ignore[attr-defined]
    batch.start()
    try:
        assert started.wait(30)
        worker.check_readiness()
        assert worker.device.asked == []  # type: ignore[attr-defined]
        assert worker.state is livestate.DeviceState.READY  # its last answer stands
    finally:
        release.set()
        batch.join(30)
    worker.check_readiness()  # the batch is over: the heartbeat looks again
    assert worker.device.asked == [False]  # type: ignore[attr-defined]
