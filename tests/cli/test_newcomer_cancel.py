"""`anefarm cancel` of a job that had finished said "0 unfinished run(s) cancelled" and
turned it from done into cancelled, so its report exited 4 afterwards. A finished job is
left as it is; an unfinished one is still cancelled."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

from bench.report import write_night
from orchestrator.store import models as db
from orchestrator.store.engine import make_engine, session_factory
from tests.cli.conftest import anefarm


def test_a_finished_job_is_left_done(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    url = f"sqlite:///{home / 'anefarm.db'}"
    job = write_night(url, 1)
    out = anefarm("cancel", job, home=home)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"job {job}: already done, nothing to cancel"
    with session_factory(make_engine(url))() as session:
        assert str(session.get_one(db.Job, UUID(job)).status) == "done"
    assert anefarm("report", job, "--json", home=home).returncode == 0


def test_an_unfinished_job_is_still_cancelled(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    url = f"sqlite:///{home / 'anefarm.db'}"
    job = write_night(url, 1)
    sessions = session_factory(make_engine(url))
    with sessions.begin() as session:
        session.get_one(db.Job, UUID(job)).status = db.JobStatus.RUNNING
        run = session.query(db.Run).first()
        assert run is not None
        run.status = db.RunStatus.QUEUED
    out = anefarm("cancel", job, home=home)
    assert out.returncode == 0, out.stderr
    assert "1 unfinished run(s) cancelled" in out.stdout
    with sessions() as session:
        assert str(session.get_one(db.Job, UUID(job)).status) == "cancelled"
