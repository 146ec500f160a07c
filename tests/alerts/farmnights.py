"""Sweep nights on a SIMULATED farm through the real pipeline (Redis, a coordinator, Celery
workers), for the alerts' pipeline tests: start a night in this process as `sweep run --at`
would, and wait until the coordinator has analysed it. The farm itself is
``tests.pipeline.farm``'s fixture; nights written straight into a database are
``nightfarm``'s."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from orchestrator.store import models as db
from tests.pipeline.farm import Farm


def start_agent(farm: Farm, folder: Path, farm_yaml: str, *, devices: int) -> None:
    """The farm file (devices, noise, timeline) and one agent simulating it."""
    path = folder / "farm.yaml"
    path.write_text(farm_yaml, encoding="utf-8")
    farm.start_agent(str(path), wait_for=devices)


def start_night(farm: Farm, sweep: str, when: datetime) -> uuid.UUID:
    """What `sweep run --at` calls, in this process: the same job, runs, batches, workers,
    ingest and analysis, without starting a Python per night."""
    from orchestrator.protocol.transport import create_app
    from orchestrator.sweeps.nights import start_night as start

    settings = farm.settings()
    return start(settings=settings, sessions=farm.sessions(), app=create_app(settings),
                 sweep_name=sweep, scheduled_for=when.astimezone(UTC))  # fmt: skip


def analysed(farm: Farm, job: uuid.UUID, timeout: float = 120) -> db.NightAnalysis:
    """The night's analysis once the coordinator is done with it (analysed or error)."""
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
