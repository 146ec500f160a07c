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
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

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
        self.median = max(float(np.median(self.sorted)), LATENCY_FLOOR_MS)
        self._boot: FloatArray | None = None

    def bootstrap_medians(self) -> FloatArray:
        if self._boot is None:
            digest = hashlib.blake2b(self.sorted.tobytes(), digest_size=8).digest()
            rng = np.random.default_rng([self.seed, int.from_bytes(digest, "little")])
            n = self.sorted.size
            # On sorted samples the median of a resample is the value at the median of the
            # resampled indices: partitioning int32 indices is ~5× faster than np.median.
            idx = rng.integers(0, n, size=(BOOTSTRAP_RESAMPLES, n), dtype=np.int32)
            lo, hi = (n - 1) // 2, n // 2
            idx.partition(sorted({lo, hi}), axis=1)
            medians = (self.sorted[idx[:, lo]] + self.sorted[idx[:, hi]]) / 2.0
            self._boot = np.maximum(medians, LATENCY_FLOOR_MS)
        return self._boot


def _check(samples: Sequence[float], label: str) -> None:
    if len(samples) == 0:
        raise UsageError(f"no latency samples for {label}", hint="pass at least one sample")
    if not all(math.isfinite(x) and x >= 0 for x in samples):
        raise UsageError(
            f"latency samples for {label} must be finite and ≥ 0 ms",
            hint="drop failed or negative timings before comparing",
        )


def _ratio(a: _Samples, b: _Samples) -> tuple[float, float, float]:
    tail = (1.0 - CONFIDENCE) / 2.0 * 100.0
    log_ratios = np.log(a.bootstrap_medians()) - np.log(b.bootstrap_medians())
    low, high = np.percentile(log_ratios, [tail, 100.0 - tail])
    return a.median / b.median, math.exp(float(low)), math.exp(float(high))


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
        elif float(np.median(setting.latencies_ms)) <= 0.0:
            reasons.append(f"`{units}` has a median latency of 0 ms (timer too coarse)")
        else:
            usable[units] = _Samples(setting.latencies_ms, seed)
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
