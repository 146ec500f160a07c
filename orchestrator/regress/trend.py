"""Trend: a slow creep that no single night's step reveals.

Method (documented instead of a library, docs/regressions.md "Trend"): over the last
``trend_window`` ok nights since the baseline reset, the Mann–Kendall test (is there a
monotonic trend?) and the Theil–Sen slope (how steep?) of the log nightly medians. A trend
is reported when p ≤ ``trend_p`` and the drift the slope implies across the window reaches
the latency threshold. Why not e-divisive (signal-processing-algorithms, apache-otava):
both look for steps, which the step check already finds, need permutation tests (too slow
for 10,000 series a night), and flag single spikes as change points (otava PR 150); both
rank-based statistics here ignore one wild night and vectorise over all series.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from orchestrator.regress.stats import Array, mann_kendall
from orchestrator.regress.steps import (
    IMPROVEMENT,
    INSUFFICIENT,
    NO_VALUE,
    REGRESSION,
    SAME,
    IntArray,
)


@dataclass
class TrendResult:
    code: npt.NDArray[np.int8]
    change: Array  # relative drift over the window's span
    p: Array
    nights: IntArray  # ok nights in the window
    first: IntArray  # first column of the window that holds a value


def detect_trends(
    logv: Array, start: IntArray, *, window: int, min_nights: int, p_max: float, threshold: float
) -> TrendResult:
    n_series, n_nights = logv.shape
    result = TrendResult(
        code=np.full((n_series, n_nights), NO_VALUE, dtype=np.int8),
        change=np.full((n_series, n_nights), np.nan),
        p=np.full((n_series, n_nights), np.nan),
        nights=np.zeros((n_series, n_nights), dtype=np.int64),
        first=np.zeros((n_series, n_nights), dtype=np.int64),
    )
    padded = np.concatenate([np.full((n_series, window - 1), np.nan), logv], axis=1)
    floor = math.log1p(threshold)
    for t in range(n_nights):
        columns = np.arange(t - window + 1, t + 1)
        values = padded[:, t : t + window].copy()
        values[columns[None, :] < start[:, None]] = np.nan
        p, slope, n = mann_kendall(values, columns.astype(np.float64))
        valid = ~np.isnan(values)
        first = np.where(valid.any(axis=1), columns[np.argmax(valid, axis=1)], t)
        drift = slope * (t - first)
        tonight = ~np.isnan(logv[:, t])
        code = np.where(tonight, INSUFFICIENT, NO_VALUE).astype(np.int8)
        enough = tonight & (n >= min_nights)
        code[enough] = SAME
        found = enough & (p <= p_max) & (np.abs(drift) >= floor)
        code[found] = np.where(drift[found] > 0, REGRESSION, IMPROVEMENT)
        result.code[:, t] = code
        result.change[:, t] = np.expm1(drift)
        result.p[:, t] = p
        result.nights[:, t] = n.astype(np.int64)
        result.first[:, t] = first
    return result
