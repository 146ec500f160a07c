"""The report row model is the JSON contract of `anefarm report --json`: its keys, their
order and the values as stored (an int stays an int) must not change by accident."""

from __future__ import annotations

import csv
import io
import json

from orchestrator.render import CSV_FIELDS, as_csv, as_json
from orchestrator.report_rows import ProbeRow, Report, ReportRow

ROW_KEYS = [
    "run", "model", "sha256", "device_class", "device_name", "chip", "os_version", "os_build",
    "udid", "thermal_state", "simulated", "status", "attempts", "verdict", "ane_share", "plan_available",
    "plan_timing_disagree", "reasons", "timing", "latency_ms", "setting_errors",
    "speedup_all_vs_cpu_only", "cold_load_ms", "cold_load_provenance", "warm_load_ms",
    "ops_off_ane", "bisection", "error", "waiting_since", "series", "last_night",
]  # fmt: skip
REPORT_KEYS = ["job", "status", "created_at", "simulated", "rows", "matrix", "probes"]
BISECTION_KEYS = [
    "state", "trigger", "why", "verdict_before", "error", "probe_runs", "signatures", "reused",
    "inconclusive", "ops",
]  # fmt: skip
PROBE_KEYS = [
    "run", "parent_run", "signature", "op_type", "ops", "repeat", "device_class", "os_version",
    "simulated", "status", "placement", "unit", "confidence", "reason",
]  # fmt: skip


def _row() -> ReportRow:
    return ReportRow.model_validate(
        {
            "model": "m.mlpackage", "device_class": "iPhone11,8", "status": "succeeded",
            "chip": "A12", "simulated": True, "verdict": "FULL", "ane_share": 1,
            "latency_ms": {"all": {"p50": 2, "p90": 2.5, "count": 3}}, "cold_load_ms": 12,
            "ops_off_ane": [{"name": "c", "type": "conv", "unit": "gpu", "source": "plan",
                             "reason": "r", "fix": "f"}],
            "bisection": {"state": "done", "probe_runs": 1, "signatures": 1,
                          "ops": [{"index": 0, "name": "c", "type": "conv", "by_probe": "gpu",
                                   "confidence": 1}]},
        }
    )  # fmt: skip


def test_keys_and_their_order_are_the_json_contract() -> None:
    report = Report(job="j", status="done", rows=[_row()], probes=[])
    body = json.loads(as_json(report))
    assert list(body) == REPORT_KEYS
    assert list(body["rows"][0]) == ROW_KEYS
    assert list(body["rows"][0]["bisection"]) == BISECTION_KEYS
    assert list(ProbeRow.model_fields) == PROBE_KEYS


def test_numbers_print_as_stored() -> None:
    text = as_json(Report(job="j", status="done", rows=[_row()]))
    assert '"ane_share": 1,' in text and '"cold_load_ms": 12,' in text
    assert '"p50": 2,' in text and '"confidence": 1,' in text


def test_the_json_form_renders_like_the_model() -> None:
    report = Report(job="j", status="done", rows=[_row()])
    assert as_json(report.to_json()) == as_json(report)
    assert as_csv(report.to_json()) == as_csv(report)


def test_csv_columns() -> None:
    header = next(csv.reader(io.StringIO(as_csv(Report(job="j", status="done", rows=[_row()])))))
    assert header == list(CSV_FIELDS)
    assert header == [
        "job", "model", "sha256", "device_class", "chip", "os_version", "simulated", "status",
        "verdict", "ane_share", "speedup_all_vs_cpu_only", "cold_load_ms", "cold_load_provenance",
        "warm_load_ms", "all_p50_ms", "all_p90_ms", "cpuAndNeuralEngine_p50_ms",
        "cpuAndNeuralEngine_p90_ms", "cpuAndGPU_p50_ms", "cpuAndGPU_p90_ms", "cpuOnly_p50_ms",
        "cpuOnly_p90_ms", "ops_off_ane", "by_probe", "error", "series", "last_night",
        "all_last_night_p50_ms", "cpuAndNeuralEngine_last_night_p50_ms",
        "cpuAndGPU_last_night_p50_ms", "cpuOnly_last_night_p50_ms", "thermal_state",
    ]  # fmt: skip
