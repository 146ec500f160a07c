"""The table form of a report: causes grouped once per model across devices, layout ops
collapsed, the bisection section agreeing with the verdict, and SIMULATED said."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from orchestrator.render import print_table
from orchestrator.verdict.plan import NO_RULE_FIX

OP = {"name": "conv_dilated", "type": "conv", "unit": "gpu", "source": "plan",
      "reason": "dilated (atrous) convolution (dilated-conv)", "fix": "stacked convolutions"}  # fmt: skip
NAMES = {"iPhone11,8": "iPhone XR", "iPhone11,2": "iPhone XS", "iPhone13,2": "iPhone 12"}


def plan_op(name: str, op_type: str) -> dict[str, Any]:
    return {"name": name, "type": op_type, "unit": "gpu", "source": "plan", "fix": NO_RULE_FIX,
            "reason": "the ANE supports it, but the compute plan prefers the gpu"}  # fmt: skip


def row(device_class: str, chip: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": "sandwich.mlpackage", "sha256": "s", "device_class": device_class, "chip": chip,
        "device_name": NAMES.get(device_class), "os_version": "16.7.8", "simulated": True,
        "status": "succeeded", "verdict": "PARTIAL", "ane_share": 0.6682, "latency_ms": {},
        "speedup_all_vs_cpu_only": None, "cold_load_ms": None, "warm_load_ms": None,
        "ops_off_ane": [OP], "error": None, "bisection": None, "reasons": [], **extra,
    }  # fmt: skip


def render(report: dict[str, Any], width: int = 80) -> str:
    out = io.StringIO()
    print_table(report, Console(file=out, width=width, color_system=None))
    return out.getvalue()


def test_an_op_off_the_ane_on_several_devices_is_one_line() -> None:
    text = render(
        {
            "job": "j",
            "status": "done",
            "rows": [row("iPhone11,8", "A12"), row("iPhone11,2", "A12")],
        },
        width=300,
    )
    lines = text.splitlines()
    [cause] = [i for i, line in enumerate(lines) if "conv_dilated (conv): dilated" in line]
    # Reason, fix and where: once, the devices it holds on listed together.
    assert lines[cause + 1].strip() == "fix: stacked convolutions"
    assert lines[cause + 2].strip() == "on A12 XR, A12 XS: GPU by the compute plan"
    assert "SIMULATED" in text


def test_casts_and_reshapes_moved_by_the_plan_are_one_line_not_causes() -> None:
    ops = [OP, plan_op("c1", "cast"), plan_op("c2", "cast"), plan_op("r1", "reshape"),
           plan_op("conv_in", "conv")]  # fmt: skip
    text = render(
        {"job": "j", "status": "done", "rows": [row("iPhone13,2", "A14", ops_off_ane=ops)]}, 300
    )
    assert (
        "2 casts and 1 reshape run on the GPU by plan on A14 12: layout ops, usually harmless"
        in text
    )
    assert (
        "context effect on A14 12: the compute plan also puts conv_in on the GPU, though the ANE"
        in text
    )
    assert "probe each op" not in text and "c1" not in text


def test_a_bisected_row_says_the_verdict_the_matrix_says() -> None:
    bisection = {
        "state": "done", "trigger": "verdict NONE without a compute plan: per-op placement unknown",
        "why": "no compute plan on this OS, so timing alone could not place each op",
        "verdict_before": "NONE", "signatures": 2, "reused": 1, "inconclusive": 0, "error": None,
        "ops": [{"index": 0, "name": "conv_dilated", "type": "conv", "by_probe": "gpu-or-cpu", "confidence": 0.6,
                 "by_plan": None, "by_lint": "gpu", "disagree": False},
                {"index": 1, "name": "conv_in", "type": "conv", "by_probe": "neuralEngine", "confidence": 0.9,
                 "by_plan": None, "by_lint": "gpu", "disagree": True}],
    }  # fmt: skip
    probe_op = {**OP, "source": "probe", "unit": "unknown"}
    report = {"job": "j", "status": "done",
              "rows": [row("iPhone11,8", "A12", bisection=bisection, ops_off_ane=[probe_op])],
              "probes": [{"run": f"p{n}", "device_class": "iPhone11,8", "status": "succeeded",
                          "repeat": n} for n in (16, 1)]}  # fmt: skip
    text = render(report, width=300)
    assert (
        "1 op(s) on the ANE, 1 off it, 0 not placed → PARTIAL 67 % (timing alone had said NONE)"
        in text
    )
    assert "verdict NONE" not in text
    assert "Why bisected: no compute plan" in text
    assert "1 lifted: run again as many parallel copies of the op" in text
    assert "· conv_dilated (conv): GPU or CPU (confidence 0.6); lint GPU\n" in text
    assert "· conv_in (conv): ANE (confidence 0.9); lint GPU, disagrees" in text
    # One name per placement: the cause line says what the bisection says, not "unknown".
    assert "on A12 XR: GPU or CPU by probe" in text and "gpu-or-cpu" not in text
    assert "GPU or CPU = measured off the ANE, but timing cannot tell which" in text


def test_a_verdict_the_probes_left_undecided_names_what_kept_it() -> None:
    bisection = {
        "state": "done", "trigger": "t", "why": "no compute plan on this OS",
        "verdict_before": "PARTIAL", "signatures": 2, "reused": 0, "inconclusive": 1, "error": None,
        "ops": [{"index": 0, "name": "conv_in", "type": "conv", "by_probe": "neuralEngine",
                 "confidence": 0.9, "by_plan": None, "by_lint": None, "disagree": False},
                {"index": 1, "name": "conv_dilated", "type": "conv", "by_probe": "unknown",
                 "confidence": None, "by_plan": None, "by_lint": "gpu", "disagree": False}],
    }  # fmt: skip
    kept = {
        "its timing": "from the model's timing",
        "lint's prediction (its timing shows the ANE at work)": "from lint's prediction",
    }
    for decided_by, shown in kept.items():
        reason = f"no probe placed an op off the ANE, but 1 op(s) are unknown: the verdict stays PARTIAL, decided by {decided_by}"
        report = {"job": "j", "status": "done",
                  "rows": [row("iPhone11,8", "A12", bisection=bisection, reasons=[reason])]}  # fmt: skip
        text = " ".join(render(report, width=300).split())
        assert (
            f"1 op(s) on the ANE, 0 off it, 1 not placed; too few placed to decide: PARTIAL 67 % {shown}"
            in text
        )
