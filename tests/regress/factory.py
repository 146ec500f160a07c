"""Histories for the regression tests: nightly medians → points with raw samples."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, timedelta

import numpy as np

from orchestrator.regress import Conditions, NightPoint, PointStatus, Run
from orchestrator.regress.series import BaselineRule, PlacedOp, SeriesHistory, SeriesKey

FIRST_NIGHT = date(2026, 3, 1)
BASE = Conditions(
    model_sha256="a" * 64, os_version="18.1", os_build="22B83", runner_version="1.0",
    udid="dev-1", thermal_state="nominal",
)  # fmt: skip


def night(i: int) -> date:
    return FIRST_NIGHT + timedelta(days=i)


def quiet(nights: int, *, sigma: float = 0.02, seed: int = 0, base_ms: float = 10.0) -> list[float]:
    rng = np.random.default_rng(seed)
    return list(base_ms * rng.lognormal(0.0, sigma, nights))


def run_of(median: float, rng: np.random.Generator, samples: int = 30, within: float = 0.03) -> Run:
    """One run's samples, log-normal with spread ``within`` around exactly this median."""
    draws = median * rng.lognormal(0.0, within, samples)
    draws *= median / float(np.median(draws))
    return Run(samples_ms=tuple(draws.tolist()))


def multi_history(
    medians: Sequence[Sequence[float]], *, seed: int = 1, series: str = "detector"
) -> SeriesHistory:
    """One point per night with one run per given run median (a sweep's ``repeats:``)."""
    rng = np.random.default_rng(seed)
    points = tuple(
        NightPoint(night=night(i), runs=tuple(run_of(m, rng) for m in runs), conditions=BASE)
        for i, runs in enumerate(medians)
    )
    return SeriesHistory(SeriesKey(series, "iPhone15,2", "all", True), points)


def history(
    medians: Sequence[float | None],
    *,
    series: str = "detector",
    device_class: str = "iPhone15,2",
    compute_units: str = "all",
    simulated: bool = True,
    samples: int = 30,
    within: float = 0.03,
    seed: int = 1,
    conditions: Callable[[int], Conditions] = lambda i: BASE,
    placement: Callable[[int], dict[str, PlacedOp] | None] = lambda i: None,
    verdict: Callable[[int], str | None] = lambda i: None,
    compile_ms: Callable[[int], float | None] = lambda i: None,
    failed: Callable[[int], str | None] = lambda i: None,
    baseline: BaselineRule | None = None,
) -> SeriesHistory:
    """One point per night; a None median is a missing night, ``failed`` gives a reason."""
    rng = np.random.default_rng(seed)
    points = []
    for i, median in enumerate(medians):
        reason = failed(i)
        if median is None or reason:
            status = PointStatus.FAILED if reason else PointStatus.MISSING
            points.append(NightPoint(night=night(i), status=status, reason=reason or "absent",
                                     conditions=conditions(i)))  # fmt: skip
            continue
        points.append(
            NightPoint(
                night=night(i),
                runs=(run_of(median, rng, samples, within),),
                verdict=verdict(i),
                placement=placement(i),
                compile_ms=compile_ms(i),
                conditions=conditions(i),
            )
        )
    key = SeriesKey(series, device_class, compute_units, simulated)
    return SeriesHistory(key=key, points=tuple(points), baseline=baseline or BaselineRule())
