"""The resampled medians of the timing bootstrap are drawn as a pair of order statistics
(orchestrator/verdict/timing.py): the pair must have the law of resampling the values
themselves, on both paths (the exact table up to EXACT_TABLE_MAX samples, Beta draws above).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from orchestrator.verdict import compare, timing
from orchestrator.verdict.timing import EXACT_TABLE_MAX, median_ranks
from tests.verdict.builders import samples


def _enumerated_law(n: int) -> np.ndarray:
    """P(low = a, high = b) over every one of the n^n resamples of indices 0..n−1."""
    counts = np.zeros(n * n)
    for draw in itertools.product(range(n), repeat=n):
        ordered = sorted(draw)
        counts[ordered[(n - 1) // 2] * n + ordered[n // 2]] += 1
    return counts / n**n


@pytest.mark.parametrize("n", range(1, 8))
def test_the_table_is_the_exact_law_of_the_two_middle_ranks(n: int) -> None:
    law = np.diff(timing._pair_law(n), prepend=0.0)
    assert law == pytest.approx(_enumerated_law(n), abs=1e-12)


def _brute(rng: np.random.Generator, n: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    idx = np.sort(rng.integers(0, n, size=(size, n)), axis=1)
    return idx[:, (n - 1) // 2], idx[:, n // 2]


@pytest.mark.parametrize("n", [2, 9, 40, 41])
def test_both_paths_draw_the_law_of_sorting_resampled_indices(
    n: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    size = 60_000
    rng = np.random.default_rng(n)
    table = median_ranks(rng, n, size)
    monkeypatch.setattr(timing, "EXACT_TABLE_MAX", 0)  # the Beta path for the same n
    beta = median_ranks(rng, n, size)
    brute = _brute(rng, n, size)
    expected = np.diff(timing._pair_law(n), prepend=0.0)
    for low, high in (table, beta, brute):
        assert (low <= high).all() and low.min() >= 0 and high.max() <= n - 1
        if n % 2:
            assert (low == high).all()
        seen = np.bincount(low * n + high, minlength=n * n) / size
        # Every cell within 5 standard errors of its exact probability.
        tolerance = 5 * np.sqrt(expected * (1 - expected) / size) + 1e-4
        assert (np.abs(seen - expected) <= tolerance).all()


def test_above_the_table_the_beta_draws_match_sorting_resampled_indices() -> None:
    n, size = EXACT_TABLE_MAX + 88, 4000
    rng = np.random.default_rng(3)
    low, high = median_ranks(rng, n, size)
    b_low, b_high = _brute(rng, n, size)
    for mine, theirs in ((low, b_low), (high, b_high), (high - low, b_high - b_low)):
        # Same mean and spread within sampling error (sd of a rank ≈ √n / 2 ≈ 12: the
        # difference of two means of 4,000 has an sd of ≈ 0.28).
        assert mine.mean() == pytest.approx(theirs.mean(), abs=1.5)
        assert mine.std() == pytest.approx(theirs.std(), rel=0.1, abs=0.05)


@pytest.mark.parametrize(
    ("n_a", "n_b", "resamples"),
    [(60, 80, 4000), (EXACT_TABLE_MAX + 300, EXACT_TABLE_MAX + 100, 2000)],
    ids=["tabulated law", "beta draws above the table"],
)
def test_the_interval_is_a_plain_resampling_bootstraps(n_a: int, n_b: int, resamples: int) -> None:
    # Resampling the values and taking np.median estimates the same interval: two
    # independent bootstraps agree within ~2 %, with either way of drawing the medians.
    a, b = samples(3.0, n_a, spread=0.1, seed=1), samples(3.6, n_b, spread=0.1, seed=2)
    _, low, high = compare(a, b, seed=0)
    rng = np.random.default_rng(99)
    xa, xb = np.asarray(a), np.asarray(b)
    ma = np.median(rng.choice(xa, size=(resamples, xa.size)), axis=1)
    mb = np.median(rng.choice(xb, size=(resamples, xb.size)), axis=1)
    plain_low, plain_high = np.percentile(np.log(ma / mb), [2.5, 97.5])
    assert low == pytest.approx(math.exp(plain_low), rel=0.02)
    assert high == pytest.approx(math.exp(plain_high), rel=0.02)


def test_the_interval_is_read_as_numpy_reads_type_7_percentiles() -> None:
    values = np.random.default_rng(5).normal(size=2000)
    low, high = timing._central_interval(values)
    expected = np.percentile(values, [2.5, 97.5])
    assert (low, high) == pytest.approx(tuple(expected), rel=1e-12)


def test_the_point_median_is_np_median() -> None:
    for n in (1, 2, 7, 10):
        values = samples(2.0, n, spread=0.2, seed=n)
        drawn = timing._Samples(values, 0)
        assert drawn.raw_median == float(np.median(values))
