"""Prefix search (issue 21 item 2, no cause named): prefixes bracket where work starts
leaving the ANE; an op is named only when the bracket leaves no other candidate."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from agents.devices.simulation.placement import CAUSE
from bench.packed_probes import PackedFarm
from bench.seeded_models import random_model
from orchestrator import modelkit
from orchestrator.bisect import context as context_search
from orchestrator.bisect.mapping import OpByProbe
from orchestrator.bisect.placement import UNKNOWN
from orchestrator.bisect.prefix_search import conclude, lengths
from orchestrator.bisect.window_reading import (
    LEAVES,
    ON_ANE,
    WindowReading,
    read_leaving,
)
from tests.bisect.packed_farms import bisect_on, truly_off_ane
from tests.verdict.builders import ane_gpu_paths


def _op(index: int, unit: str = "neuralEngine", status: str = "placed") -> OpByProbe:
    return OpByProbe(index, f"op{index}", "conv", unit, status, 0.9, "")


def _unplaced(index: int) -> OpByProbe:
    return _op(index, "unknown", "inconclusive")


def _read(**by_length: str) -> dict[int, WindowReading]:
    return {int(k[1:]): WindowReading(v, f"{v} at {k}") for k, v in by_length.items()}


@pytest.mark.parametrize("n", [2, 5, 12, 28, 100, 400])
def test_a_search_cuts_at_most_two_log2_n_prefixes_of_the_model_in_one_round(n: int) -> None:
    cut = lengths(n)
    assert cut and len(cut) <= 2 * math.ceil(math.log2(n))
    assert cut == sorted(set(cut)) and cut[0] >= 1 and cut[-1] <= n - 1
    if n - 1 > len(cut):  # spread evenly: no gap far wider than the others
        gaps = [b - a for a, b in zip([0, *cut], [*cut, n], strict=True)]
        assert max(gaps) <= 2 * math.ceil(n / len(cut))
    assert lengths(1) == []


def test_the_one_op_not_placed_alone_in_the_bracket_is_the_cause() -> None:
    placed = [_op(0), _op(1), _op(2), _unplaced(3), _op(4), _op(5), _unplaced(6), _op(7)]
    # Prefixes of 2 and 3 ops stay on the ANE, the first 5 leave (op 3 or 4: op 4 ran on
    # the ANE alone), so does 7, and the whole model.
    outcome = conclude(placed, _read(k2=ON_ANE, k3=ON_ANE, k5=LEAVES, k7=LEAVES))
    assert outcome.cause == 3
    assert "the first 5 ops do not run on the ANE" in outcome.why
    assert "only it did not run on the ANE alone" in outcome.why
    assert "op3" in outcome.note and "the cause" in outcome.note


def test_a_bracket_with_two_candidates_names_the_stretch_and_no_op() -> None:
    placed = [_op(0), _unplaced(1), _unplaced(2), _op(3), _op(4)]
    outcome = conclude(placed, _read(k1=ON_ANE, k4=LEAVES))
    assert outcome.cause is None and outcome.suspects == (1, 2)
    assert "the first 4 ops" in outcome.note and "moved, cause not isolated" in outcome.note


def test_a_bracket_of_ops_that_all_ran_on_the_ane_alone_names_no_op() -> None:
    # The case of the issue: every probe on the ANE, the model not by its timing.
    placed = [_op(i) for i in range(6)]
    outcome = conclude(placed, _read(k2=ON_ANE, k4=LEAVES))
    assert outcome.cause is None
    assert "ops 2–3" in outcome.note and "cause not isolated" in outcome.note
    # No prefix leaves: the whole model does (its own timing), the bracket is the tail.
    outcome = conclude(placed, _read(k2=ON_ANE, k4=ON_ANE))
    assert outcome.cause is None and "ops 4–5" in outcome.note


@pytest.mark.parametrize(
    "readings",
    [
        {"k2": LEAVES, "k4": ON_ANE},  # not monotone: a reading is wrong somewhere
        {"k2": UNKNOWN, "k4": UNKNOWN},  # nothing read
    ],
)
def test_readings_that_cannot_be_trusted_name_nothing(readings: dict[str, str]) -> None:
    placed = [_op(0), _op(1), _unplaced(2), _op(3), _op(4), _op(5)]
    outcome = conclude(placed, _read(**readings))
    assert outcome.cause is None and "cause not isolated" in outcome.note


def test_a_prefix_on_the_ane_does_not_clear_an_op_not_placed_alone() -> None:
    placed = [_op(0), _unplaced(1), _op(2), _unplaced(3), _op(4), _op(5)]
    outcome = conclude(placed, _read(k2=UNKNOWN, k4=LEAVES))
    assert outcome.cause is None and outcome.suspects == (1, 3)
    # Prefix 2 on the ANE: op 1 may still be a cause as cheap on the GPU as on the CPU
    # (`all` then takes as long as `cpuAndNeuralEngine`): it stays a suspect.
    outcome = conclude(placed, _read(k2=ON_ANE, k4=LEAVES))
    assert outcome.cause is None and outcome.suspects == (1, 3)
    # A prefix that leaves sooner decides it.
    outcome = conclude(placed, _read(k2=LEAVES, k4=LEAVES))
    assert outcome.cause == 1
    # Ops that ran on the ANE alone are bounded by the prefixes that stay.
    placed = [_op(i) for i in range(6)]
    outcome = conclude(placed, _read(k2=UNKNOWN, k4=LEAVES))
    assert outcome.cause is None and outcome.suspects == (0, 1, 2, 3) and "ops 0–3" in outcome.note


@pytest.mark.parametrize(
    ("under_all", "spread", "expected"),
    [
        (4.0, 0.01, ON_ANE),  # `all` is the ANE path
        (1.0, 0.01, LEAVES),  # `all` takes another path (the GPU's)
        (4.6, 0.01, LEAVES),  # slower than the ANE path: still another path
        (4.0, 0.3, UNKNOWN),  # too noisy for the ±4 % band
    ],
)
def test_a_prefix_is_read_from_all_against_the_ane_path(
    under_all: float, spread: float, expected: str
) -> None:
    reading = read_leaving(ane_gpu_paths(under_all, spread=spread))
    assert reading.verdict == expected, reading.reason


# A small seeded model (bench/context_search.py, small=True) whose one cause, a 15×15 max
# pooling, is too small for its own probe to time on the SIMULATED XR: no cause placed by
# probe, and the model's `all` is not its ANE path.
SMALL_CAUSE_SEED = 3012


def test_prefixes_isolate_a_cause_no_probe_placed_and_name_nothing_wrongly(
    tmp_path: Path, xr: PackedFarm, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The model's own timing often shows all of it on the GPU path, which names its roles
    # with no probe (context.start): without that shortcut, the search must find the cause.
    monkeypatch.setattr(context_search, "whole_model", lambda verdict: None)
    model = random_model(tmp_path / "small.mlpackage", SMALL_CAUSE_SEED, small=True)
    ops = modelkit.inspect_model(model).ops
    expected = truly_off_ane(model)
    bisected = bisect_on(xr, model)
    row, context = bisected.row, bisected.context
    cause = next(name for name, (role, _) in expected.items() if role == CAUSE)
    assert cause.startswith("bigpool")
    # Its probe did not place it (too small to time): the prefixes did.
    reasons = bisected.probe_reasons()
    assert reasons[cause].startswith("off the ANE: found by prefix search"), reasons[cause]
    notes = [r for r in row.reasons if r.startswith("context search: prefix search")]
    assert notes and f"work leaves the ANE at {cause}" in notes[0], row.reasons
    named = bisected.named_by_probe()
    assert named[cause] == (CAUSE, None)
    assert {name: expected.get(name) for name in named} == named  # none named wrongly
    # Bounded: one round of prefixes, at most 2 ⌈log2 n⌉ of them.
    prefixes = [w for w in context["windows"] if w.get("prefix")]
    assert 1 <= len(prefixes) <= 2 * math.ceil(math.log2(len(ops)))
