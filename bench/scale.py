"""Scale run (issue 20; figures, not assertions). Run: .venv/bin/python bench/scale.py

PostgreSQL (a throwaway cluster), one coordinator, SCALE_AGENTS agent processes sharing
SCALE_DEVICES SIMULATED devices of 8 classes, SCALE_RUNS runs in realtime mode at a speed
where a batch lasts about a second. Prints: makespan ÷ lower bound (the busiest class's
device time ÷ its devices), coordinator CPU seconds per run (parent + ingest child, from
/proc), peak memory (VmHWM) of the coordinator and of one device worker (parent + pool
child), and database growth per 1,000 runs. Environment: SCALE_DEVICES (48), SCALE_AGENTS
(4), SCALE_RUNS (2000), SCALE_SPEED (1.6), SCALE_TIME_MODE (realtime | instant).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import select, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from orchestrator.broker.embedded import EmbeddedRedis  # noqa: E402
from orchestrator.dispatch import SubmitOptions, prepare, submit  # noqa: E402
from orchestrator.protocol.transport import create_app  # noqa: E402
from orchestrator.store import models as db  # noqa: E402
from tests.pipeline.farm import Farm  # noqa: E402
from tests.services.common import free_port  # noqa: E402
from tests.services.databases import _pg_bin  # noqa: E402

CLASSES = ["iPhone11,8", "iPhone12,1", "iPhone13,2", "iPhone14,5",
           "iPhone15,2", "iPhone16,1", "iPhone17,3", "iPhone17,1"]  # fmt: skip
DEVICES = int(os.environ.get("SCALE_DEVICES", "48"))
AGENTS = int(os.environ.get("SCALE_AGENTS", "4"))
RUNS = int(os.environ.get("SCALE_RUNS", "2000"))
SPEED = float(os.environ.get("SCALE_SPEED", "1.6"))
TIME_MODE = os.environ.get("SCALE_TIME_MODE", "realtime")
TICK = os.sysconf("SC_CLK_TCK")


@contextmanager
def postgres(work: Path) -> Iterator[str]:
    """A throwaway cluster (as tests/services/databases.py starts one, as ``postgres``)."""
    initdb, binary = _pg_bin("initdb"), _pg_bin("postgres")
    assert initdb and binary, "PostgreSQL binaries not found"
    run_as: dict[str, Any] = {}
    base = Path(tempfile.mkdtemp(prefix="anefarm-scale-pg-"))
    if os.getuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(base, user.pw_uid, user.pw_gid)
        run_as = {"user": "postgres", "group": "postgres", "extra_groups": []}
    subprocess.run([initdb, "-D", str(base / "data"), "-A", "trust", "-U", "postgres",
                    "--no-sync"], check=True, capture_output=True, **run_as)  # fmt: skip
    port = free_port()
    proc = subprocess.Popen([binary, "-D", str(base / "data"), "-p", str(port), "-k", str(base),
                             "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=300"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **run_as)  # fmt: skip
    import psycopg

    for _ in range(300):
        try:
            psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres").close()
            break
        except psycopg.OperationalError:
            time.sleep(0.1)
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        proc.send_signal(2)
        proc.wait(timeout=60)
        shutil.rmtree(base, ignore_errors=True)


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants (from /proc)."""
    children: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children[ppid].append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(children.get(current, []))
    return out


def cpu_s(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / TICK  # utime + stime
    return total


def peak_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def database_bytes(farm: Farm) -> int:
    with farm.sessions()() as session:
        return int(
            session.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
        )


def device_worker(agent_pid: int) -> list[int]:
    """One device worker of an agent: its ``agents.worker`` process and pool child."""
    for pid in tree(agent_pid):
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "agents.worker" in args:
            return tree(pid)
    return []


def main() -> None:
    from orchestrator import modelkit

    work = Path(tempfile.mkdtemp(prefix="anefarm-scale-"))
    model = next(p for p in modelkit.write_samples(work / "samples", small=True)
                 if p.name == "conv10x10.mlpackage")  # fmt: skip
    per_class = DEVICES // len(CLASSES)
    per_agent = len(CLASSES) // AGENTS
    with EmbeddedRedis(work) as redis_server, postgres(work) as database_url:
        home = work / "home"
        home.mkdir()
        farm = Farm(home=home, broker_url=redis_server.url, database_url=database_url)
        try:
            farm.start_coordinator()
            started = time.perf_counter()
            for index in range(AGENTS):
                mine = CLASSES[index * per_agent : (index + 1) * per_agent]
                farm.start_agent(",".join(f"{c}={per_class}" for c in mine),
                                 name=f"agent-{index + 1}", time_mode=TIME_MODE, speed=SPEED)  # fmt: skip
            farm.wait_devices(per_class * len(CLASSES), timeout=900)
            print(f"{per_class * len(CLASSES)} devices of {len(CLASSES)} classes over {AGENTS} "
                  f"agents up in {time.perf_counter() - started:.0f} s")  # fmt: skip
            settings = farm.settings()
            before_db = database_bytes(farm)
            coordinator = tree(farm.procs["coordinator"].pid)
            cpu_before = cpu_s(coordinator)
            options = SubmitOptions(selector=",".join(CLASSES), iterations=10, warmup=1)
            prepared = prepare([model] * (RUNS // len(CLASSES)), options, None)
            start = time.perf_counter()
            outcome = submit(prepared, settings=settings, sessions=farm.sessions(),
                             app=create_app(settings))  # fmt: skip
            farm.wait_job(str(outcome.job_id), timeout=7200)
            makespan = time.perf_counter() - start
            coordinator = tree(farm.procs["coordinator"].pid)
            cpu = cpu_s(coordinator) - cpu_before
            coordinator_peak = peak_mib(coordinator)
            worker_peak = peak_mib(device_worker(farm.procs["agent-1"].pid))
            grown = database_bytes(farm) - before_db
            busy: dict[str, float] = defaultdict(float)
            with farm.sessions()() as session:
                rows = session.execute(
                    select(db.Run.device_class, db.RunAttempt.started_at, db.RunAttempt.finished_at)
                    .join(db.RunAttempt, db.RunAttempt.run_id == db.Run.id)
                    .where(db.Run.job_id == uuid.UUID(str(outcome.job_id)))
                ).all()
            for device_class, begun, ended in rows:
                busy[device_class] += (ended - begun).total_seconds()
            bound = max(total / per_class for total in busy.values())
            runs = len(rows)
            mean_batch = sum(busy.values()) / max(1, runs)
            print(
                f"{runs} batches ({TIME_MODE} ×{SPEED:g}, mean batch {mean_batch:.2f} s): "
                f"makespan {makespan:.1f} s, lower bound {bound:.1f} s, ratio {makespan / bound:.2f}"
            )
            print(
                f"coordinator CPU: {cpu:.1f} s = {cpu / runs * 1000:.1f} ms per run; "
                f"peak memory {coordinator_peak:.0f} MiB (parent + ingest child)"
            )
            print(f"one device worker: peak memory {worker_peak:.0f} MiB (parent + pool child)")
            print(f"database growth: {grown / 1024**2:.1f} MiB for {runs} runs = "
                  f"{grown / runs * 1000 / 1024**2:.1f} MiB per 1,000 runs")  # fmt: skip
        finally:
            farm.stop()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
