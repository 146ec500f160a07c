"""Packed probes through `anefarm agent --ios` (issue 21 item 1), end to end: a bisected
job's probe runs reach a fake iPhone in fewer runner launches than runs, from a pool child
that Celery *spawns* (as on a Mac), and every probe run ends with its own result.

Real Redis, coordinator and Celery worker through the CLI; only the device boundary is
fake (tests/ios/fake_shared.py: the worker plays the developer-service fakes over state
this test shares).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from orchestrator.protocol import livestate
from orchestrator.store import models as db
from tests.ios.conftest import runner_app
from tests.ios.fake_shared import DIR_ENV, SharedFakeIPhone
from tests.ios.fake_usbmuxd import FakeUsbmuxd
from tests.ios.test_agent_ios_e2e import A, farm, wait_for
from tests.pipeline.farm import Farm
from tests.pipeline.test_pipeline import submit

pytestmark = [pytest.mark.redis, pytest.mark.celery, pytest.mark.slow]


__all__ = ["farm"]  # the fixture, used by name


# As on a Mac: the pool child that runs the packed batch is spawned.
@pytest.mark.parametrize("farm", ["spawn"], indirect=True)
def test_a_bisected_jobs_probes_share_runner_launches_on_an_iphone(
    farm: Farm, fake_mux: FakeUsbmuxd, samples: dict[str, Path]
) -> None:
    root = Path(farm.extra_env[DIR_ENV])
    fake = fake_mux.attach(SharedFakeIPhone(A, root=root, apps=runner_app()))
    farm.start_coordinator()
    farm.start_ios_agent(name="mac-1")
    redis = farm.redis()
    wait_for(farm, "the fake device ready",
             lambda: [d for d in livestate.live_devices(redis) if d.state == "ready"], timeout=45)  # fmt: skip
    job = submit(farm, samples["conv_sandwich_dilated.mlpackage"], extra=("--bisect",))

    def bisected() -> list[db.Run] | None:
        with farm.sessions()() as session:
            runs = list(session.scalars(select(db.Run).where(db.Run.job_id == uuid.UUID(job))))
            user = [r for r in runs if r.purpose == "user"]
            probes = [r for r in runs if r.purpose == "probe"]
            done = user and user[0].bisect_state == "done"
            ended = all(r.status in {"succeeded", "failed"} for r in probes)
            return probes if done and probes and ended else None

    probes = wait_for(farm, "the bisection to finish", bisected, timeout=120)
    assert all(r.status == "succeeded" for r in probes), [(r.id, r.status) for r in probes]
    launches = [launch[2] for launch in fake.launches()]
    # The user run is one launch; its probes went in fewer launches than there are probes.
    assert 1 < len(launches) < 1 + len(probes), (launches, len(probes))
    with farm.sessions()() as session:
        attempts = list(session.scalars(select(db.RunAttempt).where(
            db.RunAttempt.run_id.in_([r.id for r in probes]))))  # fmt: skip
    # Each probe run ended with one attempt of its own, measured on the fake iPhone.
    assert sorted(a.run_id for a in attempts) == sorted(r.id for r in probes)
    assert {a.udid for a in attempts} == {A} and {a.outcome for a in attempts} == {"ok"}
    assert not list(fake.container)  # every launch's inbox and outbox cleaned up
