"""Trend: Mann–Kendall and Theil–Sen over the nightly medians find a slow creep."""

from __future__ import annotations

from orchestrator.regress import Check, Status, analyse, findings
from tests.regress.factory import history, night, quiet


def trend_statuses(medians):
    result = analyse([history(medians)])
    return [next(f for f in findings(result, n) if f.check is Check.TREND) for n in result.nights]


def test_a_one_percent_per_night_creep_is_found_within_ten_nights():
    medians = quiet(16, sigma=0.01, seed=3) + [10.0 * 1.01**i for i in range(1, 11)]
    found = trend_statuses(medians)
    assert all(f.status is not Status.REGRESSION for f in found[:16])
    hit = [f for f in found[16:] if f.status is Status.REGRESSION]
    assert hit, [f.message for f in found[16:]]
    assert hit[0].change is not None and hit[0].change >= 0.05
    assert "Mann–Kendall" in hit[0].message


def test_a_quiet_series_has_no_trend():
    found = trend_statuses(quiet(30, sigma=0.02, seed=11))
    assert {f.status for f in found[8:]} == {Status.SAME}
    assert found[0].status is Status.INSUFFICIENT_DATA


def test_a_shrinking_latency_is_an_improving_trend():
    medians = quiet(8, sigma=0.005) + [10.0 * 0.98**i for i in range(1, 9)]
    found = trend_statuses(medians)
    assert found[-1].status is Status.IMPROVEMENT
    assert found[-1].onset == night(2)
