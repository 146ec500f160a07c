"""An UNKNOWN latency through the real pipeline: the coordinator's analysis queues one
confirmation run that night on the class's other device, the job reopens, and the night
is analysed once that run is in — with its samples, and nothing alerted for a shift the
confirmation does not make clear."""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from orchestrator.store import models as db
from tests.pipeline.farm import Farm
from tests.services.common import provides

pytestmark = [pytest.mark.slow]

CLASS = "iPhone15,2"
# No run-to-run noise: the gate is then exactly the 5 % threshold, and a 4 % slowdown
# lands between SAME (under 0.6 × gate) and a change, where the raw samples differ.
FARM = f"""\
seed: 3
devices:
  - {{product_type: "{CLASS}", os: "17.4", count: 2}}
noise: {{seed: 5, run_to_run_sigma: 0.0}}
timeline:
  - {{from: 2026-04-07, slow: {{class: "{CLASS}", factor: 1.04}}}}
"""


@pytest.fixture
@provides("celery")
def farm(tmp_path: Path, redis_url: str) -> Iterator[Farm]:
    farm = Farm.at(tmp_path, redis_url)
    (tmp_path / "farm.yaml").write_text(FARM, encoding="utf-8")
    farm.start_coordinator()
    farm.start_agent(str(tmp_path / "farm.yaml"), wait_for=2)
    yield farm
    farm.stop()


def start(farm: Farm, day: int) -> uuid.UUID:
    from orchestrator.protocol.transport import create_app
    from orchestrator.sweeps.nights import start_night

    settings = farm.settings()
    return start_night(settings=settings, sessions=farm.sessions(), app=create_app(settings),
                       sweep_name="one", scheduled_for=datetime(2026, 4, day, 2, tzinfo=UTC))  # fmt: skip


def analysed(farm: Farm, job: uuid.UUID, timeout: float = 90) -> db.NightAnalysis:
    deadline = time.monotonic() + timeout
    with farm.sessions()() as session:
        while time.monotonic() < deadline:
            state = session.get(db.NightAnalysis, job)
            if state is not None and state.state in ("analysed", "error"):
                session.expunge(state)
                return state
            session.expire_all()
            farm._check()
            time.sleep(0.2)
    raise AssertionError(f"night {job} not analysed\n{farm.logs()}")


# Known to fail now and then; it still runs and reports XPASS/XFAIL until fixed.
@pytest.mark.xfail(
    strict=False,
    reason="issue 18 (open): the 4 % SIMULATED slowdown sometimes measures under the UNKNOWN band (3 %), and no confirmation is asked (seen once in a fresh-clone run)",
)
def test_an_unknown_night_is_confirmed_on_the_other_device_before_anything_is_alerted(
    farm, samples, tmp_path
):
    (tmp_path / "sweep" / "models").mkdir(parents=True)
    shutil.copytree(samples["conv10x10.mlpackage"], tmp_path / "sweep/models/conv10x10.mlpackage")
    (tmp_path / "sweep" / "one.yaml").write_text(
        f'name: one\nschedule: "0 2 * * *"\nmodels:\n  - path: models/*.mlpackage\n'
        f'devices: "{CLASS}"\ncompute_units: [all]\niterations: 40\nwarmup: 1\nbisect: never\n',
        encoding="utf-8",
    )
    farm.cli("sweep", "add", str(tmp_path / "sweep" / "one.yaml"))
    for day in range(1, 7):
        state = analysed(farm, start(farm, day))
        assert state.state == "analysed" and state.confirmations == 0, state.error
    job = start(farm, 7)
    state = analysed(farm, job)
    assert state.state == "analysed", state.error
    with farm.sessions()() as session:
        runs = session.scalars(select(db.Run).where(db.Run.job_id == job)).all()
        latency = session.scalars(select(db.CheckResult).where(
            db.CheckResult.job_id == job, db.CheckResult.check == "latency")).one()  # fmt: skip
        alerts = session.scalars(select(db.AlertSummary)).all()
    assert state.confirmations == 1
    (nightly,) = [r for r in runs if r.parent_run_id is None]
    (confirmation,) = [r for r in runs if r.parent_run_id is not None]
    assert confirmation.parent_run_id == nightly.id and confirmation.status == "succeeded"
    assert confirmation.udid != nightly.udid  # the class's other device
    assert latency.detail["confirmed"] is True
    # Still not clearly a change after the confirmation: a check result, no alert.
    assert latency.status in ("UNKNOWN", "SAME") and alerts == []
