"""Nights that ended while no coordinator analysed them (a crash between the commit and
the analysis, a night with no run) are analysed when a coordinator starts."""

from __future__ import annotations

import time

import pytest

from orchestrator.store import models as db
from tests.alerts.nightfarm import Point, make_sweep
from tests.pipeline.farm import Farm
from tests.services.common import provides

pytestmark = [pytest.mark.slow]


@provides("celery")
def test_a_starting_coordinator_analyses_the_nights_left_behind(tmp_path, redis_url):
    farm = Farm.at(tmp_path, redis_url)
    sweep = make_sweep(farm.sessions(), tmp_path)
    for _ in range(3):
        sweep.add_night(lambda s, c: Point())  # final, never analysed
    try:
        farm.start_coordinator()
        deadline = time.monotonic() + 60
        with farm.sessions()() as session:
            while time.monotonic() < deadline:
                states = [session.get(db.NightAnalysis, job) for job in sweep.nights]
                if all(s is not None for s in states):
                    break
                session.expire_all()
                farm._check()
                time.sleep(0.3)
            assert [s.state if s else None for s in states] == ["analysed"] * 3, farm.logs()
    finally:
        farm.kill()  # nothing is asserted after: no warm shutdown to wait for
