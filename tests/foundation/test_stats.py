"""The shared percentile definition (type 7) and summaries."""

import math
import random

import numpy as np
import pytest

from orchestrator.stats import percentile, summarize


def test_matches_numpy_linear_interpolation():
    rng = random.Random(7)
    for n in (1, 2, 3, 10, 101, 1000):
        samples = sorted(rng.uniform(0.1, 50) for _ in range(n))
        for q in (0.0, 0.5, 0.9, 0.99, 1.0):
            assert percentile(samples, q) == pytest.approx(float(np.percentile(samples, q * 100)))


def test_summary_fields_and_sample_std():
    s = summarize([4.0, 1.0, 3.0, 2.0])
    assert (s["min"], s["max"], s["mean"], s["count"]) == (1.0, 4.0, 2.5, 4)
    assert s["std"] == pytest.approx(math.sqrt(5 / 3))
    assert s["p50"] == 2.5
    assert s["p90"] == pytest.approx(3.7)


def test_single_sample_has_zero_std():
    s = summarize([3.0])
    assert s["std"] == 0.0 and s["p99"] == 3.0


@pytest.mark.parametrize("bad", [[], None])
def test_no_samples_is_an_error(bad):
    with pytest.raises((ValueError, TypeError)):
        summarize(bad)


def test_quantile_out_of_range():
    with pytest.raises(ValueError):
        percentile([1.0], 1.5)
