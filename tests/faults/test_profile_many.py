"""Issue #12's acceptance run: 16 models over a farm with two devices of one class and two
other classes, two of the three without a compute plan (iOS 16), so bisection sends many
probe batches, all pinned to devices and sharing probe models between classes — the
shape that used to leave runs queued for ever. It must end with every run terminal."""

from __future__ import annotations

import json
import os
import shutil
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
FARM = "iPhone11,8@16.7.8=2,iPhone13,2@16.7.8=1,iPhone16,1=1"


def test_sixteen_models_on_a_mixed_farm_every_run_ends(
    tmp_path: Path, samples: dict[str, Path]
) -> None:
    models = sorted(str(p) for p in samples.values() if p.suffix in {".mlpackage", ".mlmodel"})
    # The sixteenth: the same bytes under another name (one artifact, two file names).
    twin = tmp_path / "conv10x10_twin.mlpackage"
    shutil.copytree(samples["conv10x10.mlpackage"], twin)
    models.append(str(twin))
    assert len(models) == 16
    home = tmp_path / "home"
    env = {**os.environ, "ANEFARM_HOME": str(home)}
    env.pop("ANEFARM_BROKER_URL", None)
    env.pop("ANEFARM_DATABASE_URL", None)
    started = time.monotonic()
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "orchestrator",
            "profile",
            *models,
            "--simulate",
            FARM,
            "--iterations",
            "10",
            "--warmup",
            "1",
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    elapsed = time.monotonic() - started
    assert out.returncode == 0, out.stderr[-4000:]
    report = json.loads(out.stdout)
    assert len(report["rows"]) == 16 * 3
    assert all(row["status"] == "succeeded" for row in report["rows"])
    engine = make_engine(f"sqlite:///{home / 'anefarm.db'}")
    try:
        with session_factory(engine)() as session:
            runs = session.query(db.Run).filter_by(job_id=uuid.UUID(report["job"])).all()
            unfinished = [(r.purpose, r.status) for r in runs if r.status not in FINAL]
            probes = sum(1 for r in runs if r.purpose == "probe")
    finally:
        engine.dispose()
    assert not unfinished, unfinished
    assert probes >= 10, f"only {probes} probe runs: bisection did not run"
    print(f"FIGURE profile 16 models x 3 classes: {len(runs)} runs ({probes} probes) "
          f"in {elapsed:.1f} s")  # fmt: skip
