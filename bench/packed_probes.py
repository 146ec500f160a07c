"""Packed probes: device-seconds and runner launches to bisect a model on a SIMULATED iPhone
XR on iOS 16 (farm "iPhone11,8@16.7.8=1", no compute plan), packing off and on.

Everything is the real pipeline but the transport, in this process: ``dispatch`` writes
the job, a stub publisher keeps the batches, each batch runs on a simulated device through
the agent's ``execute_all`` (fetch, OS gate, one runner launch, classify), and each run's
result goes through the real ``Ingestor`` (verdict, bisection, lifts) on a real Redis.
Device-seconds are the behaviour model's (launch, push, compile, loads, predictions) summed
over every launch; launches are counted on the device. Packing off is
``ANEFARM_PROBE_PACKING=0`` (here: the setting, per farm).

Run: .venv/bin/python bench/packed_probes.py   (needs a Redis: ANEFARM_BENCH_REDIS_URL, or
redis-server on the PATH, which is started for the run). SIMULATED figures.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import numpy as np

from agents.batch import execute_all
from orchestrator.protocol import RunBatch, RunPurpose
from orchestrator.store import models as db

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.web.pages.simjob
from tests.web.pages.simjob import InProcessFarm

FARM = "iPhone11,8@16.7.8=1"


@dataclass
class Launch:
    """One runner launch: its batch, how many probe runs it carried, their repeat."""

    batch: RunBatch
    runs: int
    repeat: int
    device_s: float
    window: bool = False  # a context-search window (bisect/context.py), not a single op


@dataclass
class PackedFarm(InProcessFarm):
    """A SIMULATED farm driven in this process (module docstring): the page tests' simulated
    job, which also counts each runner launch and its device-seconds."""

    launches: list[Launch] = field(default_factory=list)
    job: str = ""

    @classmethod
    def start(cls, home: Path, redis_url: str, *, farm: str = FARM, packing: bool = True,
              **overrides: Any) -> Self:  # fmt: skip
        return super().start(home, redis_url, farm=farm, probe_packing=packing, **overrides)

    def submit(self, model: Path, *, iterations: int = 20, bisect: str = "always") -> str:
        classes = sorted({d.identity.product_type for d in self.devices})
        self.job = self.submit_job([model], selector=",".join(classes), iterations=iterations,
                                   bisect=bisect)  # fmt: skip
        return self.job

    def run_all(self, limit: int = 2000) -> None:
        """Run every published batch (user, probe, retry) and ingest each run's result."""
        for _ in range(limit):
            if not self.run_next():
                return
        raise AssertionError(f"still batches after {limit}")

    def run_next(self) -> bool:
        """Run the next published batch; False when there is none."""
        batch = self.next_batch()
        if batch is None:
            return False
        device = self._device_for(batch)
        runs, busy = device.runs, device.busy_s
        results = execute_all(batch, device, agent="bench-agent", fetch_model=self._fetch)
        # A crashed pack is launched again in halves: every launch counts.
        repeat, window = self._kind(batch)
        self.launches.extend(
            Launch(batch, len(batch.members()), repeat,
                   (device.busy_s - busy) / max(device.runs - runs, 1), window)
            for _ in range(device.runs - runs)
        )  # fmt: skip
        payloads = [result.model_dump(mode="json") for result in results]
        if len(payloads) == 1:
            self.outcomes.append(str(self.ingestor.ingest(payloads[0])))
        else:  # as the coordinator's ingest_launch task does with a packed launch's message
            self.outcomes.extend(str(o) for o in self.ingestor.ingest_launch(payloads))
        return True

    def probe_launches(self, repeat: int | None = None) -> list[Launch]:
        return [
            launch
            for launch in self.launches
            if launch.batch.purpose is RunPurpose.PROBE and repeat in (None, launch.repeat)
        ]

    def device_seconds(self) -> float:
        return sum(launch.device_s for launch in self.launches)

    def parent(self, job: str) -> db.Run:
        with self.sessions() as session:
            [run] = session.query(db.Run).filter_by(job_id=uuid.UUID(job), purpose="user").all()
            session.expunge(run)
            return run

    def _kind(self, batch: RunBatch) -> tuple[int, bool]:
        """The batch's probe copies, and whether it is a context-search window."""
        with self.sessions() as session:
            run = session.get(db.Run, batch.run_id)
            if run is None:
                return 1, False
            return int(run.probe_repeat or 1), "window" in (run.bisection or {})


def chain_model(path: Path, n_ops: int, *, seed: int = 0, distinct: int | None = None) -> Path:
    """An ML program of ``n_ops`` ops in a chain, seeded: convolutions (a dilated one every
    seventh), activations and element-wise ops, whose widths vary so that about
    ``distinct`` (default: all) op signatures differ."""
    import coremltools as ct
    from coremltools.converters.mil import Builder as mb

    rng = np.random.default_rng(seed)
    side, width = 16, 8
    widths = [8 + (i % (distinct or n_ops)) % 24 for i in range(n_ops)]

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, width, side, side))])  # type: ignore[untyped-decorator]
    def prog(x: Any) -> Any:
        h, channels = x, width
        for i in range(n_ops):
            kind = i % 5
            if kind in (0, 3):  # a convolution to the next width
                out = widths[i]
                w = rng.standard_normal((out, channels, 3, 3)).astype(np.float32) * 0.1
                dilation = [2, 2] if i % 7 == 6 else [1, 1]
                h = mb.conv(x=h, weight=w, pad_type="same", dilations=dilation, name=f"conv_{i}")
                channels = out
            elif kind == 1:
                h = [mb.relu, mb.sigmoid, mb.tanh][i % 3](x=h, name=f"act_{i}")
            elif kind == 2:
                c = rng.standard_normal((1, channels, 1, 1)).astype(np.float32)
                h = mb.add(x=h, y=c, name=f"add_{i}")
            else:
                c = rng.standard_normal((1, channels, 1, 1)).astype(np.float32)
                h = mb.mul(x=h, y=c, name=f"mul_{i}")
        return h

    model = ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS16)
    model.save(str(path))
    return path


def bisect_once(home: Path, redis_url: str, model: Path, *, packing: bool) -> dict[str, Any]:
    farm = PackedFarm.start(home, redis_url, packing=packing)
    try:
        job = farm.submit(model)
        farm.run_all()
        parent = farm.parent(job)
        bisection = parent.bisection or {}
        return {
            "launches": len(farm.launches),
            "probe_launches": len(farm.probe_launches()),
            "probe_runs": sum(launch.runs for launch in farm.probe_launches()),
            "device_s": farm.device_seconds(),
            "probe_device_s": sum(launch.device_s for launch in farm.probe_launches()),
            "signatures": bisection.get("signatures", {}),
            "state": parent.bisect_state,
        }
    finally:
        farm.close()


def _redis() -> tuple[str, subprocess.Popen[bytes] | None]:
    url = os.environ.get("ANEFARM_BENCH_REDIS_URL")
    if url:
        return url, None
    server = shutil.which("redis-server")
    if server is None:
        raise SystemExit("bench: needs ANEFARM_BENCH_REDIS_URL or redis-server on the PATH")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([server, "--port", str(port), "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL)  # fmt: skip
    time.sleep(0.5)
    return f"redis://127.0.0.1:{port}/0", proc


def main() -> None:
    from orchestrator import modelkit

    url, proc = _redis()
    try:
        with tempfile.TemporaryDirectory() as scratch:
            root = Path(scratch)
            modelkit.write_samples(root / "samples", small=True)
            models = {
                "mobilenetv2_block": root / "samples" / "mobilenetv2_block.mlpackage",
                "chain of 100 ops": chain_model(
                    root / "chain100.mlpackage", 100, seed=1, distinct=40
                ),
            }
            print(f"bisection on {FARM} (SIMULATED XR, iOS 16, no compute plan),"
                  " 20 iterations, --bisect; device time from the behaviour model")  # fmt: skip
            print(f"  {'model':<20} {'packing':<8} {'launches':>8} {'probe launches':>15}"
                  f" {'probe runs':>10} {'device-s':>9} {'probe device-s':>15}")  # fmt: skip
            for name, model in models.items():
                figures = {}
                for packing in (False, True):
                    figures[packing] = f = bisect_once(root / f"{name}-{packing}", url, model,
                                                       packing=packing)  # fmt: skip
                    print(f"  {name:<20} {'on' if packing else 'off':<8} {f['launches']:>8}"
                          f" {f['probe_launches']:>15} {f['probe_runs']:>10}"
                          f" {f['device_s']:>9.1f} {f['probe_device_s']:>15.1f}")  # fmt: skip
                off, on = figures[False], figures[True]
                same = _same_units(off["signatures"], on["signatures"])
                print(f"  {name:<20} device-seconds {off['device_s'] / on['device_s']:.1f}× fewer"
                      f" (probes alone {off['probe_device_s'] / on['probe_device_s']:.1f}×),"
                      f" launches {off['launches']} → {on['launches']};"
                      f" same placements: {same}")  # fmt: skip
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait()


def _same_units(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return {s: (v["unit"], v["status"]) for s, v in a.items()} == {
        s: (v["unit"], v["status"]) for s, v in b.items()
    }


if __name__ == "__main__":
    main()
