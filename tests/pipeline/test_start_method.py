"""Issue 14, item 1: a device worker's pool child runs batches whether it is forked
(Linux) or spawned (macOS, billiard's default there). Before, the batch task existed only
inside ``main()`` of the worker, so a spawned child answered every batch NotRegistered.

Each case checks how the child really started (a spawned one runs billiard's
``spawn_main``), so a test that silently ran under fork cannot pass for spawn.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pipeline.farm import Farm
from tests.pipeline.test_pipeline import A12, submit

pytestmark = [pytest.mark.slow]


def pool_children(pid: int) -> list[str]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [Path(f"/proc/{c}/cmdline").read_bytes().replace(b"\0", b" ").decode() for c in children]


# Farm.at starts the agent's Celery workers in the test body
@pytest.mark.celery
@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_device_worker_runs_batches_in_a_forked_or_spawned_child(
    tmp_path: Path, redis_url: str, samples: dict[str, Path], method: str
) -> None:
    farm = Farm.at(tmp_path, redis_url)
    farm.extra_env["ANEFARM_WORKER_START_METHOD"] = method
    try:
        farm.start_coordinator()
        farm.start_agent(f"{A12}=1", wait_for=1)
        job = submit(farm, samples["conv10x10.mlpackage"])
        report = farm.wait_job(job)
        assert [row["verdict"] for row in report["rows"]] == ["FULL"]
        (device,) = farm.wait_devices(1)
        assert device.pid is not None
        children = [c for c in pool_children(device.pid) if "semaphore_tracker" not in c]
        assert children, "the device worker has no pool child"
        spawned = ["spawn_main" in c for c in children]
        assert spawned == [method == "spawn"] * len(children), children
    finally:
        farm.kill()  # nothing is asserted after: no warm shutdown to wait for
