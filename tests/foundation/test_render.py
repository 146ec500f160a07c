"""The table form of a report: one line per op off the ANE across devices, the bisection
section, and SIMULATED said."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from orchestrator.render import print_table

OP = {"name": "conv_dilated", "type": "conv", "unit": "gpu", "source": "probe",
      "reason": "dilated (atrous) convolution (dilated-conv)", "fix": "stacked convolutions"}  # fmt: skip


def row(device_class: str, chip: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": "sandwich.mlpackage", "device_class": device_class, "chip": chip,
        "os_version": "16.7.8", "simulated": True, "status": "succeeded", "verdict": "PARTIAL",
        "ane_share": 0.67, "latency_ms": {}, "speedup_all_vs_cpu_only": None,
        "cold_load_ms": None, "warm_load_ms": None, "ops_off_ane": [OP], "error": None,
        "bisection": None, **extra,
    }  # fmt: skip


def render(report: dict[str, Any]) -> str:
    out = io.StringIO()
    print_table(report, Console(file=out, width=200, color_system=None))
    return out.getvalue()


def test_an_op_off_the_ane_on_several_devices_is_one_line() -> None:
    text = render(
        {"job": "j", "status": "done", "rows": [row("iPhone11,8", "A12"), row("iPhone11,2", "A12")]}
    )
    lines = [line for line in text.splitlines() if "conv_dilated (conv) → gpu (by probe)" in line]
    assert len(lines) == 1 and "on iPhone11,8 (A12), iPhone11,2 (A12)" in lines[0]
    assert "SIMULATED" in text


def test_a_bisected_row_lists_each_op_by_probe_plan_and_lint() -> None:
    bisection = {
        "state": "done", "trigger": "requested (--bisect)", "signatures": 2, "reused": 1,
        "inconclusive": 0, "error": None,
        "ops": [{"name": "conv_dilated", "type": "conv", "by_probe": "gpu", "confidence": 0.6,
                 "by_plan": None, "by_lint": "gpu", "disagree": False},
                {"name": "conv_in", "type": "conv", "by_probe": "neuralEngine", "confidence": 0.9,
                 "by_plan": None, "by_lint": "gpu", "disagree": True}],
    }  # fmt: skip
    report = {"job": "j", "status": "done", "rows": [row("iPhone11,8", "A12", bisection=bisection)],
              "probes": [{"repeat": 16}, {"repeat": 1}]}  # fmt: skip
    text = render(report)
    assert "Bisection (2 probe run(s) in this job, 1 lifted" in text
    assert "conv_dilated (conv): probe gpu (0.6) · plan – · lint gpu" in text
    assert "conv_in (conv): probe neuralEngine (0.9) · plan – · lint gpu  lint disagrees" in text
    assert "1 reused from the compatibility matrix" in text
