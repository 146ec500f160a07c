"""Latency statistics with one percentile definition, shared with the Swift runner.

Percentile: linear interpolation between closest ranks on the sorted samples
(rank = q × (n − 1); Hyndman & Fan type 7, numpy's default). Standard deviation: sample
(n − 1) form, 0 for a single sample. ``ios-runner/Fixtures/stats-vectors.json`` holds test
vectors that pytest and ``swift test`` both check, so the two sides cannot drift.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(sorted_samples: Sequence[float], q: float) -> float:
    """The q-quantile (0 ≤ q ≤ 1) of already sorted samples."""
    if not sorted_samples:
        raise ValueError("percentile of no samples")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile {q} outside [0, 1]")
    rank = q * (len(sorted_samples) - 1)
    low = math.floor(rank)
    high = math.ceil(rank)
    fraction = rank - low
    return sorted_samples[low] + (sorted_samples[high] - sorted_samples[low]) * fraction


def summarize(samples: Sequence[float]) -> dict[str, float | int]:
    """min, max, mean, std, p50, p90, p99 and count of latency samples (ms)."""
    if not samples:
        raise ValueError("no samples to summarize")
    ordered = sorted(samples)
    count = len(ordered)
    mean = math.fsum(ordered) / count
    var = math.fsum((x - mean) ** 2 for x in ordered) / (count - 1) if count > 1 else 0.0
    return {
        "count": count,
        "min": ordered[0],
        "max": ordered[-1],
        "mean": mean,
        "std": math.sqrt(var),
        "p50": percentile(ordered, 0.50),
        "p90": percentile(ordered, 0.90),
        "p99": percentile(ordered, 0.99),
    }
