"""Prefix search in rounds (issue 21 item 2): each round cuts its prefixes inside the bracket
the rounds before left, until one op is left or the round cap; readings out of order name
nothing; a bracket left at the cap is reported "not isolated"; the cause found gets its
carried neighbours named from windows cut beside it."""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from agents.devices.simulation.placement import CARRIED, CAUSE
from bench.packed_probes import PackedFarm
from bench.seeded_models import hidden_cause_model
from orchestrator import modelkit
from orchestrator.bisect import context as context_search
from orchestrator.bisect import prefix_search
from orchestrator.bisect.mapping import NOT_ISOLATED, OpByProbe, OpRef, redo_with_roles
from orchestrator.bisect.placement import UNKNOWN
from orchestrator.bisect.prefix_search import conclude, lengths, max_rounds, next_lengths, per_round
from orchestrator.bisect.window_reading import LEAVES, ON_ANE, WindowReading
from orchestrator.protocol import (
    ComputeUnit,
    EvidenceSource,
    OpOffAne,
    Verdict,
    VerdictKind,
)
from orchestrator.render import csv_line, print_table
from orchestrator.report_rows import Report
from tests.bisect.packed_farms import bisect_on, truly_off_ane


def _on_ane(n: int) -> list[OpByProbe]:
    # The case: every op ran on the ANE alone, so no op of a bracket stands out.
    return [OpByProbe(i, f"op{i}", "conv", "neuralEngine", "placed", 0.9, "") for i in range(n)]


def _search(
    n: int, leaves: Callable[[int], str]
) -> tuple[dict[int, WindowReading], list[list[int]]]:
    """Run the rounds against ``leaves(k)`` (the reading of the prefix of ``k`` ops)."""
    placed = _on_ane(n)
    readings: dict[int, WindowReading] = {}
    rounds: list[list[int]] = []
    cut = lengths(n)
    while cut:
        rounds.append(cut)
        readings |= {k: WindowReading(leaves(k), "") for k in cut}
        cut = next_lengths(placed, readings, rounds)
    return readings, rounds


def test_a_round_cuts_inside_the_bracket_and_the_cap_is_log_k_n_plus_one() -> None:
    assert per_round(100) == 4 and max_rounds(100) == 5  # ⌈log4 100⌉ + 1
    assert per_round(3) == 4 and per_round(2) == 2  # never more than 2 ⌈log2 n⌉
    assert lengths(100, 42, 46) == [43, 44, 45]  # fewer than k inside: all of them
    assert lengths(100, 40, 60) == [44, 48, 52, 56]  # else k, dividing it evenly
    inside = lengths(1000, 100, 400)
    assert len(inside) == per_round(1000) and all(100 < k < 400 for k in inside)
    assert lengths(100, 42, 47, skip={45}) == [43, 44, 46]


@pytest.mark.parametrize("n", [100, 400])
def test_every_hidden_position_is_narrowed_to_its_op_within_the_round_cap(n: int) -> None:
    for cause in range(n):

        def leaves(k: int, cause: int = cause) -> str:
            return LEAVES if k > cause else ON_ANE

        readings, rounds = _search(n, leaves)
        outcome = conclude(_on_ane(n), readings, len(rounds))
        assert outcome.cause == cause, (cause, outcome.note)
        assert "the op whose inclusion makes work leave the ANE" in outcome.why
        # ⌈log_k n⌉ rounds, each of at most k prefixes (packed: one launch a round here).
        k = per_round(n)
        assert len(rounds) <= math.ceil(math.log(n, k + 1)) < max_rounds(n)
        assert all(len(r) <= k for r in rounds)


def test_a_later_round_out_of_order_stops_the_search_and_names_nothing() -> None:
    n = 100
    placed = _on_ane(n)
    first = {k: WindowReading(LEAVES if k > 60 else ON_ANE, "") for k in lengths(n)}
    second = next_lengths(placed, first, [lengths(n)])
    lo, hi = max(k for k in first if k <= 60), min(k for k in first if k > 60)
    assert second and all(lo < k < hi for k in second)
    # The second round reads a prefix that holds the first leaving one on the ANE again.
    wrong = first | {k: WindowReading(ON_ANE if k == second[-1] else LEAVES, "") for k in second}
    outcome = conclude(placed, wrong, 2)
    assert outcome.cause is None and outcome.bracket is None
    assert "do not read in order" in outcome.note
    assert next_lengths(placed, wrong, [lengths(n), second]) == []


def test_a_round_that_reads_nothing_inside_the_bracket_ends_the_search() -> None:
    n = 100
    placed = _on_ane(n)
    first = {k: WindowReading(LEAVES if k > 60 else ON_ANE, "") for k in lengths(n)}
    second = next_lengths(placed, first, [lengths(n)])
    unread = first | {k: WindowReading(UNKNOWN, "") for k in second}
    assert next_lengths(placed, unread, [lengths(n), second]) == []
    outcome = conclude(placed, unread, 2)
    lo, hi = max(k for k in first if k <= 60), min(k for k in first if k > 60)
    assert outcome.cause is None and outcome.bracket == (lo, hi)
    assert "moved, cause not isolated after 2 round(s)" in outcome.note


def test_a_bracket_left_at_the_cap_is_reported_not_isolated_and_keeps_the_verdict() -> None:
    placed = _on_ane(6)
    ops = [OpRef(p.index, p.name, p.type, f"sig{p.index}") for p in placed]
    lint_said = OpOffAne(name="op3", type="conv", unit=ComputeUnit.GPU, reason="r", fix="f",
                         source=EvidenceSource.TIMING)  # fmt: skip
    verdict = Verdict(
        model_sha256="0" * 64, device_class="iPhone11,8", chip="A12", os_version="16.7.8",
        simulated=True, verdict=VerdictKind.NONE, ane_share=0.0, ops_off_ane=[lint_said],
        plan_available=False,
    )  # fmt: skip
    roles: dict[int, tuple[str, int | None]] = {i: (NOT_ISOLATED, None) for i in (2, 3, 4)}
    redone, named = redo_with_roles(verdict, ops, placed, roles, [], ["bracket"])
    assert named == 3 and redone.verdict is VerdictKind.NONE  # not known off: kept
    assert [(o.name, o.role, o.unit) for o in redone.ops_off_ane] == [
        (f"op{i}", NOT_ISOLATED, "unknown") for i in (2, 3, 4)
    ]
    [entry] = {o.reason for o in redone.ops_off_ane}  # one finding for the whole bracket
    assert entry == (
        "not isolated: work leaves the ANE once ops up to 4 are included, and prefix search"
        " could not tell which of ops 2–4 is the cause"
    )
    assert "--prefix N`, N from 3 to 4" in redone.ops_off_ane[0].fix
    assert "3 not isolated" in redone.reasons[0]
    # JSON: the role is part of the exported verdict.
    again = Verdict.model_validate(redone.model_dump(mode="json"))
    assert again.ops_off_ane[0].role == NOT_ISOLATED
    # The report says it as one finding, in the text and the CSV.
    report = {"job": "j", "status": "done", "rows": [_row(redone)]}
    out = io.StringIO()
    print_table(report, Console(file=out, width=400, color_system=None))
    text = out.getvalue()
    assert "op2, op3, op4 (conv): not isolated: work leaves the ANE once ops up to 4" in text, text
    assert "on A12 XR: not placed by probe, not isolated" in text and "--prefix N" in text
    flat = csv_line("j", Report.model_validate(report).rows[0])
    assert "op3 (conv) → unknown: not isolated: work leaves the ANE" in flat["ops_off_ane"]


def _row(verdict: Verdict) -> dict[str, Any]:
    return {
        "model": "chain.mlpackage", "sha256": "s", "device_class": "iPhone11,8", "chip": "A12",
        "device_name": "iPhone XR", "os_version": "16.7.8", "simulated": True,
        "status": "succeeded", "verdict": verdict.verdict.value, "ane_share": verdict.ane_share,
        "latency_ms": {}, "speedup_all_vs_cpu_only": None, "cold_load_ms": None,
        "warm_load_ms": None, "error": None, "bisection": None, "reasons": verdict.reasons,
        "ops_off_ane": [o.model_dump(mode="json") for o in verdict.ops_off_ane],
    }  # fmt: skip


N_OPS = 100  # the model's own ops; Core ML adds an input and an output cast


@pytest.fixture
def no_shortcuts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither the model's own timing (the whole-model step) nor lint names the cause:
    prefix search must (a cause no lint rule knows: a new OS's regression, say)."""
    monkeypatch.setattr(context_search, "whole_model", lambda verdict: None)
    monkeypatch.setattr(context_search, "stored_lint", lambda model, chip: [])


@pytest.mark.usefixtures("no_shortcuts")
def test_a_hidden_cause_in_100_ops_is_found_in_one_round_and_its_carried_ops_in_another(
    tmp_path: Path, xr: PackedFarm
) -> None:
    model = hidden_cause_model(tmp_path / "hidden.mlpackage", N_OPS, 95)
    ops = modelkit.inspect_model(model).ops
    expected = truly_off_ane(model)
    cause = next(name for name, (role, _) in expected.items() if role == CAUSE)
    assert cause.startswith("bigpool_95") and sum(r == CARRIED for r, _ in expected.values()) >= 3
    bisected = bisect_on(xr, model)
    context = bisected.context
    named = bisected.named_by_probe()
    assert named == expected  # the cause and every op carried with it, none wrongly
    reasons = bisected.probe_reasons()
    assert reasons[cause].startswith("off the ANE: found by prefix search")
    # Bounded: one round of prefixes (≤ ⌈log_k n⌉), then one of windows beside the cause.
    prefix_rounds = prefix_search.rounds_of({"context": context})
    assert 1 <= len(prefix_rounds) <= math.ceil(math.log(len(ops), per_round(len(ops))))
    assert context["rounds"] == len(prefix_rounds) + 1 and context["beside"] == 96
    beside = [w for w in context["windows"] if w.get("round") == context["rounds"]]
    assert {(w["start"], w["stop"]) for w in beside} >= {(96, len(ops))}
    # Each round packed: the launches counted on the device are the ones planned.
    window_launches = [launch for launch in xr.probe_launches() if launch.window]
    assert len(window_launches) == context["launches"] == context["rounds"]
    # The same model again on the same device and OS: every round's windows are read
    # again (context_reuse), none measured anew, the same ops named.
    again = bisect_on(xr, model)
    assert again.context["reused_from"] == bisected.parent_id
    assert [launch for launch in xr.probe_launches() if launch.window] == window_launches
    assert again.named_by_probe() == named


@pytest.mark.usefixtures("no_shortcuts")
def test_prefixes_read_out_of_order_in_a_later_round_name_nothing(
    tmp_path: Path, xr: PackedFarm
) -> None:
    # Two hidden causes two ops apart: a later round's prefixes cut between them, and one
    # holding both reads like the ANE path on the SIMULATED XR (`all` with both on the GPU
    # takes as long as `cpuAndNeuralEngine` with both on the CPU): not monotone.
    model = hidden_cause_model(tmp_path / "two.mlpackage", N_OPS, 88, 90)
    bisected = bisect_on(xr, model)
    row, context = bisected.row, bisected.context
    # Rounds went on while two ops not placed alone were left before the first prefix
    # that leaves, until one round read out of order.
    assert 2 <= context["rounds"] <= max_rounds(len(modelkit.inspect_model(model).ops))
    notes = [r for r in row.reasons if r.startswith("context search: prefix search")]
    assert notes and "do not read in order" in notes[0], row.reasons
    assert [o for o in row.ops_off_ane if o.source == "probe"] == []


@pytest.mark.usefixtures("no_shortcuts")
def test_no_window_beside_the_cause_found_holds_another_op_not_placed_alone(
    tmp_path: Path, xr: PackedFarm
) -> None:
    # Two hidden causes far apart: the prefixes find the first; the run right of it holds
    # the second, which a window would call carried: that window is not cut.
    model = hidden_cause_model(tmp_path / "far.mlpackage", N_OPS, 40, 95)
    ops = modelkit.inspect_model(model).ops
    expected = truly_off_ane(model)
    bisected = bisect_on(xr, model)
    context = bisected.context
    first = next(i for i, op in enumerate(ops) if op.name.startswith("bigpool_40"))
    beside = {(w["start"], w["stop"]) for w in context["windows"] if w.get("round") == 2}
    assert context["beside"] == first and beside == {(0, first + 1), (first, first + 1)}
    named = bisected.named_by_probe()
    assert named[ops[first].name] == (CAUSE, None)
    assert {name: expected.get(name) for name in named} == named  # none wrongly
