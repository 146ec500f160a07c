"""Latency: raw-sample test and effect size against the baseline, night by night."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.regress import (
    BaselineRule,
    Check,
    RegressSettings,
    Status,
    analyse,
    findings,
)
from tests.regress.factory import history, night, quiet


def statuses(h, check=Check.LATENCY, settings=None):
    result = analyse([h], settings)
    return [next(f.status for f in findings(result, n) if f.check is check) for n in result.nights]


def test_quiet_series_is_same_after_the_baseline_fills():
    got = statuses(history(quiet(30, sigma=0.02, seed=4)))
    assert got[:5] == [Status.INSUFFICIENT_DATA] * 5
    assert set(got[5:]) <= {Status.SAME, Status.UNKNOWN}
    assert got[5:].count(Status.SAME) >= 22


@pytest.mark.parametrize(("step", "within"), [(1.10, 2), (1.05, 3)])
def test_a_step_is_a_regression_within_the_issues_nights(step, within):
    medians = quiet(30, sigma=0.01, seed=2)
    for i in range(20, 30):
        medians[i] *= step
    got = statuses(history(medians))
    assert Status.REGRESSION not in got[:20]
    assert Status.REGRESSION in got[20 : 20 + within]
    if step >= 1.1:
        assert got[-1] is Status.REGRESSION  # an open change is reported while it lasts


def test_a_faster_night_is_an_improvement_with_its_figures():
    medians = [10.0 * (1 + 0.005 * (-1) ** i) for i in range(20)] + [8.0, 8.0]
    result = analyse([history(medians)])
    (latency,) = [f for f in findings(result) if f.check is Check.LATENCY]
    assert latency.status is Status.IMPROVEMENT
    assert latency.change == pytest.approx(-0.2, abs=0.01)
    assert latency.baseline == pytest.approx(10.0, rel=0.01)
    assert latency.onset == night(20)
    assert "-20" in latency.message


def test_one_clear_run_asks_for_a_confirmation_before_it_alerts():
    medians = [10.0 * (1 + 0.005 * (-1) ** i) for i in range(20)] + [13.0]
    (f,) = [f for f in findings(analyse([history(medians)])) if f.check is Check.LATENCY]
    assert f.status is Status.UNKNOWN and f.needs_confirmation
    plain = RegressSettings(confirm_first=False)
    (f,) = [f for f in findings(analyse([history(medians)], plain)) if f.check is Check.LATENCY]
    assert f.status is Status.REGRESSION


def test_a_confirmation_run_is_counted_and_decides():
    from dataclasses import replace

    from orchestrator.regress import Run

    medians = [10.0 * (1 + 0.005 * (-1) ** i) for i in range(20)] + [13.0]
    h = history(medians)
    last = h.points[-1]
    again = Run(samples_ms=tuple(x * 1.01 for x in last.runs[0].samples_ms))
    h2 = replace(h, points=(*h.points[:-1], replace(last, runs=(*last.runs, again))))
    (f,) = [f for f in findings(analyse([h2])) if f.check is Check.LATENCY]
    assert f.confirmed and not f.needs_confirmation
    assert f.status is Status.REGRESSION


def test_too_few_baseline_nights_is_insufficient_data():
    got = statuses(history([10.0, 10.1, 9.9, 10.0, 30.0]))
    assert got == [Status.INSUFFICIENT_DATA] * 5
    (f,) = [
        f for f in findings(analyse([history([10.0] * 4 + [30.0])])) if f.check is Check.LATENCY
    ]
    assert "4 baseline nights, 5 needed" in f.message


def test_failed_and_missing_nights_have_their_own_status_and_leave_no_hole_in_checks():
    medians = quiet(12, sigma=0.01)
    medians[9] = None
    h = history(medians, failed=lambda i: "compile_failed: E5RT" if i == 10 else None)
    result = analyse([h])
    assert {f.status for f in findings(result, night(9))} == {Status.MISSING}
    failed = findings(result, night(10))
    assert {f.status for f in failed} == {Status.FAILED}
    run = next(f for f in failed if f.check is Check.RUN)
    assert run.alerting and "compile_failed" in run.message
    assert (
        next(f for f in findings(result, night(11)) if f.check is Check.LATENCY).status
        is Status.SAME
    )


def test_reset_baseline_starts_over_from_the_accepted_night():
    medians = quiet(20, sigma=0.01) + [12.0 * f for f in (1.0, 1.01, 0.99, 1.0, 1.0, 1.01, 1.0)]
    got = statuses(history(medians))
    assert got[-1] is Status.REGRESSION
    accepted = statuses(history(medians, baseline=BaselineRule(reset_at=night(20))))
    assert accepted[20:25] == [Status.INSUFFICIENT_DATA] * 5
    assert accepted[25:] == [Status.SAME] * 2


def test_a_pinned_baseline_keeps_judging_against_that_window():
    # A slow 0.35 %/night drift: each night looks like the last fortnight, not like night 9.
    flat = [10.0 * (1 + 0.004 * (-1) ** i) for i in range(10)]
    medians = flat + [10.0 * 1.0035**i for i in range(1, 21)]
    rolling = statuses(history(medians))
    assert Status.REGRESSION not in rolling
    pinned = statuses(history(medians, baseline=BaselineRule(pinned_night=night(9))))
    assert pinned[-1] is Status.REGRESSION
    assert pinned[:10] == rolling[:10]


def test_scaling_every_latency_changes_no_status():
    medians = quiet(25, sigma=0.03, seed=9)
    medians[22] *= 1.3
    base = statuses(history(medians))
    assert statuses(history([m * 7.5 for m in medians])) == base


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    step=st.floats(0.8, 1.3),
    at=st.integers(8, 20),
    cut=st.integers(6, 24),
)
def test_a_night_is_judged_only_on_what_came_before_it(seed, step, at, cut):
    """Tonight's status from the history up to tonight equals its status in a replay of
    the longer history: the wiring may analyse night by night or replay, alike."""
    medians = quiet(25, sigma=0.03, seed=seed)
    for i in range(at, 25):
        medians[i] *= step
    full = statuses(history(medians))
    assert statuses(history(medians[:cut])) == full[:cut]
