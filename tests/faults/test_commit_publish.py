"""A process killed between a database commit and the publish that follows it.

- ``anefarm submit`` dies right after the job's transaction: the runs are queued in the
  database and no message exists; the coordinator's sweep publishes them.
- The coordinator dies right after ingesting an infra failure, before publishing its
  retry: the restarted pool child gets the result again (a duplicate), so nothing
  publishes the retry — but the sweep does.

Both through the fail points of orchestrator/failpoints.py (a SIGKILL exactly there).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from orchestrator.failpoints import INGEST_AFTER_COMMIT, KILLED, SUBMIT_AFTER_COMMIT
from orchestrator.report import job_status
from tests.faults.invariants import assert_exactly_once
from tests.pipeline.farm import Farm

XR = "iPhone11,8"


def _job_of(farm: Farm) -> str:
    from orchestrator.store import models as db

    with farm.sessions()() as session:
        [job] = session.query(db.Job).all()
        return str(job.id)


# Farm.at starts the agent's Celery workers in the test body
@pytest.mark.celery
def test_submit_killed_after_commit_its_runs_are_published_by_the_sweep(
    tmp_path: Path, redis_url: str, samples: dict[str, Path]
) -> None:
    farm = Farm.at(tmp_path, redis_url)
    try:
        farm.start_coordinator()
        farm.start_agent(f"{XR}=2", wait_for=2)
        farm.extra_env["ANEFARM_FAILPOINTS"] = SUBMIT_AFTER_COMMIT
        models = [str(samples["conv10x10.mlpackage"]), str(samples["maxpool15.mlpackage"])]
        out = farm.cli("submit", *models, "--devices", XR, "--no-bisect", check=False)
        assert out.returncode == KILLED, out.stderr
        del farm.extra_env["ANEFARM_FAILPOINTS"]
        job = _job_of(farm)
        with farm.sessions()() as session:
            assert job_status(session, job)["by_status"] == {"queued": 2}
        started = time.monotonic()
        farm.wait_job(job, timeout=90)
        print(f"FIGURE submit killed after commit: job done {time.monotonic() - started:.1f} s"
              " later (sweep grace 10 s)")  # fmt: skip
        summary = assert_exactly_once(farm, job)
        assert [r["status"] for r in summary] == ["succeeded", "succeeded"]
        assert "published again" in (farm.home / "coordinator.log").read_text()
    finally:
        farm.kill()  # a teardown: no warm shutdown to wait for


# Farm.at starts the agent's Celery workers in the test body
@pytest.mark.celery
def test_coordinator_killed_before_publishing_a_retry_the_sweep_publishes_it(
    tmp_path: Path, redis_url: str, samples: dict[str, Path]
) -> None:
    farm = Farm.at(tmp_path, redis_url)
    # Fires once across processes: the restarted pool child must not die again.
    farm.extra_env["ANEFARM_FAILPOINTS"] = f"{INGEST_AFTER_COMMIT}@{tmp_path / 'fired'}"
    try:
        farm.start_coordinator()
        # The runner crashes on its first batch: the first result ingested is an infra
        # failure, whose retry the killed coordinator never publishes.
        farm.start_agent(f"{XR}=1!crash@1", wait_for=1)
        out = farm.cli("submit", str(samples["conv10x10.mlpackage"]), "--devices", XR,
                       "--no-bisect")  # fmt: skip
        job = out.stdout.strip()
        started = time.monotonic()
        report = farm.wait_job(job, timeout=120)
        elapsed = time.monotonic() - started
        assert (tmp_path / "fired").exists(), "the fail point never fired"
        summary = assert_exactly_once(farm, job)
        [run] = summary
        assert run["status"] == "succeeded", (run, farm.logs())
        assert [a[1] for a in run["attempts"]] == ["infra_error", "ok"], run
        print(f"FIGURE coordinator killed between commit and publish: job done in {elapsed:.1f} s")
        assert report["rows"][0]["verdict"] is not None
    finally:
        farm.kill()  # a teardown: no warm shutdown to wait for
