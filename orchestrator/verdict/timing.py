"""Timing evidence: two compute-units settings compared by a seeded bootstrap interval of
the ratio of their median latencies, and what the four-setting signature says about the ANE.

Definitions (the numbers are named constants below):

* ratio — median(a) ÷ median(b), medians as in ``orchestrator.stats`` (type 7).
* interval — percentile bootstrap: each setting's samples are resampled with replacement
  ``BOOTSTRAP_RESAMPLES`` times, the ratio of the resampled medians is taken, and the
  ``CONFIDENCE`` central interval is read on log(ratio), so that swapping a and b gives
  exactly the reciprocal ratio and interval.
* indistinguishable — the whole interval lies inside the equivalence band
  [1 / EQUIVALENCE_MARGIN, EQUIVALENCE_MARGIN] (symmetric in log space for the same reason).
* faster / slower — the whole interval lies below / above the band.
* unresolved — the interval straddles an edge of the band: more samples would tell.

Resampling is deterministic: each setting draws from a generator seeded with the caller's
seed and a digest of its own sorted samples, so a setting's bootstrap does not depend on
which other settings were measured or on the order of arguments.

How a resample's median is drawn (ingest computes a verdict per result, so this is on the
coordinator's path; docs/performance.md): the median of n values resampled with
replacement from n sorted values is the mean of the values at two order statistics
(ranks lo, hi) of n draws of an index uniform on 0..n−1, and the law of that pair of
indices depends on n alone. So instead of drawing n indices per resample and partitioning
them (O(n) per resample: 2,000 × n integers), each resample draws the pair at once:

* n ≤ ``EXACT_TABLE_MAX``: from the exact joint law of the pair, tabulated once per n
  (``_pair_law``), by inverse transform of one uniform per resample;
* larger n: as the order statistics of n continuous uniforms U scaled by n and floored
  (floor(n·U) is uniform on 0..n−1 and monotone, so it keeps their order): U_(lo+1) ~
  Beta(lo+1, n−lo), and U_(hi) is U_(lo+1) plus (1 − U_(lo+1)) × the least of the n−lo−1
  uniforms above it (1 − V^(1/(n−lo−1))).

Both give the same statistic, with the same law, as resampling the values themselves
(tests/verdict/test_bootstrap_draws.py checks them against exhaustive enumeration and a
plain resampling bootstrap); only the random stream differs from the earlier partition
of 2,000 × n indices.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from orchestrator.errors import UsageError
from orchestrator.protocol import ComputeUnits, RunnerResult, TimingComparison

BOOTSTRAP_RESAMPLES = 2000
CONFIDENCE = 0.95
# Settings within ±10 % (in log space) of each other count as the same execution path:
# device timing jitter after warm-up is a few per cent, an ANE/GPU/CPU switch is rarely < 20 %.
EQUIVALENCE_MARGIN = 1.10
EQUIVALENCE = (1.0 / EQUIVALENCE_MARGIN, EQUIVALENCE_MARGIN)
MIN_SAMPLES = 5
# Below a nanosecond a latency is timer noise; the floor keeps every ratio finite and > 0.
LATENCY_FLOOR_MS = 1e-6
# Up to this many samples a setting's resampled medians are drawn from the exact law of
# their two order statistics, tabulated once per sample count (n × n floats: 0.5 MB at 256;
# 32 counts kept at most).
EXACT_TABLE_MAX = 256

ALL, CPU_NE, CPU_GPU, CPU_ONLY = (
    ComputeUnits.ALL,
    ComputeUnits.CPU_AND_NE,
    ComputeUnits.CPU_AND_GPU,
    ComputeUnits.CPU_ONLY,
)
# Which pairs a verdict compares, in the order they are stored.
COMPARISONS: tuple[tuple[ComputeUnits, ComputeUnits], ...] = (
    (ALL, CPU_GPU),  # does `all` do anything the GPU path does not?
    (CPU_NE, CPU_ONLY),  # does the ANE do the work when it is allowed to?
    (ALL, CPU_ONLY),  # the speed-up a user gets from the default setting
    (ALL, CPU_NE),  # does anything besides the ANE help under `all`?
)

FloatArray = npt.NDArray[np.float64]


class Relation(StrEnum):
    """How setting a relates to setting b, read from the interval of median(a)/median(b)."""

    EQUIVALENT = "indistinguishable"
    FASTER = "faster"
    SLOWER = "slower"
    UNRESOLVED = "unresolved"


class Signature(StrEnum):
    """What the timing signature says about the ANE under `all`."""

    ANE_USED = "ane_used"
    ANE_UNUSED = "ane_unused"
    GPU_UNDER_ALL = "gpu_under_all"  # the ANE works when forced, but `all` takes the GPU
    UNKNOWN = "unknown"


class _Samples:
    """One setting's sorted latencies with a lazily drawn bootstrap of its median."""

    def __init__(self, values: Sequence[float], seed: int) -> None:
        self.sorted: FloatArray = np.sort(np.asarray(values, dtype=np.float64))
        self.seed = seed
        n = self.sorted.size
        # np.median of sorted values without its overhead (the same float: the mean of
        # the two middle values, or the middle one).
        self.raw_median = float((self.sorted[(n - 1) // 2] + self.sorted[n // 2]) / 2.0)
        self.median = max(self.raw_median, LATENCY_FLOOR_MS)
        self._log_boot: FloatArray | None = None

    def bootstrap_medians(self) -> FloatArray:
        return np.exp(self.log_bootstrap_medians())

    def log_bootstrap_medians(self) -> FloatArray:
        """log of ``BOOTSTRAP_RESAMPLES`` resampled medians (each setting takes part in up
        to three comparisons: drawn and logged once)."""
        if self._log_boot is None:
            digest = hashlib.blake2b(self.sorted.tobytes(), digest_size=8).digest()
            rng = np.random.default_rng([self.seed, int.from_bytes(digest, "little")])
            low, high = median_ranks(rng, self.sorted.size, BOOTSTRAP_RESAMPLES)
            medians = (self.sorted[low] + self.sorted[high]) / 2.0
            self._log_boot = np.log(np.maximum(medians, LATENCY_FLOOR_MS))
        return self._log_boot


def median_ranks(
    rng: np.random.Generator, n: int, size: int
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """For ``size`` resamples of n sorted values: the indices whose values' mean is each
    resample's median (equal for odd n). Same law as sorting n uniform indices 0..n−1 and
    taking ranks (n−1)//2 and n//2; O(size), whatever n (module docstring)."""
    if n <= EXACT_TABLE_MAX:
        cdf = _pair_law(n)
        cell = np.minimum(np.searchsorted(cdf, rng.random(size), side="right"), cdf.size - 1)
        low, high = np.divmod(cell, n)
        return low, high
    lo = (n - 1) // 2
    u_low = rng.beta(lo + 1, n - lo, size=size)
    low = np.minimum((u_low * n).astype(np.intp), n - 1)
    if n % 2:
        return low, low
    above = n - lo - 1  # uniforms above U_(lo+1); the least of them is U_(hi)
    u_high = u_low + (1.0 - u_low) * (1.0 - rng.random(size) ** (1.0 / above))
    return low, np.minimum((u_high * n).astype(np.intp), n - 1)


@lru_cache(maxsize=32)
def _pair_law(n: int) -> FloatArray:
    """The cumulative law of (low, high) — flattened as low × n + high — of the ranks
    k−1 = (n−1)//2 and n//2 of n draws uniform on 0..n−1.

    With C(a) the number of draws ≤ a (binomial, n, (a+1)/n): low ≤ a ⟺ C(a) ≥ k and
    high ≤ b ⟺ C(b) ≥ k+1 (even n; high = low for odd n). For a ≤ b,
    P(low ≤ a, high ≤ b) = P(C(a) ≥ k+1) + P(C(a) = k) · (1 − ((n−1−b)/(n−1−a))^(n−k)):
    given C(a) = k, the other n−k draws are uniform on a+1..n−1 and none may be ≤ b. The
    point probabilities are the joint CDF's second differences."""
    k = (n - 1) // 2 + 1
    a = np.arange(n, dtype=np.float64)
    p = (a + 1.0) / n
    c = np.arange(n + 1, dtype=np.float64)
    log_fact = np.concatenate(([0.0], np.cumsum(np.log(np.arange(1, n + 1, dtype=np.float64)))))
    log_choose = log_fact[n] - log_fact - log_fact[::-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        log_pmf = log_choose + np.outer(np.log(p), c) + np.outer(np.log1p(-p), n - c)
    pmf = np.exp(np.nan_to_num(log_pmf, nan=-np.inf))
    pmf[n - 1] = 0.0
    pmf[n - 1, n] = 1.0  # (a+1)/n = 1: every draw is ≤ n−1
    at_least_k = pmf[:, k:].sum(axis=1)
    if n % 2:  # one middle rank: its law on the diagonal
        joint = np.zeros((n, n))
        np.fill_diagonal(joint, np.diff(at_least_k, prepend=0.0))
    else:
        exactly_k, more = pmf[:, k], pmf[:, k + 1 :].sum(axis=1)
        aa, bb = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        first, second = np.minimum(aa, bb), bb  # G(a, b) = G(b, b) for a > b
        with np.errstate(divide="ignore", invalid="ignore"):
            none_le_b = ((n - 1 - second) / (n - 1 - first)) ** (n - k)
        none_le_b = np.where(first == n - 1, 1.0, none_le_b)
        cdf2 = more[first] + exactly_k[first] * (1.0 - none_le_b)
        padded = np.zeros((n + 1, n + 1))
        padded[1:, 1:] = cdf2
        joint = padded[1:, 1:] - padded[:-1, 1:] - padded[1:, :-1] + padded[:-1, :-1]
    cdf: FloatArray = np.cumsum(np.maximum(joint, 0.0).ravel())
    cdf /= cdf[-1]
    cdf.flags.writeable = False
    return cdf


def _check(samples: Sequence[float], label: str) -> None:
    if len(samples) == 0:
        raise UsageError(f"no latency samples for {label}", hint="pass at least one sample")
    if not all(math.isfinite(x) and x >= 0 for x in samples):
        raise UsageError(
            f"latency samples for {label} must be finite and ≥ 0 ms",
            hint="drop failed or negative timings before comparing",
        )


def _ratio(a: _Samples, b: _Samples) -> tuple[float, float, float]:
    log_ratios = a.log_bootstrap_medians() - b.log_bootstrap_medians()
    low, high = _central_interval(log_ratios)
    return a.median / b.median, math.exp(low), math.exp(high)


def _central_interval(values: FloatArray) -> tuple[float, float]:
    """The ``CONFIDENCE`` central interval of ``values``: their type-7 percentiles (numpy's
    default, as ``orchestrator.stats``), read from a partition instead of np.percentile
    (a sort, and ~6× its cost on 2,000 values)."""
    tail = (1.0 - CONFIDENCE) / 2.0
    last = values.size - 1
    ranks = (tail * last, (1.0 - tail) * last)
    floors = [math.floor(r) for r in ranks]
    around = sorted({i for f in floors for i in (f, min(f + 1, last))})
    part = np.partition(values, around)
    low, high = (
        float(part[f] + (part[min(f + 1, last)] - part[f]) * (r - f))
        for f, r in zip(floors, ranks, strict=True)
    )
    return low, high


def compare(a: Sequence[float], b: Sequence[float], *, seed: int) -> tuple[float, float, float]:
    """Median ratio a/b and its bootstrap confidence interval (ratio, low, high)."""
    if seed < 0:
        raise UsageError(f"bootstrap seed {seed} is negative", hint="use a seed ≥ 0")
    _check(a, "a")
    _check(b, "b")
    return _ratio(_Samples(a, seed), _Samples(b, seed))


def relation(low: float, high: float) -> Relation:
    """Read an interval of median(a)/median(b) against the equivalence band."""
    if EQUIVALENCE[0] <= low and high <= EQUIVALENCE[1]:
        return Relation.EQUIVALENT
    if high < EQUIVALENCE[0]:
        return Relation.FASTER
    if low > EQUIVALENCE[1]:
        return Relation.SLOWER
    return Relation.UNRESOLVED


def describe(c: TimingComparison) -> str:
    return f"`{c.a}`/`{c.b}` = {c.ratio:.2f} (95 % CI {c.low:.2f}–{c.high:.2f})"


@dataclass
class TimingEvidence:
    comparisons: list[TimingComparison]
    signature: Signature
    # `all` differs from `cpuAndNeuralEngine`: something besides the ANE changes `all`.
    other_units_under_all: bool = False
    reasons: list[str] = field(default_factory=list)

    def find(self, a: ComputeUnits, b: ComputeUnits) -> TimingComparison | None:
        return next((c for c in self.comparisons if c.a == a and c.b == b), None)


def _usable(result: RunnerResult, seed: int, reasons: list[str]) -> dict[ComputeUnits, _Samples]:
    usable: dict[ComputeUnits, _Samples] = {}
    measured = {s.compute_units: s for s in result.settings}
    for units in ComputeUnits:
        setting = measured.get(units)
        if setting is None:
            reasons.append(f"`{units}` was not measured")
        elif setting.error is not None:
            reasons.append(f"`{units}` failed ({setting.error.kind}: {setting.error.message})")
        elif len(setting.latencies_ms) < MIN_SAMPLES:
            reasons.append(
                f"`{units}` has {len(setting.latencies_ms)} samples, fewer than {MIN_SAMPLES}"
            )
        elif (samples := _Samples(setting.latencies_ms, seed)).raw_median <= 0.0:
            reasons.append(f"`{units}` has a median latency of 0 ms (timer too coarse)")
        else:
            usable[units] = samples
    return usable


def pairwise(
    result: RunnerResult,
    pairs: Sequence[tuple[ComputeUnits, ComputeUnits]],
    *,
    seed: int,
    gaps: list[str] | None = None,
) -> list[TimingComparison]:
    """The comparisons of ``pairs`` whose two settings were both usable; why the others
    were not goes into ``gaps``."""
    usable = _usable(result, seed, gaps if gaps is not None else [])
    comparisons = []
    for a, b in pairs:
        if a in usable and b in usable:
            ratio, low, high = _ratio(usable[a], usable[b])
            same = relation(low, high) is Relation.EQUIVALENT
            comparisons.append(
                TimingComparison(a=a, b=b, ratio=ratio, low=low, high=high, indistinguishable=same)
            )
    return comparisons


def read_timing(result: RunnerResult, *, seed: int) -> TimingEvidence:
    """Compare the measured settings and read the ANE signature from them."""
    gaps: list[str] = []
    comparisons = pairwise(result, COMPARISONS, seed=seed, gaps=gaps)
    evidence = TimingEvidence(comparisons, Signature.UNKNOWN)
    _read_signature(evidence, gaps)
    return evidence


def _rel(evidence: TimingEvidence, a: ComputeUnits, b: ComputeUnits) -> Relation | None:
    c = evidence.find(a, b)
    return None if c is None else relation(c.low, c.high)


def _read_signature(ev: TimingEvidence, gaps: list[str]) -> None:
    g, n = _rel(ev, ALL, CPU_GPU), _rel(ev, CPU_NE, CPU_ONLY)
    c, e = _rel(ev, ALL, CPU_ONLY), _rel(ev, ALL, CPU_NE)
    same = Relation.EQUIVALENT
    said = "; ".join(describe(x) for x in ev.comparisons)
    if g is None or n is None:
        why = "; ".join(gaps) or "a comparison is missing"
        ev.reasons.append(
            f"timing cannot tell: it needs `all` vs `cpuAndGPU` and `cpuAndNeuralEngine` vs `cpuOnly` ({why})"
        )
        return
    if Relation.UNRESOLVED in (g, n):
        ev.reasons.append(
            f"timing cannot tell: an interval straddles the ±{EQUIVALENCE_MARGIN - 1:.0%} band ({said});"
            " more iterations would narrow it"
        )
        return
    ev.other_units_under_all = e in (Relation.FASTER, Relation.SLOWER)
    if g is same and n is same:
        if c is same:
            # Every path is equally fast: the model is too small (or too overhead-bound) for
            # its placement to show in latency at all.
            ev.reasons.append(f"timing cannot tell: all four settings are equally fast ({said})")
            return
        ev.signature = Signature.ANE_UNUSED
        ev.reasons.append(
            f"timing: `all` ≈ `cpuAndGPU` and `cpuAndNeuralEngine` ≈ `cpuOnly`, so the ANE is not doing the work ({said})"
        )
    elif g is not same and n is not same:
        ev.signature = Signature.ANE_USED
        ev.reasons.append(
            f"timing: `cpuAndNeuralEngine` is {n} than `cpuOnly` and `all` is {g} than `cpuAndGPU`, so the ANE does work under `all` ({said})"
        )
    elif g is same:
        if e is same:
            ev.reasons.append(
                f"timing cannot tell: `all` matches both `cpuAndGPU` and `cpuAndNeuralEngine`, the GPU and ANE paths are equally fast ({said})"
            )
            return
        ev.signature = Signature.GPU_UNDER_ALL
        ev.reasons.append(
            f"timing: Core ML prefers the GPU under `all`: `all` ≈ `cpuAndGPU` although `cpuAndNeuralEngine` is {n} than `cpuOnly` ({said});"
            " setting computeUnits to cpuAndNeuralEngine would use the ANE"
        )
    else:
        ev.reasons.append(
            f"timing cannot tell: `all` differs from `cpuAndGPU` but `cpuAndNeuralEngine` ≈ `cpuOnly`, which no placement explains ({said})"
        )
