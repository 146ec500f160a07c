"""Fixtures of the page tests: a finished simulated job (``simjob.SimulatedJob``) in a
SQLite database, and a TestClient on the app with reads open (loopback,
ANEFARM_OPEN_READS=1) over the same database."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from orchestrator.web.app import create_app
from tests.web.pages.simjob import SimulatedJob

MODELS = ("conv10x10.mlpackage", "conv_sandwich_dilated.mlpackage", "lstm.mlpackage")


def pick_models(samples: dict[str, Path], out: Path, names: tuple[str, ...] = MODELS) -> list[Path]:
    """Copies of some sample models (the session's samples are shared and must not change)."""
    out.mkdir(parents=True, exist_ok=True)
    picked = []
    for name in names:
        target = out / name
        if samples[name].is_dir():
            shutil.copytree(samples[name], target)
        else:
            shutil.copy2(samples[name], target)
        picked.append(target)
    return picked


@pytest.fixture
def sim(tmp_path: Path, redis_url: str) -> Iterator[SimulatedJob]:
    job = SimulatedJob.start(tmp_path / "home", redis_url)
    yield job
    job.close()


@pytest.fixture(scope="module")
def finished(
    tmp_path_factory: pytest.TempPathFactory, redis_server: str, samples: dict[str, Path]
) -> Iterator[SimulatedJob]:
    """One finished job for a whole test module (a job costs ~15 s): nothing here changes
    it but the tests that say so, on their own copies."""
    tmp = tmp_path_factory.mktemp("finished")
    job = SimulatedJob.start(tmp / "home", f"{redis_server}/0")
    job.submit(pick_models(samples, tmp / "models"))
    job.finish_all()
    yield job
    job.close()


def client_for(sim: SimulatedJob) -> TestClient:
    settings = sim.settings.model_copy(update={"open_reads": True})
    return TestClient(create_app(settings, sessions=sim.sessions, bound_host="127.0.0.1"))


@pytest.fixture
def client(finished: SimulatedJob) -> Iterator[TestClient]:
    with client_for(finished) as c:
        yield c
