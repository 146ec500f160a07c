"""A sweep night's report shows, per series, the previous night's median beside tonight's:
in the table, the CSV and the JSON, all from the same row."""

from __future__ import annotations

import csv
import io
import json

from rich.console import Console

from orchestrator.render import as_csv, as_json, print_table
from orchestrator.report_rows import Report, ReportRow


def _row(model: str, device_class: str, tonight: float, last: float | None) -> ReportRow:
    return ReportRow.model_validate(
        {
            "model": f"{model}.mlpackage", "sha256": model[0] * 64, "series": model,
            "device_class": device_class, "chip": "A12", "status": "succeeded",
            "simulated": True, "verdict": "FULL", "ane_share": 1,
            "latency_ms": {"all": {"p50": tonight, "count": 5}, "cpuOnly": {"p50": 9.5}},
            "last_night": None if last is None else
            {"night": "2026-11-24", "p50_ms": {"all": last, "cpuOnly": 9.25}},
        }
    )  # fmt: skip


REPORT = Report(
    job="j",
    status="done",
    rows=[_row("detector", "iPhone11,8", 1.71, 1.63), _row("segmenter", "iPhone11,8", 4.2, None)],
)


def test_the_table_shows_last_night_beside_tonight():
    out = io.StringIO()
    print_table(REPORT, Console(file=out, width=80))
    text = out.getvalue()
    assert "Last night (2026-11-24) → tonight: p50 in ms, the same series" in text
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Last night"))
    grid = lines[start : start + 7]
    assert any(line.startswith("detector") and "1.63 → 1.71" in line for line in grid), grid
    assert any(line.startswith("segmenter") and line.rstrip().endswith("–") for line in grid)


def test_csv_and_json_carry_the_same_numbers():
    rows = list(csv.DictReader(io.StringIO(as_csv(REPORT))))
    assert rows[0]["series"] == "detector" and rows[0]["last_night"] == "2026-11-24"
    assert (
        rows[0]["all_last_night_p50_ms"] == "1.63"
        and rows[0]["cpuOnly_last_night_p50_ms"] == "9.25"
    )
    assert rows[1]["last_night"] == "" and rows[1]["all_last_night_p50_ms"] == ""
    body = json.loads(as_json(REPORT))
    assert body["rows"][0]["last_night"] == {
        "night": "2026-11-24", "p50_ms": {"all": 1.63, "cpuOnly": 9.25}
    }  # fmt: skip
    assert body["rows"][1]["last_night"] is None
