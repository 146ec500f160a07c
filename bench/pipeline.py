"""Pipeline benchmarks (figures, not assertions). Run: .venv/bin/python bench/pipeline.py

1. Throughput: runs completed per second through the whole pipeline (submit → device
   worker → results → ingest → verdict) on zero-latency SIMULATED devices, next to a raw
   Celery two-hop chain (task → result task) of no-op tasks on the same Redis.
2. Utilisation: ≥ 200 batches over 6 SIMULATED devices of 3 classes in realtime mode;
   makespan ÷ lower bound (busiest class: total device time ÷ its device count).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from sqlalchemy import select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from orchestrator.broker.embedded import EmbeddedRedis  # noqa: E402
from orchestrator.dispatch import SubmitOptions, prepare, submit  # noqa: E402
from orchestrator.protocol.transport import create_app  # noqa: E402
from orchestrator.settings import load_settings  # noqa: E402
from orchestrator.store import models as db  # noqa: E402
from tests.pipeline.farm import Farm  # noqa: E402

SPEED = float(os.environ.get("BENCH_SPEED", "2"))

TWO_HOP = """
import os, sys, redis
from orchestrator.protocol.transport import create_app, run_worker
from orchestrator.settings import load_settings
app = create_app(load_settings(broker_url=os.environ["B"]))
r = redis.Redis.from_url(os.environ["B"])
@app.task(name="hop1")
def hop1(i):
    app.send_task("hop2", args=[i], queue="hop2")
@app.task(name="hop2")
def hop2(i):
    r.incr("done")
run_worker(app, [sys.argv[1]], hostname=sys.argv[1] + "@bench")
"""


def two_hop(url: str, count: int) -> float:
    import redis

    client = redis.Redis.from_url(url)
    client.delete("done")
    env = {**os.environ, "B": url}
    workers = [
        subprocess.Popen([sys.executable, "-c", TWO_HOP, q], env=env) for q in ("hop1", "hop2")
    ]
    time.sleep(3)
    app = create_app(load_settings(broker_url=url))
    start = time.perf_counter()
    for i in range(count):
        app.send_task("hop1", args=[i], queue="hop1")
    while int(client.get("done") or 0) < count:
        time.sleep(0.01)
    elapsed = time.perf_counter() - start
    for worker in workers:
        worker.terminate()
        worker.wait()
    return count / elapsed


def run_job(farm: Farm, models: list[Path], selector: str, timeout: float) -> tuple[str, float]:
    settings = farm.settings()
    options = SubmitOptions(selector=selector, iterations=10, warmup=1)
    prepared = prepare(models, options, None)
    start = time.perf_counter()
    outcome = submit(
        prepared, settings=settings, sessions=farm.sessions(), app=create_app(settings)
    )
    farm.wait_job(str(outcome.job_id), timeout=timeout)
    return str(outcome.job_id), time.perf_counter() - start


def main() -> None:
    from orchestrator import modelkit

    work = Path(tempfile.mkdtemp(prefix="anefarm-bench-"))
    samples = {p.name: p for p in modelkit.write_samples(work / "samples", small=True)}
    model = samples["conv10x10.mlpackage"]
    with EmbeddedRedis(work) as redis_server:
        raw = two_hop(redis_server.url, 2000)
        print(f"raw Celery two-hop chain: {raw:.0f} chains/s")

        home = work / "t"
        home.mkdir()
        farm = Farm(
            home=home, broker_url=redis_server.url, database_url=f"sqlite:///{home / 'a.db'}"
        )
        try:
            farm.start_coordinator()
            farm.start_agent("iPhone11,8=2,iPhone13,2=2", wait_for=4)
            runs = 200
            _, elapsed = run_job(farm, [model] * (runs // 2), "iPhone11,8,iPhone13,2", 600)
            print(
                f"pipeline: {runs} runs in {elapsed:.1f} s = {runs / elapsed:.1f} runs/s "
                f"(4 zero-latency SIMULATED devices, SQLite); ratio to raw two-hop: {runs / elapsed / raw:.3f}"
            )
        finally:
            farm.stop()

        home = work / "u"
        home.mkdir()
        redis_server_url = redis_server.url
        import redis as redis_lib

        redis_lib.Redis.from_url(redis_server_url).flushall()
        farm = Farm(
            home=home, broker_url=redis_server_url, database_url=f"sqlite:///{home / 'a.db'}"
        )
        try:
            farm.start_coordinator()
            farm.start_agent(
                "iPhone11,8=2,iPhone13,2=2,iPhone16,1=2",
                time_mode="realtime",
                speed=SPEED,
                wait_for=6,
            )
            mix = [
                samples[n]
                for n in (
                    "conv10x10.mlpackage",
                    "mobilenetv2_block.mlpackage",
                    "upsample4x.mlpackage",
                    "maxpool15.mlpackage",
                )
            ] * 17
            job, makespan = run_job(farm, mix, "iPhone11,8,iPhone13,2,iPhone16,1", 1800)
            busy: dict[str, float] = defaultdict(float)
            with farm.sessions()() as session:
                rows = session.execute(
                    select(db.Run.device_class, db.RunAttempt.started_at, db.RunAttempt.finished_at)
                    .join(db.RunAttempt, db.RunAttempt.run_id == db.Run.id)
                    .where(db.Run.job_id == __import__("uuid").UUID(job))
                ).all()
            for device_class, started, finished in rows:
                busy[device_class] += (finished - started).total_seconds()
            bound = max(total / 2 for total in busy.values())
            print(
                f"utilisation: {len(rows)} batches on 6 devices of 3 classes (realtime ×{SPEED:g}): makespan {makespan:.1f} s, "
                f"lower bound {bound:.1f} s, ratio {makespan / bound:.2f} (target ≤ 1.10)"
            )
        finally:
            farm.stop()


if __name__ == "__main__":
    main()
