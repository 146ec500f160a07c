"""The verdict matrix: every model's verdict on every device class on the first screen
(24 lines × 80 columns) of the demo's report, names shortened in the middle, full in JSON."""

from __future__ import annotations

import io
import json
from typing import Any

from rich.console import Console

from orchestrator.render import as_csv, print_table
from orchestrator.render.matrix import ABBREVIATED, abbreviate, grid_lines, middle
from orchestrator.render.matrix import build_matrix as build_typed_matrix
from orchestrator.report_rows import ReportRow

SAMPLES = [
    "attention_ane.mlpackage", "attention_linear.mlpackage", "conv10x10.mlpackage",
    "conv10x10_dilated4.mlpackage", "conv10x10_dilated4_nn.mlmodel", "conv10x10_nn.mlmodel",
    "conv_sandwich_dilated.mlpackage", "lstm.mlpackage", "lstm_nn.mlmodel", "maxpool15.mlpackage",
    "maxpool15_nn.mlmodel", "mobilenetv2_block.mlpackage", "mobilenetv2_block_nn.mlmodel",
    "upsample4x.mlpackage", "upsample4x_nn.mlmodel",
]  # fmt: skip
FARM = [  # the demo farm: class, chip, name, OS
    ("iPhone11,2", "A12", "iPhone XS", "18.7"), ("iPhone11,8", "A12", "iPhone XR", "16.7.8"),
    ("iPad8,1", "A12X", 'iPad Pro 11" (2018)', "26.1"), ("iPhone13,2", "A14", "iPhone 12", "26.1"),
    ("iPhone16,1", "A17 Pro", "iPhone 15 Pro", "26.1"),
]  # fmt: skip
# Every state a cell can be in, spread over the grid: verdicts, a failure, a wait.
STATES = [("FULL", 1.0, "succeeded"), ("PARTIAL", 0.9649, "succeeded"), ("NONE", 0.0, "succeeded"),
          ("INCONCLUSIVE", None, "succeeded"), (None, None, "failed"), (None, None, "waiting")]  # fmt: skip
EXPECTED = {"FULL": "FULL", "PARTIAL": "PARTIAL 96 %", "NONE": "NONE", "INCONCLUSIVE": "INCONCLUSIVE",
            "failed": "failed", "waiting": "waiting"}  # fmt: skip


def demo_rows() -> list[dict[str, Any]]:
    rows = []
    for m, model in enumerate(SAMPLES):
        for d, (cls, chip, name, os_version) in enumerate(FARM):
            verdict, share, status = STATES[(m + d) % len(STATES)]
            rows.append({
                "model": model, "sha256": f"{m:064x}", "device_class": cls, "chip": chip,
                "device_name": name, "os_version": os_version, "simulated": True, "status": status,
                "verdict": verdict, "ane_share": share, "latency_ms": {"all": {"p50": 16.6712, "p90": 17.0}},
                "speedup_all_vs_cpu_only": 45.71, "cold_load_ms": 12.9, "warm_load_ms": 4.0,
                "ops_off_ane": [], "error": "device_gone: it went" if status == "failed" else None,
                "waiting_since": "2026-11-27T08:00:00" if status == "waiting" else None,
                "bisection": None, "reasons": [],
            })  # fmt: skip
    return rows


def build_matrix(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The rows here are written in their JSON form; the matrix takes typed rows."""
    return build_typed_matrix([ReportRow.model_validate(r) for r in rows])


def test_the_first_screen_shows_every_verdict_of_the_demo_at_80_columns() -> None:
    rows = demo_rows()
    out = io.StringIO()
    print_table({"job": "5b55fa09-0000", "status": "done", "rows": rows},
                Console(file=out, width=80, color_system=None))  # fmt: skip
    lines = out.getvalue().splitlines()
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    screen = lines[:24]
    assert "SIMULATED" in screen[1]
    assert sum("SIMULATED" in line for line in screen) == 1  # said once, not per cell
    for i, model in enumerate(SAMPLES):
        stem = model.rsplit(".", 1)[0]
        line = screen[5 + i]  # title, SIMULATED, three header lines, then one line per model
        name, *cells = [c.strip() for c in line.split("  ") if c.strip()]
        # The extension goes, long names lose their middle: start and end tell them apart.
        head, _, tail = name.partition("…")
        assert name == stem or (stem.startswith(head) and stem.endswith(tail)), (name, stem)
        wanted = [
            EXPECTED[r["verdict"] or r["status"]]
            for r in rows if r["model"] == model
        ]  # fmt: skip
        # Every state in every column is too wide for 80: the long words are abbreviated.
        assert cells == [abbreviate(w) for w in wanted], (model, cells)
    assert any(ABBREVIATED in line for line in screen)
    headers = "\n".join(screen[:6])
    assert (
        "A17 Pro" in headers and "XR" in headers and "iPad Pro" in headers and "iOS 16.7" in headers
    )


def test_json_matrix_keeps_full_names_and_each_cell() -> None:
    matrix = build_matrix(demo_rows())
    json.dumps(matrix)  # goes into the JSON report as it is
    assert [m["model"] for m in matrix["models"]] == SAMPLES
    assert [c["device_class"] for c in matrix["columns"]] == [f[0] for f in FARM]
    cell = matrix["models"][0]["cells"]["iPhone11,8"]
    assert cell == {"verdict": "PARTIAL", "ane_share": 0.9649, "status": "succeeded",
                    "simulated": True, "label": "PARTIAL 96 %"}  # fmt: skip
    assert matrix["simulated"] == "all"


def test_a_class_not_run_is_a_dash_and_mixed_farms_mark_simulated_cells() -> None:
    rows = [r for r in demo_rows() if r["model"] in SAMPLES[:2]]
    rows = [r for r in rows if not (r["model"] == SAMPLES[1] and r["device_class"] == "iPhone16,1")]
    for r in rows:
        r["simulated"] = r["device_class"] != "iPhone11,2"
    lines = grid_lines(build_matrix(rows), 80, lambda c: c["label"] if c else "—")
    cells = [[c.strip() for c in line.split("  ") if c.strip()] for line in lines[3:]]
    assert cells[1][-1] == "—"  # attention_linear was not run on the A17 Pro
    assert cells[0][1] == "FULL" and cells[0][2] == "PART. 96 %*"  # real, then simulated
    assert "" not in lines  # abbreviated, the five classes fit side by side


def test_long_names_are_shortened_in_the_middle_and_many_classes_go_in_blocks() -> None:
    assert middle("conv10x10_dilated4_nn_with_a_long_suffix", 15) == "conv10x…_suffix"
    assert len(middle("x" * 40, 15)) == 15
    rows = [{**r, "device_class": f"{r['device_class']}-{k}", "model": "a_very_long_model_name_" * 3 + r["model"]}
            for r in demo_rows()[:10] for k in range(3)]  # fmt: skip
    lines = grid_lines(build_matrix(rows), 80, lambda c: c["label"] if c else "—")
    assert all(len(line) <= 80 for line in lines)
    assert "" in lines  # 15 classes do not fit side by side: a second block


def test_csv_numbers_are_rounded_to_what_matters() -> None:
    text = as_csv({"job": "j", "status": "done", "rows": demo_rows()[:3]})
    assert "16.671," in text and "45.71," in text and "0.965," in text
    assert "16.6712" not in text


def test_a_job_without_runs_or_still_waiting_says_so() -> None:
    out = io.StringIO()
    print_table({"job": "j", "status": "queued", "rows": []}, Console(file=out, width=80))
    assert out.getvalue().splitlines()[1] == "no runs in this job"
    waiting = {**demo_rows()[0], "status": "waiting", "verdict": None, "latency_ms": {},
               "waiting_since": "2026-11-27T08:00:00.5", "simulated": None}  # fmt: skip
    out = io.StringIO()
    print_table({"job": "j", "status": "running", "rows": [waiting]}, Console(file=out, width=80))
    text = out.getvalue()
    assert "attention_ane  waiting" in text and "Latency" not in text  # nothing measured yet
    assert "A12 XS: waiting for a device of the class since 2026-11-27T08:00:00 UTC" in text


def test_verdicts_are_coloured_on_a_terminal_and_names_are_not() -> None:
    rows = [
        {**demo_rows()[0], "model": "NONE_FULL.mlpackage", "verdict": "FULL", "status": "succeeded"}
    ]
    out = io.StringIO()
    print_table({"job": "j", "status": "done", "rows": rows},
                Console(file=out, width=80, force_terminal=True, color_system="standard"))  # fmt: skip
    line = next(line for line in out.getvalue().splitlines() if line.startswith("NONE_FULL"))
    assert line == "NONE_FULL  \x1b[32mFULL\x1b[0m"
