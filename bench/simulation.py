"""CPU cost and peak memory of one simulated batch in instant mode (issue 4: ≤ 5 ms for a
200-op model). Run: ``.venv/bin/python bench/simulation.py [--ops 200] [--batches 200]``."""

from __future__ import annotations

import argparse
import hashlib
import time
import tracemalloc
from pathlib import Path

from agents.devices.simulated import build_farm
from orchestrator.modelkit.inventory import ModelInventory, OpInfo, TensorInfo
from orchestrator.protocol import ComputeUnits, ManifestModel, ModelFormat, RunnerManifest

TARGET_MS = 5.0
KINDS = ("conv", "activation", "batchnorm", "elementwise", "pool", "concat", "reshape")


def model_of(op_count: int) -> ModelInventory:
    """A mobile-net-like chain of ``op_count`` ops on 1×64×56×56 tensors, one LSTM in the middle."""
    shape = [1, 64, 56, 56]
    ops = []
    for i in range(op_count):
        kind = "rnn" if i == op_count // 2 else KINDS[i % len(KINDS)]
        tensor = TensorInfo(f"t{i}", shape, "float16")
        ops.append(OpInfo(i, f"op{i}", kind, kind, {"kernel": [3, 3], "dilations": [1, 1]},
                          [tensor], [tensor], 2 * 64 * 64 * 9 * 56 * 56 if kind == "conv" else 200_704,
                          73_728 if kind == "conv" else 0))  # fmt: skip
    sha = hashlib.sha256(f"bench:{op_count}".encode()).hexdigest()
    return ModelInventory(Path("bench.mlpackage"), sha, "mlpackage", "mlProgram", 8, "iOS17", [],
                          [], ops, 0, 5_000_000)  # fmt: skip


def manifest(model: ModelInventory, batch: int) -> RunnerManifest:
    return RunnerManifest(
        batch_id=f"bench-{batch}",
        model=ManifestModel(filename="bench.mlpackage", sha256=model.sha256,
                            format=ModelFormat.MLPACKAGE),
        compute_units=list(ComputeUnits), iterations=50, warmup=5, time_budget_s=3600,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ops", type=int, default=200)
    parser.add_argument("--batches", type=int, default=200)
    args = parser.parse_args()
    model = model_of(args.ops)
    device = build_farm("iPhone16,1=1")[0]  # iOS 26: compute plan included

    tracemalloc.start()
    started = time.process_time()
    device.simulate_batch(manifest(model, 0), model, 3600)
    first_ms = (time.process_time() - started) * 1000
    _, first_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    started = time.process_time()
    for batch in range(1, args.batches + 1):
        device.simulate_batch(manifest(model, batch), model, 3600)
    steady_ms = (time.process_time() - started) * 1000 / args.batches

    tracemalloc.start()
    device.simulate_batch(manifest(model, args.batches + 1), model, 3600)
    _, steady_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    print(f"simulated batch, instant mode, {args.ops}-op model, 4 settings × (5 warm-up + 50)"
          " predictions, compute plan")  # fmt: skip
    print(
        f"  first batch (profiles the model):  {first_ms:7.2f} ms CPU, peak {first_peak / 1024:7.0f} KiB"
    )
    print(
        f"  next batches (mean of {args.batches}):     {steady_ms:7.2f} ms CPU, peak {steady_peak / 1024:7.0f} KiB"
    )
    verdict = "OK" if steady_ms <= TARGET_MS else "OVER"
    print(f"  target ≤ {TARGET_MS} ms per batch: {verdict}")


if __name__ == "__main__":
    main()
