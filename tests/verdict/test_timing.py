"""The bootstrap comparison of two settings and the signature read from four."""

from __future__ import annotations

import math

import numpy as np
import pytest

from orchestrator.errors import UsageError
from orchestrator.stats import percentile
from orchestrator.verdict import EQUIVALENCE, Relation, compare, relation
from orchestrator.verdict.timing import Signature, read_timing
from tests.verdict.builders import (
    ALL,
    ANE_UNUSED,
    ANE_USED,
    CPU,
    GPU,
    NE,
    failed,
    result,
    samples,
    setting,
    signature,
)


def test_noisy_overlapping_samples_are_indistinguishable() -> None:
    # Same path, 8 % jitter: the medians differ by noise only.
    ratio, low, high = compare(
        samples(4.0, 200, spread=0.08, seed=1), samples(4.0, 200, spread=0.08, seed=2), seed=0
    )
    assert low <= ratio <= high
    assert relation(low, high) is Relation.EQUIVALENT
    assert EQUIVALENCE[0] <= low and high <= EQUIVALENCE[1]


def test_clearly_separated_samples_are_not_indistinguishable() -> None:
    ratio, low, high = compare(samples(2.0, 50, seed=1), samples(5.0, 50, seed=2), seed=0)
    assert ratio == pytest.approx(0.4, rel=0.03)
    assert high < EQUIVALENCE[0]
    assert relation(low, high) is Relation.FASTER
    assert relation(1 / high, 1 / low) is Relation.SLOWER


def test_a_small_noisy_sample_is_unresolved_not_called_equal() -> None:
    # 6 samples with 30 % jitter cannot show that two settings are within ±10 %.
    _ratio, low, high = compare(
        samples(4.0, 6, spread=0.3, seed=1), samples(4.2, 6, spread=0.3, seed=2), seed=0
    )
    assert relation(low, high) is Relation.UNRESOLVED


@pytest.mark.parametrize("seed", range(6))
def test_swapping_a_and_b_inverts_ratio_and_interval(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = samples(float(rng.uniform(1, 10)), int(rng.integers(5, 120)), spread=0.1, seed=seed)
    b = samples(float(rng.uniform(1, 10)), int(rng.integers(5, 120)), spread=0.2, seed=seed + 100)
    ratio, low, high = compare(a, b, seed=seed)
    back, back_low, back_high = compare(b, a, seed=seed)
    assert back == pytest.approx(1 / ratio, rel=1e-12)
    assert back_low == pytest.approx(1 / high, rel=1e-12)
    assert back_high == pytest.approx(1 / low, rel=1e-12)
    assert relation(back_low, back_high) is {
        Relation.FASTER: Relation.SLOWER,
        Relation.SLOWER: Relation.FASTER,
    }.get(relation(low, high), relation(low, high))


def test_ratio_is_the_ratio_of_type_7_medians_for_even_and_odd_counts() -> None:
    a, b = samples(3.0, 40, seed=1), samples(5.0, 41, seed=2)
    ratio, _, _ = compare(a, b, seed=0)
    assert ratio == pytest.approx(percentile(sorted(a), 0.5) / percentile(sorted(b), 0.5))


def test_deterministic_for_a_seed_and_blind_to_sample_order() -> None:
    a, b = samples(3.0, 30, spread=0.1, seed=1), samples(3.3, 30, spread=0.1, seed=2)
    first = compare(a, b, seed=7)
    assert compare(a, b, seed=7) == first
    assert compare(list(reversed(a)), b, seed=7) == first
    other = compare(a, b, seed=8)
    assert other[0] == first[0]  # the point ratio does not resample
    assert other[1:] != first[1:]


@pytest.mark.parametrize(
    ("a", "b", "seed", "words"),
    [
        ([], [1.0], 0, "no latency samples"),
        ([1.0, float("nan")], [1.0], 0, "finite"),
        ([1.0, -2.0], [1.0], 0, "≥ 0"),
        ([1.0], [float("inf")], 0, "finite"),
        ([1.0], [1.0], -1, "negative"),
    ],
)
def test_bad_samples_are_refused_with_a_clear_error(
    a: list[float], b: list[float], seed: int, words: str
) -> None:
    with pytest.raises(UsageError, match=words) as caught:
        compare(a, b, seed=seed)
    assert "\n" not in caught.value.one_line() and caught.value.hint


def test_zero_latencies_keep_ratios_finite() -> None:
    ratio, low, high = compare([0.0] * 5 + [1.0] * 6, [1.0] * 11, seed=0)
    assert all(math.isfinite(x) and x > 0 for x in (ratio, low, high))


def test_the_four_comparisons_in_a_fixed_order() -> None:
    timing = read_timing(result(signature(ANE_USED)), seed=0)
    assert [(c.a, c.b) for c in timing.comparisons] == [
        (ALL, GPU),
        (NE, CPU),
        (ALL, CPU),
        (ALL, NE),
    ]
    assert timing.signature is Signature.ANE_USED
    pair = timing.find(ALL, NE)
    assert pair is not None and pair.indistinguishable


def test_signature_of_an_idle_ane() -> None:
    timing = read_timing(result(signature(ANE_UNUSED)), seed=0)
    assert timing.signature is Signature.ANE_UNUSED
    assert "not doing the work" in timing.reasons[0]


def test_a_failed_setting_and_a_short_one_are_named() -> None:
    settings = [setting(ALL, samples(2.0)), failed(GPU, "GPU ran out of memory"),
                setting(NE, samples(2.0, 3)), setting(CPU, samples(20.0))]  # fmt: skip
    timing = read_timing(result(settings), seed=0)
    assert timing.signature is Signature.UNKNOWN
    assert [(c.a, c.b) for c in timing.comparisons] == [(ALL, CPU)]
    why = timing.reasons[0]
    assert "`cpuAndGPU` failed (load: GPU ran out of memory)" in why
    assert "`cpuAndNeuralEngine` has 3 samples, fewer than 5" in why


def test_a_setting_measured_under_another_seed_keeps_its_own_bootstrap() -> None:
    # A setting's interval depends on its samples and the seed, not on which others exist.
    full = read_timing(result(signature(ANE_USED)), seed=3)
    fewer = read_timing(result(signature(ANE_USED)[:3]), seed=3)
    assert full.find(ALL, GPU) == fewer.find(ALL, GPU)
