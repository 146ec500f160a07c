"""Issue 7's last acceptance check, end to end: a fake device detaching mid-run has its batch
retried on another device of the class, and the run ends with exactly one result.

Real Redis, a real coordinator and `anefarm agent --ios` with one real Celery worker per
USB device, all started through the CLI. Only the device boundary is fake: the fake
usbmuxd/lockdownd in this process, and developer services that each worker loads through
the ANEFARM_IOS_DEVELOPER_SERVICES hook over state this test shares (tests/ios/fake_shared.py).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from redis import Redis
from sqlalchemy import select

from orchestrator.protocol import livestate
from orchestrator.store import models as db
from tests.ios.conftest import runner_app
from tests.ios.fake_shared import DIR_ENV, HOOK, SharedFakeIPhone
from tests.ios.fake_usbmuxd import FakeUsbmuxd
from tests.pipeline.farm import Farm
from tests.pipeline.test_pipeline import count, submit

pytestmark = [pytest.mark.redis, pytest.mark.celery, pytest.mark.slow]

A12 = "iPhone11,8"
A, B = "00008020-0000000000000A11", "00008020-0000000000000B22"  # two iPhone XR
REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def wait_for(farm: Farm, what: str, probe: Callable[[], T | None], timeout: float = 30) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        farm._check()  # a process that died says so at once, with the logs
        time.sleep(0.1)
    import subprocess

    ps = subprocess.run(
        ["ps", "-eo", "pid,ppid,stat,etime,args"], capture_output=True, text=True
    ).stdout
    raise AssertionError(
        f"timed out waiting for {what}\n{farm.logs()}\n{ps}\n{livestate.live_devices(farm.redis())}"
    )


@pytest.fixture
def model(samples: dict[str, Path]) -> Path:
    return samples["conv10x10.mlpackage"]


@pytest.fixture
def farm(
    request: pytest.FixtureRequest, tmp_path: Path, redis_url: str, fake_mux: FakeUsbmuxd
) -> Iterator[Farm]:
    """`anefarm agent --ios` over the shared fakes. Issue 14: a Mac spawns the pool child
    that runs batches, Linux forks it; a test names the way(s) it needs with
    ``@pytest.mark.parametrize("farm", ["fork", "spawn"], indirect=True)``, else the
    suite's own choice (tests/conftest.py ``worker_start_method``) holds."""
    farm = Farm.at(tmp_path, redis_url)
    farm.extra_env = {
        "USBMUXD_SOCKET_ADDRESS": fake_mux.address,
        "ANEFARM_IOS_DEVELOPER_SERVICES": HOOK,
        DIR_ENV: str(tmp_path / "devices"),
        "ANEFARM_IOS_RUNNER_VERSION": "7",
        "PYTHONPATH": str(REPO),  # the workers import the hook from tests/
    }
    start_method = getattr(request, "param", None)
    if start_method is not None:
        farm.extra_env["ANEFARM_WORKER_START_METHOD"] = start_method
    yield farm
    farm.kill()  # a teardown: nothing is asserted about the shutdown


@pytest.mark.parametrize("farm", ["fork", "spawn"], indirect=True)
def test_device_detached_mid_run_is_retried_on_another_and_ends_with_one_result(
    farm: Farm, fake_mux: FakeUsbmuxd, model: Path
) -> None:
    root = Path(farm.extra_env[DIR_ENV])
    # Both runners block: whichever device gets the batch is still running it when unplugged.
    fakes = {
        udid: fake_mux.attach(
            # iOS 17.4+: developer services ride the process's one userspace tunnel, which
            # the fakes enforce; only the pool child may open it (issue 14, item 2).
            SharedFakeIPhone(
                udid,
                root=root,
                apps=runner_app(),
                behaviour="hang",
                os_version="17.5",
                build="21F79",
            )
        )
        for udid in (A, B)
    }
    farm.start_coordinator()
    farm.start_ios_agent(name="mac-1")
    redis = farm.redis()

    def ready() -> list[livestate.DeviceStatus] | None:
        live = [d for d in livestate.live_devices(redis) if d.state == "ready"]
        return live if len(live) == 2 else None

    live = wait_for(farm, "both fake devices ready", ready, timeout=45)
    assert {(d.udid, d.product_type, d.simulated) for d in live} == {(A, A12, True), (B, A12, True)}

    job = submit(farm, model)

    def launched_on() -> str | None:
        return next((udid for udid, fake in fakes.items() if fake.launches()), None)

    first = wait_for(farm, "the runner launched on a device", launched_on)
    other = B if first == A else A
    assert [launch[2] for launch in fakes[first].launches()] == [f"{_run_of(farm, job)}-a1"]
    fakes[other].behaviour = "ok"  # the other device's runner finishes normally
    fake_mux.detach(first)  # unplugged while its runner is still running the batch

    report = farm.wait_job(job, timeout=45)
    [row] = report["rows"]
    assert row["status"] == "succeeded" and row["simulated"] is True, row
    assert row["verdict"] in {"FULL", "PARTIAL", "NONE"}
    run_id = uuid.UUID(row["run"])
    with farm.sessions()() as session:
        query = select(db.RunAttempt).where(db.RunAttempt.run_id == run_id)
        tries = list(session.execute(query.order_by(db.RunAttempt.attempt)).scalars())
    assert [(t.attempt, t.udid, t.outcome) for t in tries] == [
        (1, first, "infra_error"),
        (2, other, "ok"),
    ], farm.logs()
    # Retried because the device went away, not because the blocked runner timed out.
    assert tries[0].failure_kind == "device_gone", tries[0].failure_message
    assert "went away" in (tries[0].failure_message or "")
    assert count(farm, db.Measurement, run_id=run_id) == 4  # one result: each setting once
    assert count(farm, db.Verdict, run_id=run_id) == 1
    assert count(farm, db.RawResult, run_id=run_id) == 0  # nothing refused on the way
    # The unplugged device's worker is gone from the farm; the other one still beats (its
    # heartbeat used to hang once its pool child had run a batch on the shared event loop).
    wait_for(farm, "only the attached device to be live", lambda: _live(redis) == [other])
    assert fakes[other].launches()[0][2] == f"{run_id}-a2"
    assert not list(fakes[other].container)  # cleaned up after its run
    # What the unplugged device could not clean is still there, as on a real one.
    assert f"Documents/anefarm/inbox/{run_id}-a1/manifest.json" in fakes[first].container


def _run_of(farm: Farm, job: str) -> str:
    with farm.sessions()() as session:
        query = select(db.Run.id).where(db.Run.job_id == uuid.UUID(job))
        return str(session.execute(query).scalar_one())


def _live(redis: Redis) -> list[str]:
    return sorted(d.udid for d in livestate.live_devices(redis))
