"""Placement and verdict: exact comparisons with the baseline night, naming every op."""

from __future__ import annotations

from orchestrator.regress import Check, OpMove, PlacedOp, Status, analyse, findings
from tests.regress.factory import history, night, quiet

ANE, GPU, CPU = "neuralEngine", "gpu", "cpu"


def placed(moved_on: int, unit: str = GPU):
    def at(i: int) -> dict[str, PlacedOp]:
        dilated = unit if i >= moved_on else ANE
        return {
            "conv_1": PlacedOp(ANE, "conv"),
            "conv_2_dilated": PlacedOp(dilated, "conv dilated"),
            "softmax_3": PlacedOp(ANE, "softmax"),
        }

    return at


def check(h, check, i):
    return next(f for f in findings(analyse([h]), night(i)) if f.check is check)


def test_an_op_moved_off_the_ane_is_named_with_both_units_on_the_first_night():
    h = history(quiet(12, sigma=0.01), placement=placed(10))
    before = check(h, Check.PLACEMENT, 9)
    assert before.status is Status.SAME
    f = check(h, Check.PLACEMENT, 10)
    assert f.status is Status.REGRESSION
    assert f.moves == (OpMove("conv_2_dilated", "conv dilated", ANE, GPU),)
    assert "conv_2_dilated (conv dilated) neuralEngine → gpu" in f.message
    assert check(h, Check.PLACEMENT, 11).status is Status.REGRESSION  # still open


def test_an_op_moved_onto_the_ane_is_an_improvement():
    h = history(
        quiet(6, sigma=0.01), placement=lambda i: placed(0, CPU)(i) if i < 4 else placed(99)(i)
    )
    f = check(h, Check.PLACEMENT, 4)
    assert f.status is Status.IMPROVEMENT
    assert [(m.op, m.before, m.after) for m in f.moves] == [("conv_2_dilated", CPU, ANE)]


def test_the_first_placement_has_nothing_to_compare_with():
    h = history(quiet(3, sigma=0.01), placement=placed(99))
    assert check(h, Check.PLACEMENT, 0).status is Status.INSUFFICIENT_DATA
    assert check(h, Check.PLACEMENT, 1).status is Status.SAME


def test_a_verdict_that_drops_is_a_regression_and_names_both():
    h = history(quiet(8, sigma=0.01), verdict=lambda i: "FULL" if i < 6 else "PARTIAL")
    f = check(h, Check.VERDICT, 6)
    assert f.status is Status.REGRESSION
    assert (f.baseline, f.value) == ("FULL", "PARTIAL")
    assert f.message == "verdict FULL → PARTIAL"
    assert check(h, Check.VERDICT, 5).status is Status.SAME


def test_compile_time_uses_its_own_threshold():
    slow = history(
        quiet(12, sigma=0.01), compile_ms=lambda i: 100.0 * (1.5 if i >= 10 else 1 + 0.01 * (i % 2))
    )
    assert check(slow, Check.COMPILE, 10).status is Status.REGRESSION
    small = history(
        quiet(12, sigma=0.01), compile_ms=lambda i: 100.0 * (1.1 if i >= 10 else 1 + 0.01 * (i % 2))
    )
    assert check(small, Check.COMPILE, 10).status in (Status.SAME, Status.UNKNOWN)
