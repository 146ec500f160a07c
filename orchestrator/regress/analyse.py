"""Analyse many series at once: histories → per (series, night, check) status codes.

The nights of all series are laid on one axis (columns); each check runs vectorised over
the series (``steps``, ``trend``) or walks each series (``exact``). ``FleetAnalysis`` keeps
the arrays and builds ``Finding`` objects only when asked (``findings.py`` of this package
is what the wiring reads; ``report.py`` builds them).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from orchestrator.regress.exact import ExactResult, placement_checks, verdict_checks
from orchestrator.regress.series import PointStatus, SeriesHistory, check_one_kind
from orchestrator.regress.settings import RegressSettings
from orchestrator.regress.stats import Array, night_value, two_sample_p
from orchestrator.regress.steps import (
    BoolArray,
    IntArray,
    StepResult,
    StepRule,
    detect_steps,
)
from orchestrator.regress.trend import TrendResult, detect_trends

MIN_TEST_SAMPLES = 3  # fewer raw samples on a side: the effect size alone decides


@dataclass
class FleetAnalysis:
    histories: Sequence[SeriesHistory]
    settings: RegressSettings
    nights: list[date]
    columns: list[list[int]]  # per series, the column of each of its points
    point_at: IntArray  # (S, T) index of the series' point on that night, -1 none
    start: IntArray  # per series, first column the baseline may use
    pin: IntArray  # per series, the pinned column or -1
    latency: StepResult
    compile: StepResult
    load: StepResult
    trend: TrendResult
    placement: list[ExactResult]
    verdict: list[ExactResult]


class _SampleTester:
    """Raw samples of the latency check, read only for the series that need a test: each
    such series once into a (nights, samples) array padded with NaN."""

    def __init__(self, histories: Sequence[SeriesHistory], point_at: IntArray) -> None:
        self.histories = histories
        self.point_at = point_at
        self.cache: dict[int, Array] = {}

    def series(self, row: int) -> Array:
        found = self.cache.get(row)
        if found is None:
            history = self.histories[row]
            per_point = [[x for run in p.runs for x in run.samples_ms] for p in history.points]
            width = max((len(x) for x in per_point), default=0)
            found = np.full((self.point_at.shape[1] + 1, width), np.nan)
            at = self.point_at[row]
            for col in np.flatnonzero(at >= 0):
                draws = per_point[at[col]]
                found[col, : len(draws)] = draws
            self.cache[row] = found
        return found

    def __call__(self, rows: IntArray, t: int, j: int, mask: BoolArray) -> Array:
        blocks = [self.series(int(row)) for row in rows]
        width = max(b.shape[1] for b in blocks)
        dense = np.full((len(rows), self.point_at.shape[1], width), np.nan)
        for i, block in enumerate(blocks):
            dense[i, :, : block.shape[1]] = block[:-1]
        first = t - j + 1
        fore = dense[:, first : t + 1, :].reshape(len(rows), -1)
        base = np.where(mask[:, :, None], dense[:, :first, :], np.nan).reshape(len(rows), -1)
        p = two_sample_p(fore, base)
        few = ((~np.isnan(fore)).sum(axis=1) < MIN_TEST_SAMPLES) | (
            (~np.isnan(base)).sum(axis=1) < MIN_TEST_SAMPLES
        )
        return np.where(few | np.isnan(p), 0.0, p)  # too few samples: the effect size decides


def analyse(
    histories: Sequence[SeriesHistory], settings: RegressSettings | None = None
) -> FleetAnalysis:
    """Every night of every series against its baseline, for every check."""
    settings = settings or RegressSettings()
    check_one_kind(histories)
    nights = sorted({p.night for h in histories for p in h.points})
    n_series, n_nights = len(histories), len(nights)
    position = {night: i for i, night in enumerate(nights)}
    point_at = np.full((n_series, n_nights), -1, dtype=np.int64)
    values = np.full((2, n_series, n_nights), np.nan)  # compile, load (log)
    runs = np.ones((n_series, n_nights))
    # A night's latency from its runs (repeats, a confirmation): its value, the value's
    # variance in units of one run's, and the runs' own spread (sum of squares, dof).
    latency = np.full((n_series, n_nights), np.nan)
    factor = np.ones((n_series, n_nights))
    within_ss = np.zeros((n_series, n_nights))
    within_df = np.zeros((n_series, n_nights))
    start = np.zeros(n_series, dtype=np.int64)
    pin = np.full(n_series, -1, dtype=np.int64)
    columns: list[list[int]] = []
    for s, history in enumerate(histories):
        cols = [position[p.night] for p in history.points]
        columns.append(cols)
        point_at[s, cols] = np.arange(len(cols))
        ok = [p for p in history.points if p.status is PointStatus.OK]
        at = [position[p.night] for p in ok]
        combined = [night_value(p.log_run_medians(), settings.night_value) for p in ok]
        latency[s, at] = [c[0] for c in combined]
        factor[s, at] = [c[1] for c in combined]
        within_ss[s, at] = [c[2] for c in combined]
        within_df[s, at] = [len(p.runs) - 1 for p in ok]
        values[0, s, at] = [p.compile_ms or math.nan for p in ok]
        values[1, s, at] = [p.load_ms or math.nan for p in ok]
        runs[s, at] = [len(p.runs) for p in ok]
        rule = history.baseline
        if rule.reset_at is not None:
            start[s] = bisect.bisect_left(nights, rule.reset_at)
        if rule.pinned_night is not None:
            pin[s] = position[rule.pinned_night]
    values = np.log(values)  # NaN stays NaN
    latency_rule = StepRule(
        threshold=settings.threshold, k=settings.k, same_fraction=settings.same_fraction,
        min_nights=settings.min_baseline_nights, window=settings.window,
        fore_nights=settings.fore_nights, p_alert=settings.p_alert, p_same=settings.p_same,
        confirm_first=settings.confirm_first, persist=settings.persist,
    )  # fmt: skip
    # One number a night and no confirmation run: a clear change alerts at once.
    time_rule = StepRule(
        **{**latency_rule.__dict__, "threshold": settings.time_threshold, "confirm_first": False}
    )
    tester = _SampleTester(histories, point_at)
    placement, verdict = [], []
    for s, history in enumerate(histories):
        first = bisect.bisect_left(columns[s], int(start[s]))  # columns are ascending
        pinned = columns[s].index(int(pin[s])) if pin[s] >= 0 else -1
        placement.append(placement_checks(history.points, first, pinned))
        verdict.append(verdict_checks(history.points, first, pinned))
    return FleetAnalysis(
        histories=histories, settings=settings, nights=nights, columns=columns,
        point_at=point_at, start=start, pin=pin,
        latency=detect_steps(latency, start, pin, latency_rule, tester, runs, factor,
                             (within_ss, within_df)),
        compile=detect_steps(values[0], start, pin, time_rule, None),
        load=detect_steps(values[1], start, pin, time_rule, None),
        trend=detect_trends(
            latency, start, window=settings.trend_window,
            min_nights=settings.trend_min_nights, p_max=settings.trend_p,
            threshold=settings.threshold,
        ),
        placement=placement, verdict=verdict,
    )  # fmt: skip
