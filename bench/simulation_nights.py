"""The SIMULATED farm over many nights (agents/devices/simulation/nights.py): the spread its
run-to-run noise gives nightly medians, and what a night costs the device and the helper.

Run: ``.venv/bin/python -m bench.simulation_nights [--nights 2000] [--sigma 0.08]``.
Prints figures; asserts nothing (timing goals are not test assertions here).
"""

from __future__ import annotations

import argparse
import itertools
import math
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

from agents.devices.simulated import build_farm
from agents.devices.simulation.farm import parse_farm
from agents.devices.simulation.nights import RUN_TO_RUN_SIGMA, night_samples, nights_between
from bench.simulation import manifest, model_of
from orchestrator.protocol import ComputeUnits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nights", type=int, default=2000)
    parser.add_argument("--sigma", type=float, default=RUN_TO_RUN_SIGMA)
    parser.add_argument("--ops", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "farm.yaml"
        path.write_text(
            'devices: [{product_type: "iPhone16,1"}]\n'
            f"noise: {{seed: 7, run_to_run_sigma: {args.sigma}}}\n"
        )
        spec = parse_farm(path)[0]
        device = build_farm(path)[0]
    model = model_of(args.ops)
    first = date(2026, 1, 1)
    nights = list(nights_between(first, date.fromordinal(first.toordinal() + args.nights - 1)))

    started = time.process_time()
    medians = []
    for night in nights:
        series = night_samples(spec, model.ops, ComputeUnits.ALL, night, sha256=model.sha256)
        assert series.median is not None
        medians.append(series.median)
    helper_us = (time.process_time() - started) / len(nights) * 1e6
    logs = [math.log(m) for m in medians]
    pairs = list(itertools.pairwise(medians))
    over10 = sum(abs(b / a - 1) > 0.10 for a, b in pairs) / len(pairs)
    over5 = sum(abs(b / a - 1) > 0.05 for a, b in pairs) / len(pairs)
    print(f"run-to-run sigma configured      {args.sigma:.3f}")
    print(f"stdev of log nightly medians      {statistics.stdev(logs):.4f}  ({len(nights)} nights)")
    print(f"consecutive nights differing >10% {over10:.1%}   >5% {over5:.1%}")
    within = night_samples(spec, model.ops, ComputeUnits.ALL, nights[0], sha256=model.sha256)
    spread = statistics.stdev(math.log(x) for x in within.samples)
    print(f"within one run (50 samples)       stdev of log = {spread:.4f}")
    print(
        f"night_samples, {args.ops}-op model    {helper_us:.1f} µs CPU per series-night (50 samples)"
    )

    timed = []
    for i, night in enumerate(nights[:200]):
        device.at_night(night)
        t0 = time.process_time()
        device.simulate_batch(manifest(model, i), model, 3600)
        timed.append(time.process_time() - t0)
    device.at_night(None)
    plain = []
    for i in range(200):
        t0 = time.process_time()
        device.simulate_batch(manifest(model, 1000 + i), model, 3600)
        plain.append(time.process_time() - t0)
    print(
        f"device batch with a night          {statistics.median(timed) * 1e3:.2f} ms CPU"
        f" (without: {statistics.median(plain) * 1e3:.2f} ms), median of 200"
    )


if __name__ == "__main__":
    main()
