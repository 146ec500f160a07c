"""Several runs a night (a sweep's ``repeats:``): how a night's runs are combined, and how
the baseline's spread uses the runs' own spread (``stats.night_value``, ``run_spread``)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from orchestrator.regress import Check, RegressSettings, SeriesHistory, Status, analyse, findings
from orchestrator.regress.stats import MEDIAN_VARIANCE, night_value, run_spread
from tests.regress.factory import multi_history


def latency(h: SeriesHistory, settings: RegressSettings | None = None) -> list:
    result = analyse([h], settings)
    return [next(f for f in findings(result, n) if f.check is Check.LATENCY) for n in result.nights]


def noisy_nights(nights: int, runs: int, sigma: float, seed: int) -> list[list[float]]:
    rng = np.random.default_rng(seed)
    return [list(10.0 * rng.lognormal(0.0, sigma, runs)) for _ in range(nights)]


def test_night_value_is_the_mean_or_the_median_of_the_runs_log_medians():
    logs = [math.log(10.0), math.log(11.0), math.log(14.0)]
    value, factor, within = night_value(logs)
    assert value == pytest.approx(sum(logs) / 3)  # log of the geometric mean
    assert factor == pytest.approx(1 / 3)
    mean = sum(logs) / 3
    assert within == pytest.approx(sum((x - mean) ** 2 for x in logs))
    value, factor, within_median = night_value(logs, "median")
    assert value == pytest.approx(math.log(11.0))  # one wild run does not move it
    assert factor == pytest.approx(MEDIAN_VARIANCE[3]) and factor > 1 / 3
    assert within_median == pytest.approx(within)
    assert night_value([math.log(5.0)]) == (pytest.approx(math.log(5.0)), 1.0, 0.0)


def test_median_variance_table_matches_a_simulation():
    rng = np.random.default_rng(0)
    for r in (3, 5, 8):
        draws = np.median(rng.standard_normal((200_000, r)), axis=1)
        assert draws.var() == pytest.approx(MEDIAN_VARIANCE[r], rel=0.03)


def test_a_nights_runs_are_combined_into_its_value_and_its_samples_pooled():
    quiet = [[10.0, 10.0, 10.0]] * 14
    h = multi_history([*quiet, [12.0, 13.0, 14.0]])
    last = latency(h)[-1]
    geometric = math.exp(sum(math.log(x) for x in (12.0, 13.0, 14.0)) / 3)
    assert last.value == pytest.approx(geometric, rel=1e-3)
    assert last.change == pytest.approx(geometric / 10.0 - 1, abs=1e-3)
    median = latency(h, RegressSettings(night_value="median"))[-1]
    assert median.value == pytest.approx(13.0, rel=1e-3)


def test_run_spread_with_one_run_a_night_is_the_nights_spread():
    sigma, dof = run_spread(np.array([0.08]), np.array([14.0]), np.array([1.0]),
                            np.array([0.0]), np.array([0.0]))  # fmt: skip
    assert sigma[0] == pytest.approx(0.08) and dof[0] == 13


def test_run_spread_pools_the_runs_spread_when_the_nights_agree_with_it():
    # 14 nights of 3 runs: the nightly means vary by σ/√3, the runs within by σ.
    sigma, dof = run_spread(
        np.array([0.08 / math.sqrt(3)]), np.array([14.0]), np.array([1 / 3]),
        np.array([28 * 0.08**2]), np.array([28.0]),
    )  # fmt: skip
    assert sigma[0] == pytest.approx(0.08)
    assert dof[0] == 13 + 28


def test_run_spread_keeps_the_nights_spread_when_whole_nights_move_together():
    # The nights vary 3× more than their runs explain (a night-to-night component):
    # pooling would understate the spread, so the nights' own spread stands alone.
    sigma, dof = run_spread(
        np.array([3 * 0.08 / math.sqrt(3)]), np.array([14.0]), np.array([1 / 3]),
        np.array([28 * 0.08**2]), np.array([28.0]),
    )  # fmt: skip
    assert sigma[0] == pytest.approx(3 * 0.08)
    assert dof[0] == 13


def test_several_runs_a_night_alert_on_the_first_night_without_a_confirmation():
    # σ 0.08 per run: one run a night cannot tell a 15 % step from noise on its first
    # night (it asks for a confirmation at most); five runs a night can.
    nights = noisy_nights(20, 5, 0.08, seed=3)
    step = [[m * 1.15 for m in runs] for runs in noisy_nights(1, 5, 0.08, seed=4)]
    five = latency(multi_history(nights + step))
    assert five[-1].status is Status.REGRESSION and not five[-1].needs_confirmation
    assert Status.REGRESSION not in {f.status for f in five[:-1]}
    one = latency(multi_history([runs[:1] for runs in nights + step]))
    assert one[-1].status is not Status.REGRESSION


def test_repeats_narrow_the_gate_on_quiet_nights():
    # Same per-run noise: the gate a change must reach shrinks with the runs a night
    # (the nightly value varies less, and the spread is known from more runs).
    gates = {}
    for runs in (1, 3, 5):
        h = multi_history([r[:runs] for r in noisy_nights(20, 5, 0.08, seed=5)])
        gates[runs] = latency(h)[-1].gate
    assert gates[1] > gates[3] > gates[5]
    assert gates[3] < 0.75 * gates[1]


def test_quiet_nights_of_several_runs_rarely_alert():
    # 40 quiet series × 25 judged nights of 3 runs at the farm's σ 0.08: the goal
    # is ≤ 5 alerts per 1,000 quiet series-nights (bench/regressions.py has the rate).
    series = [multi_history(noisy_nights(30, 3, 0.08, seed=i), seed=i, series=f"d{i}")
              for i in range(40)]  # fmt: skip
    result = analyse(series)
    alerting = [f for n in result.nights for f in findings(result, n, alerts_only=True)
                if f.check is Check.LATENCY]  # fmt: skip
    judged = [f for n in result.nights for f in findings(result, n)
              if f.check is Check.LATENCY and f.status is not Status.INSUFFICIENT_DATA]  # fmt: skip
    assert len(judged) >= 900
    assert len(alerting) <= 5


def test_an_unknown_night_of_several_runs_asks_no_confirmation_run():
    # Its runs already are a second opinion (on other devices of the class): between
    # clearly same and clearly changed it stays UNKNOWN; one run alone asks for one more.
    quiet = [[10.0, 10.3, 9.7], [10.2, 9.9, 10.1], [9.8, 10.0, 10.4]] * 5
    unknown = []
    for step in np.arange(1.0, 1.3, 0.005):
        last = latency(multi_history([*quiet, [10.0 * step, 10.3 * step, 9.7 * step]]))[-1]
        if last.status is Status.UNKNOWN:
            unknown.append(last)
    assert unknown and not any(f.needs_confirmation for f in unknown)
    one = latency(multi_history([r[:1] for r in quiet] + [[10.0 * 1.3]]))[-1]
    assert one.status is Status.UNKNOWN and one.needs_confirmation
