"""Sweeps at scale (issue 17 item 7): figures, not assertions.

A night of 200 models × 6 device classes on SIMULATED devices (one device per class):

1. planning: ``start_night`` — tonight's files hashed, new ones inspected and linted, the
   job, 1,200 runs and any missing records written in one transaction, the batches
   published — for the first night (200 new sha256s) and the next (every model known);
2. responsiveness: what `anefarm report JOB` costs while the night runs;
3. end to end: from the start of planning until the last run is done, in realtime
   simulation at ``BENCH_SPEED`` (default 20× a device's speed).

Run: .venv/bin/python bench/sweeps.py   (BENCH_MODELS=200, BENCH_SPEED=20; BENCH_DATABASE_URL
for PostgreSQL instead of a SQLite file; BENCH_PROFILE=1 prints where planning spends
its time.) The 200 models are small distinct neural networks built once into
``~/.cache/anefarm/bench-sweep-models/<count>`` (a millisecond each: no coremltools conversion).
"""

from __future__ import annotations

import cProfile
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from orchestrator.broker.embedded import EmbeddedRedis  # noqa: E402
from orchestrator.modelkit import quiet  # noqa: E402
from orchestrator.protocol import RunBatch  # noqa: E402
from orchestrator.protocol.transport import (  # noqa: E402
    CeleryPublisher,
    PipelinedPublisher,
    create_app,
)
from orchestrator.report import build_report, job_status  # noqa: E402
from orchestrator.store.engine import session_scope  # noqa: E402
from orchestrator.sweeps import store  # noqa: E402
from orchestrator.sweeps.nights import start_night  # noqa: E402
from tests.pipeline.farm import Farm  # noqa: E402

MODELS = int(os.environ.get("BENCH_MODELS", "200"))
SPEED = float(os.environ.get("BENCH_SPEED", "20"))
# One class per generation A12 … A17 Pro.
CLASSES = ["iPhone11,8", "iPhone12,1", "iPhone13,2", "iPhone14,5", "iPhone15,2", "iPhone16,1"]
CACHE = Path(os.environ.get("BENCH_CACHE", Path.home() / ".cache/anefarm/bench-sweep-models"))


def build_models(count: int, folder: Path) -> list[Path]:
    """``count`` distinct small networks (sizes and weights vary), built once."""
    folder.mkdir(parents=True, exist_ok=True)
    wanted = [folder / f"model{i:03d}.mlmodel" for i in range(count)]
    if all(p.exists() for p in wanted):
        return wanted
    import numpy as np
    from coremltools.models import datatypes
    from coremltools.models.neural_network import NeuralNetworkBuilder
    from coremltools.models.utils import save_spec

    for i, path in enumerate(wanted):
        rng = np.random.default_rng(i)
        width, hidden = 16 + 8 * (i % 8), 8 + 4 * (i % 5)
        builder = NeuralNetworkBuilder([("x", datatypes.Array(width))],
                                       [("y", datatypes.Array(hidden))])  # fmt: skip
        weights = rng.standard_normal((hidden, width)).astype(np.float32)
        builder.add_inner_product(name="fc", W=weights, b=None, input_channels=width,
                                  output_channels=hidden, has_bias=False, input_name="x",
                                  output_name="h")  # fmt: skip
        builder.add_activation(name="act", non_linearity="RELU" if i % 2 else "SIGMOID",
                               input_name="h", output_name="y")  # fmt: skip
        save_spec(builder.spec, str(path))
    return wanted


def sweep_file(work: Path, models: Path) -> Path:
    path = work / "bench-nightly.yaml"
    path.write_text(
        "name: bench-nightly\n"
        'schedule: "0 2 * * *"\n'
        "models:\n"
        f"  - path: {models}/*.mlmodel\n"
        f'devices: "{",".join(CLASSES)}"\n'
        "compute_units: [all, cpuAndNeuralEngine, cpuAndGPU, cpuOnly]\n"
        "iterations: 10\n"
        "warmup: 1\n"
        "bisect: never\n",
        encoding="utf-8",
    )
    return path


@dataclass
class TimedPublisher:
    """The publisher the scheduler uses (pipelined), with the time spent in it added up."""

    inner: PipelinedPublisher | CeleryPublisher
    seconds: float = 0.0

    def batch(self, batch: RunBatch, *, countdown: float | None = None,
              to_class: bool = False) -> None:  # fmt: skip
        start = time.perf_counter()
        self.inner.batch(batch, countdown=countdown, to_class=to_class)
        self.seconds += time.perf_counter() - start


def plan(farm: Farm, night: datetime, profile: bool, pipelined: bool) -> tuple[str, float, float]:
    """Start the night as the scheduler does; (job, seconds in all, seconds publishing)."""
    settings = farm.settings()
    app = create_app(settings)
    profiler = cProfile.Profile() if profile else None
    start = time.perf_counter()
    if profiler:
        profiler.enable()
    with ExitStack() as stack:
        inner = stack.enter_context(PipelinedPublisher(app)) if pipelined else CeleryPublisher(app)
        publisher = TimedPublisher(inner)
        job = start_night(settings=settings, sessions=farm.sessions(), app=app,
                          publisher=publisher, sweep_name="bench-nightly",
                          scheduled_for=night)  # fmt: skip
        flushing = time.perf_counter()
    publisher.seconds += time.perf_counter() - flushing  # the pipeline's last flush
    if profiler:
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
    return str(job), time.perf_counter() - start, publisher.seconds


def latency(farm: Farm, read: Callable[[Session], object], times: int = 5) -> float:
    """Median seconds of a read of the running night (`anefarm report`, a progress poll)."""
    took = []
    for _ in range(times):
        start = time.perf_counter()
        with farm.sessions()() as session:
            read(session)
        took.append(time.perf_counter() - start)
        time.sleep(0.3)
    return statistics.median(took)


def wait_done(farm: Farm, job: str, timeout: float) -> tuple[float, dict[str, int]]:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        with farm.sessions()() as session:
            status = job_status(session, job)
        if status["done"]:
            return time.perf_counter() - start, status["by_status"]
        time.sleep(0.5)
    raise SystemExit(f"night {job} not done after {timeout:.0f} s:\n{farm.logs()}")


def main() -> None:
    profile = os.environ.get("BENCH_PROFILE") == "1"
    started = time.perf_counter()
    folder = CACHE / str(MODELS)
    models = build_models(MODELS, folder)
    print(f"{len(models)} models in {folder} ({time.perf_counter() - started:.1f} s, cached)")
    # coremltools is imported once per coordinator process (its first night pays ~1-3 s
    # for it); measured apart so the figures below are the night's own.
    started = time.perf_counter()
    with quiet.silenced():
        import coremltools  # noqa: F401
    print(f"importing coremltools (once per process): {time.perf_counter() - started:.1f} s")
    work = Path(tempfile.mkdtemp(prefix="anefarm-bench-sweeps-"))
    with EmbeddedRedis(work) as redis_server:
        farm = Farm.at(work, redis_server.url)
        farm.database_url = os.environ.get("BENCH_DATABASE_URL", farm.database_url)
        database = "PostgreSQL" if farm.database_url.startswith("postgresql") else "SQLite"
        try:
            with session_scope(farm.sessions()) as session:
                store.add_file(session, sweep_file(work, folder))
            farm.start_coordinator()
            farm.start_agent(",".join(f"{c}=1" for c in CLASSES), time_mode="realtime",
                             speed=SPEED, wait_for=len(CLASSES))  # fmt: skip
            first = datetime(2026, 11, 27, 2, tzinfo=UTC)
            nights = [(f"first night ({MODELS} new models)", True),
                      ("next night (models known)", True),
                      ("next night, one round trip per batch (before pipelining)", False)]  # fmt: skip
            for day, (label, pipelined) in enumerate(nights):
                night = first + timedelta(days=day)
                job, planned, publishing = plan(farm, night, profile, pipelined)
                with farm.sessions()() as session:
                    runs = job_status(session, job)["runs"]
                poll = latency(farm, partial(job_status, job_ref=job))
                report = latency(farm, partial(build_report, job_ref=job))
                done, counts = wait_done(farm, job, timeout=3600)
                print(f"{label}: {runs} runs planned, written and published in {planned:.2f} s"
                      f" (publishing {publishing:.2f} s); while it runs a progress poll takes"
                      f" {poll * 1000:.0f} ms, `report` {report * 1000:.0f} ms; done"
                      f" {planned + done:.1f} s after the start ({counts})")  # fmt: skip
            print(f"({len(CLASSES)} SIMULATED devices, one per class, realtime ×{SPEED:g};"
                  f" {database}; load average {os.getloadavg()[0]:.1f} on"
                  f" {os.cpu_count()} CPUs)")  # fmt: skip
        finally:
            farm.stop()


if __name__ == "__main__":
    main()
