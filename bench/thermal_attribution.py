"""Attribution of a hot class (issue 18, thermal state), SIMULATED: how often a class that
starts running hot (``hot: {class, state: serious}`` in a farm timeline, × 1.25 on every
latency: ``agents/devices/simulation/thermal.py``) is alerted within 2 nights, how often
that alert names the heat, and how often quiet series name it falsely when the farm's
thermal state flickers from night to night.

Noise model (bench/regressions.py's): a run's median is the series' latency × a log-normal
run-to-run factor (σ swept; the simulated farm assumes 0.08) and its samples spread by
``NOISE_SIGMA`` within the run. Each night has one run; no confirmation runs are simulated,
so "within 2 nights" counts what a 2-night window alone decides (a confirmation run on the
first night only adds). A quiet series' nights report nominal, fair or serious at random
(``--flicker``: the chance of a serious night, fair 4× as often): attribution is meant to
name a throttled night against a cool baseline, never a flicker inside it.

Run: ``.venv/bin/python bench/thermal_attribution.py`` (``--series``, ``--seeds``).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
from regress_history import BASE, night_date, night_point, simulated_series

from agents.devices.simulation.runner import NOISE_SIGMA
from agents.devices.simulation.thermal import THROTTLE
from orchestrator.protocol import ThermalState
from orchestrator.regress import Check, SeriesHistory, Status, analyse, findings

NIGHTS, HOT_NIGHT = 22, 20  # 20 nights of history, the class runs hot from night 20
SERIOUS = THROTTLE[ThermalState.SERIOUS]


def history(s: int, sigma: float, rng: np.random.Generator, *, hot: bool,
            flicker: float) -> SeriesHistory:  # fmt: skip
    points = []
    for i in range(NIGHTS):
        if hot and i >= HOT_NIGHT:
            state, factor = "serious", SERIOUS
        else:
            draw = rng.random()
            state = "serious" if draw < flicker else "fair" if draw < 5 * flicker else "nominal"
            factor = 1.0  # a flicker is a state reported, not a slower night (conservative)
        median = 10.0 * factor * float(np.exp(sigma * rng.standard_normal()))
        samples = median * rng.lognormal(0.0, NOISE_SIGMA, 30)
        points.append(night_point(i, [samples], replace(BASE, thermal_state=state)))
    return simulated_series(f"m{s}", "iPhone14,5" if hot else "iPhone15,2", points)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--flicker", type=float, default=0.05)
    args = parser.parse_args(argv)
    print("SIMULATED: a class running hot (serious, ×1.25) from night 20 of 22; "
          f"{args.seeds} seeds × {args.series} series each, quiet series flicker "
          f"serious {args.flicker:.0%} / fair {4 * args.flicker:.0%} of nights")  # fmt: skip
    print("| run-to-run σ | hot alerted ≤ 2 nights | of those naming the heat "
          "| quiet alerts naming heat / 1,000 series-nights | s |")  # fmt: skip
    print("|---|---|---|---|---|")
    for sigma in (0.02, 0.04, 0.08):
        alerted = named = series = false_named = quiet_nights = 0
        started = time.perf_counter()
        for seed in range(args.seeds):
            rng = np.random.default_rng(seed)
            hot = [history(s, sigma, rng, hot=True, flicker=0) for s in range(args.series)]
            quiet = [history(s, sigma, rng, hot=False, flicker=args.flicker)
                     for s in range(args.series)]  # fmt: skip
            result = analyse(hot)
            caught: dict[str, bool] = {}
            for n in (HOT_NIGHT, HOT_NIGHT + 1):
                for f in findings(result, night_date(n), alerts_only=True):
                    if f.check is Check.LATENCY and f.status is Status.REGRESSION:
                        thermal = f.attribution.changed("thermal state") is not None
                        caught.setdefault(f.key.series, thermal)
            series += len(hot)
            alerted += len(caught)
            named += sum(caught.values())
            result = analyse(quiet)
            for n in range(5, NIGHTS):  # once a baseline exists
                for f in findings(result, night_date(n), alerts_only=True):
                    false_named += f.attribution.changed("thermal state") is not None
                quiet_nights += len(quiet)
        took = time.perf_counter() - started
        print(f"| {sigma} | {alerted / series:.1%} | {named / max(alerted, 1):.1%} "
              f"| {1000 * false_named / quiet_nights:.2f} | {took:.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()
