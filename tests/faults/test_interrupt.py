"""Ctrl-C half-way through `anefarm profile`: the job is cancelled (no run left queued for
a farm that is gone), its id is printed, the exit status is 130, and nothing is left
running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from orchestrator.ingest import FINAL
from orchestrator.store import models as db
from orchestrator.store.engine import make_engine, session_factory

# `anefarm profile` starts its own Redis and Celery workers: no fixture can say so.
pytestmark = [pytest.mark.redis, pytest.mark.celery, pytest.mark.slow]


def test_ctrl_c_in_profile_cancels_its_job_and_exits_130(
    tmp_path: Path, samples: dict[str, Path]
) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "ANEFARM_HOME": str(home)}
    env.pop("ANEFARM_BROKER_URL", None)
    env.pop("ANEFARM_DATABASE_URL", None)
    models = [str(samples[name]) for name in ("conv10x10.mlpackage", "maxpool15.mlpackage",
              "upsample4x.mlpackage", "lstm.mlpackage")]  # fmt: skip
    # A terminal's Ctrl-C goes to the whole foreground process group: so does this one.
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "orchestrator",
            "profile",
            *models,
            "--simulate",
            "iPhone11,8=1",
            "--iterations",
            "400",
            "--no-bisect",
            "--time-mode",  # each batch takes seconds: the job is surely mid-way at the Ctrl-C
            "realtime",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stderr is not None
    job = None
    deadline = time.monotonic() + 120
    seen: list[str] = []
    while job is None:
        line = proc.stderr.readline()
        assert line or proc.poll() is None, "".join(seen)
        assert time.monotonic() < deadline, "".join(seen)
        seen.append(line)
        if line.startswith("job ") and "run(s) on" in line:
            job = line.split()[1].rstrip(":")
    time.sleep(1.0)  # the first batch is running
    os.killpg(proc.pid, signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    err = "".join(seen) + err
    assert proc.returncode == 130, err
    assert f"job {job}: cancelled" in err, err
    assert "Traceback" not in err, err
    engine = make_engine(f"sqlite:///{home / 'anefarm.db'}")
    try:
        with session_factory(engine)() as session:
            record = session.get(db.Job, uuid.UUID(job))
            assert record is not None and record.status == db.JobStatus.CANCELLED
            runs = session.query(db.Run).filter_by(job_id=record.id).all()
            assert runs and all(run.status in FINAL for run in runs), [r.status for r in runs]
    finally:
        engine.dispose()
    # Nothing of the farm outlives the command: its group empties. Spawned pool children
    # and billiard's semaphore tracker need a moment after the command itself has ended.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    left = subprocess.run(["ps", "-o", "pid,stat,args", "-g", str(proc.pid)],
                          capture_output=True, text=True).stdout  # fmt: skip
    pytest.fail(f"processes of the interrupted command are still running:\n{left}")
