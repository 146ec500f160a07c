"""Render report rows (plain dicts, see ``report.build_report``) as a table, CSV or JSON.

Simulated rows say SIMULATED in every form: the JSON has ``simulated: true``, the CSV a
column, the table a marker in the device column and a footer.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from rich.console import Console
from rich.table import Table

SETTINGS_ORDER = ("all", "cpuAndNeuralEngine", "cpuAndGPU", "cpuOnly")
SHORT = {"all": "all", "cpuAndNeuralEngine": "cpu+ANE", "cpuAndGPU": "cpu+GPU", "cpuOnly": "cpu"}


def _ms(value: float | None) -> str:
    return "–" if value is None else (f"{value:.2f}" if value < 100 else f"{value:.0f}")


def as_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, sort_keys=False)


def as_csv(report: dict[str, Any]) -> str:
    out = io.StringIO()
    fields = [
        "job", "model", "sha256", "device_class", "chip", "os_version", "simulated", "status",
        "verdict", "ane_share", "speedup_all_vs_cpu_only", "cold_load_ms", "warm_load_ms",
    ]  # fmt: skip
    for setting in SETTINGS_ORDER:
        fields += [f"{setting}_p50_ms", f"{setting}_p90_ms"]
    fields += ["ops_off_ane", "error"]
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in report["rows"]:
        flat = {key: row.get(key) for key in fields if key in row}
        flat["job"] = report["job"]
        flat["simulated"] = "SIMULATED" if row["simulated"] else "real"
        for setting in SETTINGS_ORDER:
            lat = row["latency_ms"].get(setting) or {}
            flat[f"{setting}_p50_ms"] = lat.get("p50")
            flat[f"{setting}_p90_ms"] = lat.get("p90")
        flat["ops_off_ane"] = "; ".join(
            f"{op['name']} ({op['type']}) → {op['unit']}: {op['reason']}"
            for op in row["ops_off_ane"]
        )
        writer.writerow(flat)
    return out.getvalue()


def print_table(report: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    title = f"anefarm report — job {report['job']} ({report['status']})"
    table = Table(title=title, show_lines=True)
    for column in ("model", "device", "verdict", "ANE share"):
        table.add_column(column)
    for setting in SETTINGS_ORDER:
        table.add_column(f"{SHORT[setting]} p50/p90 ms", justify="right")
    table.add_column("all vs cpu", justify="right")
    table.add_column("load cold/warm ms", justify="right")
    table.add_column("off the ANE (prediction/evidence)")
    any_simulated = False
    for row in report["rows"]:
        any_simulated |= row["simulated"]
        device = f"{row['device_class']} {row['chip']}\niOS {row['os_version'] or '?'}"
        if row["simulated"]:
            device += "\n[magenta]SIMULATED[/magenta]"
        verdict = row["verdict"] or row["status"]
        if row.get("error"):
            verdict += f"\n[red]{row['error'][:80]}[/red]"
        share = "–" if row["ane_share"] is None else f"{row['ane_share']:.0%}"
        cells = [row["model"], device, verdict, share]
        for setting in SETTINGS_ORDER:
            lat = row["latency_ms"].get(setting)
            cells.append(f"{_ms(lat['p50'])} / {_ms(lat['p90'])}" if lat else "–")
        speedup = row["speedup_all_vs_cpu_only"]
        cells.append("–" if speedup is None else f"{speedup:.1f}×")
        cells.append(f"{_ms(row['cold_load_ms'])} / {_ms(row['warm_load_ms'])}")
        cells.append(
            "\n".join(
                f"{op['name']} ({op['type']}) → {op['unit']}: {op['reason']} Fix: {op['fix']}"
                for op in row["ops_off_ane"][:6]
            )
            or "–"
        )
        table.add_row(*cells)
    console.print(table)
    if any_simulated:
        console.print(
            "[magenta]SIMULATED[/magenta] rows come from the behaviour model of "
            "docs/simulation.md, not from real devices; they never enter real baselines."
        )
