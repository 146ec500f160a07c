"""Issue 14's acceptance for the tunnel: with fakes that enforce pymobiledevice3's one
userspace tunnel per process, an iOS 17.4+ fake device runs a batch whether the device
worker's pool child is forked (Linux) or spawned (macOS).

A forked child inherits whatever tunnel its parent opened and is refused a tunnel of its
own, so this passes only while the worker's parent (its heartbeat) opens none. Real Redis,
coordinator and `anefarm agent --ios`; the device boundary is the fake usbmuxd/lockdownd in
this process and the shared developer-service fakes in the workers (fake_shared.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.protocol import livestate
from tests.ios.conftest import runner_app
from tests.ios.fake_shared import DIR_ENV, SharedFakeIPhone
from tests.ios.fake_usbmuxd import FakeUsbmuxd

# The farm of `anefarm agent --ios` over the shared fakes, as the end-to-end test has it.
from tests.ios.test_agent_ios_e2e import farm, model, wait_for
from tests.pipeline.farm import Farm
from tests.pipeline.test_pipeline import submit

__all__ = ["farm", "model"]  # fixtures, used by name

pytestmark = [pytest.mark.redis, pytest.mark.celery, pytest.mark.slow]

A14 = "iPhone13,2"
UDID = "00008101-0000000000000C33"


@pytest.mark.parametrize("farm", ["fork", "spawn"], indirect=True)
def test_an_ios_17_4_device_runs_a_batch_in_a_forked_or_spawned_child(
    farm: Farm, fake_mux: FakeUsbmuxd, model: Path
) -> None:
    root = Path(farm.extra_env[DIR_ENV])
    fake = fake_mux.attach(
        SharedFakeIPhone(UDID, root=root, apps=runner_app(), product_type=A14,
                         os_version="17.5.1", build="21F90")
    )  # fmt: skip
    farm.start_coordinator()
    farm.start_ios_agent(name="mac-1")
    redis = farm.redis()

    def ready() -> list[livestate.DeviceStatus] | None:
        live = [d for d in livestate.live_devices(redis) if d.state == "ready"]
        return live or None

    [device] = wait_for(farm, "the 17.4+ fake device ready", ready, timeout=45)
    assert (device.udid, device.product_type) == (UDID, A14)

    report = farm.wait_job(submit(farm, model, devices=A14), timeout=60)
    assert report["rows"], farm.logs()
    for row in report["rows"]:
        assert row["status"] == "succeeded" and row["simulated"] is True, (row, farm.logs())
    # Each batch ran at its first attempt: none was refused a tunnel and retried.
    launched = [launch[2] for launch in fake.launches()]
    assert launched and all(batch.endswith("-a1") for batch in launched), launched
