"""The statistics, vectorised over many series at once (numpy; distributions from scipy).

- ``robust_spread``: the standard deviation of the nights within 8 MAD-σ of the median
  (MAD-screened: one wild night does not widen it; steadier than the MAD itself).
- ``two_sample_p``: Pinpoint's p = min(Kolmogorov–Smirnov p, Mann–Whitney U p) on raw
  samples, for a batch of pairs at once (scipy's tests loop over pairs in Python: 100×
  slower for 10,000 series); statistics in numpy, distributions from scipy, checked
  against ``scipy.stats.mannwhitneyu`` and ``ks_2samp`` in tests/regress/test_stats.py.
- ``night_value``: a night's value from its runs (the mean or the median of their log
  medians), the variance that value has in units of one run's, and the runs' own spread.
- ``run_spread``: one run's run-to-run σ from the baseline — the spread of its nightly
  values, pooled with the spread between the runs of each night when an F-test finds no
  night-to-night component (more degrees of freedom: a smaller Student-t quantile).
- ``mann_kendall``: Mann–Kendall trend test (normal approximation, no tie correction —
  latency medians do not tie) and the Theil–Sen slope, over windows with gaps (NaN).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

# scipy is imported where a distribution is needed, not here: its stats module takes 1-4 s
# to import, and every coordinator imports this module at start-up (alerts.night) while
# most never analyse a night.

Array = npt.NDArray[np.float64]
MAD_TO_SIGMA = 1.4826  # the MAD of a normal distribution is 0.6745 σ
SCREEN = 8.0  # further than 8 MAD-σ from the median: a wild night (a tighter screen trims real
# nights when the MAD of 5–14 nights comes out low, and quiet nights then alert)
SCREEN_MIN = 0.01  # ... but a night within 1 % is never an outlier (identical nights: MAD 0)


def masked_median(values: Array, mask: npt.NDArray[np.bool_]) -> Array:
    """Median per row of the values where ``mask`` holds (NaN for an empty row). One sort
    of the whole block: ``np.nanmedian`` falls back to a Python loop per row."""
    if values.shape[1] == 0:
        return np.full(values.shape[0], np.nan)
    ordered = np.sort(np.where(mask, values, np.inf), axis=1)
    n = mask.sum(axis=1)
    low = np.clip((n - 1) // 2, 0, None)[:, None]
    high = np.clip(n // 2, 0, None)[:, None]
    with np.errstate(invalid="ignore"):
        mid = (np.take_along_axis(ordered, low, 1) + np.take_along_axis(ordered, high, 1)) / 2
    return np.asarray(np.where(n > 0, mid[:, 0], np.nan), dtype=np.float64)


def robust_spread(values: Array, mask: npt.NDArray[np.bool_]) -> tuple[Array, Array, Array]:
    """Per row: the mean, the standard deviation and the count of the masked values within
    ``SCREEN`` MAD-σ of their median (MAD-screened mean and deviation).

    Why not the MAD itself: from 5–14 nights it is too unsteady (its relative error is
    about 1.6× the deviation's), and every time it comes out low the gate shrinks and a
    quiet night alerts; the MAD screen keeps one wild night out of mean and deviation."""
    centre = masked_median(values, mask)
    deviation = np.abs(values - centre[:, None])
    mad_sigma = masked_median(deviation, mask) * MAD_TO_SIGMA
    width = np.maximum(SCREEN * mad_sigma, SCREEN_MIN)[:, None]
    keep = mask & (deviation <= width)
    n = keep.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(keep, values, 0.0).sum(axis=1) / n
        squares = np.where(keep, values - mean[:, None], 0.0) ** 2
        spread = np.where(n > 1, np.sqrt(squares.sum(axis=1) / (n - 1)), np.nan)
    return (
        np.asarray(mean, dtype=np.float64),
        np.asarray(spread, dtype=np.float64),
        np.asarray(n, dtype=np.float64),
    )


# Variance of the median of r independent normal values in units of one value's variance
# (r ≤ 10 from 400,000 simulated draws each; an even r takes the mean of the middle two;
# beyond, the large-r limit π/2r). The mean's is 1/r: for 3 runs the median of them varies
# 35 % more than their mean.
MEDIAN_VARIANCE = (1.0, 1.0, 0.5, 0.449, 0.298, 0.287, 0.214, 0.211, 0.168, 0.166, 0.138)
# Pool the runs' own spread with the nights' when the nights vary no more than this
# F-test allows: a night-to-night component (a farm where whole nights move together)
# keeps the between-night spread alone.
POOL_P = 0.05


def night_value(log_medians: Sequence[float], how: str = "mean") -> tuple[float, float, float]:
    """(value, variance factor, within sum of squares) of a night from its runs' log
    medians: ``how`` "mean" or "median"; the factor is the value's variance in units of one
    run's (1/r for the mean); the sum of squares around the runs' mean has r − 1 degrees
    of freedom."""
    r = len(log_medians)
    if r == 0:
        return math.nan, math.nan, 0.0
    mean = sum(log_medians) / r
    within = sum((x - mean) ** 2 for x in log_medians)
    if how == "median":
        ordered = sorted(log_medians)
        mid = r // 2
        value = ordered[mid] if r % 2 else (ordered[mid - 1] + ordered[mid]) / 2
        factor = MEDIAN_VARIANCE[r] if r < len(MEDIAN_VARIANCE) else math.pi / (2 * r)
        return value, factor, within
    return mean, 1.0 / r, within


def run_spread(
    between: Array, nights: Array, factor: Array, within_ss: Array, within_df: Array
) -> tuple[Array, Array]:
    """Per row: one run's σ and its degrees of freedom, from the baseline's nights.

    ``between`` is the spread of the nightly values (from ``nights`` nights whose values
    have a mean variance ``factor`` in units of one run's), ``within_ss``/``within_df`` the
    runs' squared deviations around their night's mean. With one run a night this is the
    between-night spread alone (n − 1 degrees of freedom). With several, the two estimates
    of one run's variance are pooled (n − 1 + Σ(r − 1) degrees of freedom: 14 nights × 3
    runs give 41, and Student's t at 41 is far below t at 13) unless the nights vary more
    than the runs explain (F-test at ``POOL_P``)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        var_b = between**2 / factor
        df_b = nights - 1
        var_w = within_ss / within_df
        both = (within_df > 0) & (df_b > 0) & np.isfinite(var_b) & (var_w > 0)
        critical = np.full(between.shape, np.inf)
        if both.any():
            pairs, inverse = np.unique(
                np.stack([df_b[both], within_df[both]], axis=1), axis=0, return_inverse=True
            )
            from scipy import stats as sps

            critical[both] = sps.f.ppf(1 - POOL_P, pairs[:, 0], pairs[:, 1])[inverse.ravel()]
        pool = both & (var_b <= critical * var_w)
        pooled = (df_b * var_b + within_df * var_w) / (df_b + within_df)
        var = np.where(pool, pooled, var_b)
        dof = np.where(pool, df_b + within_df, df_b)
    return np.asarray(np.sqrt(var), dtype=np.float64), np.asarray(dof, dtype=np.float64)


def t_quantile(k: float, dof: Array) -> Array:
    """Student's t quantile at the normal quantile ``k`` for each row's degrees of freedom
    (at least 1), computed once per distinct value."""
    from scipy import stats as sps

    dof = np.maximum(np.nan_to_num(dof, nan=1.0), 1.0)
    levels, inverse = np.unique(dof, return_inverse=True)
    return np.asarray(sps.t.ppf(sps.norm.cdf(k), levels)[inverse.ravel()], dtype=np.float64)


def two_sample_p(x: Array, y: Array) -> Array:
    """min(KS p, Mann–Whitney U p) per row of x (B, n1) and y (B, n2); NaN pads rows
    that hold fewer samples (both tests two-sided, asymptotic).

    Both statistics come from one sort of each row's pooled samples: U counts, for every
    sample of x, the samples of y below it (ties count half); D is the largest gap between
    the two empirical CDFs. Without ties U's p equals ``scipy.stats.mannwhitneyu(method=
    "asymptotic")`` (continuity-corrected normal; no tie correction of its variance) and D
    equals ``ks_2samp``'s; the KS p is the Kolmogorov distribution (``scipy.special.
    kolmogorov``) with Stephens' correction. tests/regress/test_stats.py checks both."""
    if x.shape[0] == 0:
        return np.empty(0)
    from scipy import special
    from scipy import stats as sps

    n1 = (~np.isnan(x)).sum(axis=1).astype(np.float64)
    n2 = (~np.isnan(y)).sum(axis=1).astype(np.float64)
    joined = np.concatenate([x, y], axis=1)
    from_x = np.zeros(joined.shape, dtype=bool)
    from_x[:, : x.shape[1]] = True
    order = np.argsort(np.where(np.isnan(joined), np.inf, joined), axis=1, kind="stable")
    values = np.take_along_axis(joined, order, axis=1)
    is_x = np.take_along_axis(from_x, order, axis=1) & ~np.isnan(values)
    is_y = ~np.take_along_axis(from_x, order, axis=1) & ~np.isnan(values)
    with np.errstate(invalid="ignore", divide="ignore"):
        # Mann–Whitney U of x: y samples strictly below each x, plus half of the tied ones.
        y_below = np.cumsum(is_y, axis=1) - is_y
        tie_next = np.zeros_like(is_x)
        tie_next[:, :-1] = values[:, 1:] == values[:, :-1]
        u = np.where(is_x, y_below, 0).sum(axis=1) + 0.5 * _tied_pairs(values, is_x, is_y)
        mean = n1 * n2 / 2.0
        sd = np.sqrt(n1 * n2 * (n1 + n2 + 1) / 12.0)
        z = np.maximum(np.abs(u - mean) - 0.5, 0.0) / sd
        mwu = np.minimum(2.0 * sps.norm.sf(z), 1.0)
        # KS: judge the CDF gap only where the next value differs (ties move together).
        step = np.where(is_x, 1.0 / n1[:, None], np.where(is_y, -1.0 / n2[:, None], 0.0))
        gap = np.abs(np.cumsum(step, axis=1))
        d = np.max(np.where(tie_next, 0.0, gap), axis=1)
        root = np.sqrt(n1 * n2 / (n1 + n2))
        # Stephens' (1970) finite-sample correction of the Kolmogorov limit: within a few
        # % of scipy's exact-n kstwo, which costs ~0.3 ms per pair.
        ks = np.clip(special.kolmogorov((root + 0.12 + 0.11 / root) * d), 0.0, 1.0)
    return np.asarray(np.where((n1 > 0) & (n2 > 0), np.minimum(mwu, ks), np.nan), dtype=np.float64)


def _tied_pairs(values: Array, is_x: npt.NDArray[np.bool_], is_y: npt.NDArray[np.bool_]) -> Array:
    """Per row, the number of (x, y) pairs with equal values (rare in latency samples)."""
    tied = np.zeros(values.shape[0])
    rows = np.flatnonzero((values[:, 1:] == values[:, :-1]).any(axis=1))
    for r in rows:  # a Python loop, but only over rows that hold a tie
        xs, ys = values[r, is_x[r]], values[r, is_y[r]]
        shared, cx = np.unique(xs, return_counts=True)
        cy = np.array([np.count_nonzero(ys == v) for v in shared])
        tied[r] = float((cx * cy).sum())
    return tied


def mann_kendall(values: Array, times: Array) -> tuple[Array, Array, Array]:
    """Per row of ``values`` (S, W; NaN = no point): two-sided Mann–Kendall p, the
    Theil–Sen slope per unit of ``times`` (W,), and the number of points."""
    valid = ~np.isnan(values)
    n = valid.sum(axis=1).astype(np.float64)
    i, j = np.triu_indices(values.shape[1], k=1)
    both = valid[:, i] & valid[:, j]
    diff = values[:, j] - values[:, i]
    s = np.where(both, np.sign(diff), 0.0).sum(axis=1)
    var = n * (n - 1) * (2 * n + 5) / 18.0
    with np.errstate(invalid="ignore", divide="ignore"):
        # Continuity correction as in Mann (1945) / Kendall (1975).
        z = np.where(s > 0, s - 1, np.where(s < 0, s + 1, 0.0)) / np.sqrt(var)
        z = np.where(var > 0, z, 0.0)
        slopes = np.where(both, diff / (times[j] - times[i]), np.nan)
    from scipy import stats as sps

    p = 2.0 * sps.norm.sf(np.abs(z))
    slope = masked_median(np.nan_to_num(slopes), both)
    return np.asarray(p, dtype=np.float64), np.asarray(slope, dtype=np.float64), n
