"""What `anefarm report` of a sweep night costs: figures, not assertions.

A finished night of 200 models × 6 device classes (1,200 user runs, each with its four
compute-units measurements and a verdict naming an op off the ANE on half of them) is
written straight into a fresh SQLite database (no farm: the report only reads), then
``report_model`` — what every form of `anefarm report` builds — is timed, with the
number of SQL statements it sent. The JSON form's sha256 is printed, so a change to how
rows are read can show it says byte for byte the same.

Run: .venv/bin/python bench/report.py   (BENCH_MODELS=200, BENCH_REPEATS=5;
BENCH_DATABASE_URL for PostgreSQL instead of a SQLite file)
"""

from __future__ import annotations

import hashlib
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import event

from orchestrator.report import report_model
from orchestrator.store import models as db
from orchestrator.store.engine import make_engine, session_factory
from orchestrator.store.migrate import upgrade

CLASSES = ("iPhone11,8", "iPhone11,2", "iPad8,1", "iPhone13,2", "iPhone15,2", "iPhone16,1")
UNITS = ("all", "cpuAndNeuralEngine", "cpuAndGPU", "cpuOnly")
OFF_ANE = {"name": "conv_dilated", "type": "conv", "unit": "gpu", "source": "plan",
           "reason": "dilated (atrous) convolution (dilated-conv)", "fix": "stacked convolutions"}  # fmt: skip


def write_night(url: str, models: int) -> str:
    """One finished night's job with its runs, measurements and verdicts; its id."""
    upgrade(url)
    now = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)  # fixed: the JSON's digest compares runs
    sessions = session_factory(make_engine(url))
    with sessions.begin() as session:
        job = db.Job(
            id=uuid.UUID(int=1), created_at=now, selector="all", spec={}, status=db.JobStatus.DONE
        )
        session.add(job)
        session.flush()
        for m in range(models):
            sha = hashlib.sha256(f"bench-model-{m}".encode()).hexdigest()
            session.add(db.Model(sha256=sha, filename=f"model_{m:03d}.mlpackage",
                                 format="mlpackage", size_bytes=4096, created_at=now))  # fmt: skip
            session.flush()
            for c, device_class in enumerate(CLASSES):
                run = db.Run(id=uuid.UUID(int=1000 + m * len(CLASSES) + c), job_id=job.id, model_sha256=sha,
                             device_class=device_class, created_at=now,
                             status=db.RunStatus.SUCCEEDED, os_version="18.7",
                             os_build="22H315sim", udid=f"SIM-{device_class}-0",
                             simulated=True, series=f"model_{m:03d}")  # fmt: skip
                session.add(run)
                session.flush()  # no relationship orders these inserts: the run goes first
                for u, units in enumerate(UNITS):
                    p50 = 1.0 + m / 100 + c / 10 + u
                    session.add(db.Measurement(run_id=run.id, compute_units=units, p50=p50,
                                               p90=p50 * 1.1, p99=p50 * 1.2, mean=p50,
                                               std=0.01, min=p50 * 0.9, max=p50 * 1.3,
                                               count=50, cold_load_ms=12.5,
                                               warm_load_ms=4.0))  # fmt: skip
                partial = (m + c) % 2 == 1
                session.add(db.Verdict(run_id=run.id, model_sha256=sha,
                                       device_class=device_class, chip="A12",
                                       os_version="18.7", simulated=True,
                                       verdict="PARTIAL" if partial else "FULL",
                                       ane_share=0.67 if partial else 1.0,
                                       payload={"ops_off_ane": [OFF_ANE] if partial else [],
                                                "plan_available": True},
                                       created_at=now))  # fmt: skip
    return str(job.id)


def main() -> None:
    models = int(os.environ.get("BENCH_MODELS", "200"))
    repeats = int(os.environ.get("BENCH_REPEATS", "5"))
    with tempfile.TemporaryDirectory() as tmp:
        url = os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{tmp}/bench.db"
        started = time.perf_counter()
        job = write_night(url, models)
        print(f"wrote a night of {models * len(CLASSES)} runs in "
              f"{time.perf_counter() - started:.1f} s ({url.split(':')[0]})")  # fmt: skip
        engine = make_engine(url)
        statements = [0]
        event.listen(
            engine, "before_cursor_execute", lambda *a: statements.__setitem__(0, statements[0] + 1)
        )
        sessions = session_factory(engine)
        times, digest = [], ""
        for _ in range(repeats):
            statements[0] = 0
            with sessions() as session:  # a fresh session each time, as each command has
                started = time.perf_counter()
                report = report_model(session, job)
                times.append(time.perf_counter() - started)
            digest = hashlib.sha256(report.model_dump_json().encode()).hexdigest()[:16]
        print(f"report_model of {len(report.rows)} rows: median {statistics.median(times):.2f} s "
              f"(min {min(times):.2f}, max {max(times):.2f}, {repeats} runs), "
              f"{statements[0]} SQL statements; JSON sha256 {digest}")  # fmt: skip


if __name__ == "__main__":
    main()
