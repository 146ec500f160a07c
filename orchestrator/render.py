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
MAX_OPS_SHOWN = 12  # per bisected row in the table form
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
    fields += ["ops_off_ane", "by_probe", "error"]
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
        flat["by_probe"] = "; ".join(
            f"{op['name']} → {op['by_probe']}" for op in (row.get("bisection") or {}).get("ops", [])
        )
        writer.writerow(flat)
    return out.getvalue()


def print_table(report: dict[str, Any], console: Console | None = None) -> None:
    """A compact table (fits 100 columns), then the ops off the ANE with reasons and fixes."""
    if console is None:
        width = Console().width
        console = Console(width=max(width, 130))  # a pipe reports 80 columns; rows need more
    title = f"anefarm report — job {report['job']} ({report['status']})"
    table = Table(title=title, show_lines=False, pad_edge=False)
    for column, justify in (("model", "left"), ("device", "left"), ("OS", "left"), ("verdict", "left"),
                            ("ANE", "right"), ("all p50", "right"), ("cpu p50", "right"),
                            ("all vs cpu", "right"), ("load cold/warm", "right")):  # fmt: skip
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    details: list[str] = []
    off: dict[tuple[str, ...], list[str]] = {}
    any_simulated = False
    for row in report["rows"]:
        any_simulated |= bool(row["simulated"])
        device = f"{row['device_class']} {row['chip']}"
        if row["simulated"]:
            device += " [magenta]SIM[/magenta]"
        verdict = row["verdict"] or row["status"]
        if row.get("error"):
            verdict = f"[red]{row['status']}[/red]"
            details.append(
                f"{row['model']} on {row['device_class']}: [red]{row['error'][:200]}[/red]"
            )
        elif row.get("waiting_since"):
            details.append(
                f"{row['model']} on {row['device_class']}: [yellow]waiting for a device of the"
                f" class since {row['waiting_since'][:19]} UTC[/yellow]"
            )
        share = "–" if row["ane_share"] is None else f"{row['ane_share']:.0%}"
        lat = row["latency_ms"]
        speedup = row["speedup_all_vs_cpu_only"]
        table.add_row(
            row["model"], device, row["os_version"] or "?", verdict, share,
            _ms(lat["all"]["p50"]) if "all" in lat else "–",
            _ms(lat["cpuOnly"]["p50"]) if "cpuOnly" in lat else "–",
            "–" if speedup is None else f"{speedup:.1f}×",
            f"{_ms(row['cold_load_ms'])} / {_ms(row['warm_load_ms'])}",
        )  # fmt: skip
        for op in row["ops_off_ane"][:5]:
            # One line per (model, op, finding); the devices it holds on are listed together.
            key = (
                row["model"],
                op["name"],
                op["type"],
                op["unit"],
                op["source"],
                op["reason"],
                op["fix"],
            )
            off.setdefault(key, []).append(f"{row['device_class']} ({row['chip']})")
    for (model, name, op_type, unit, source, reason, fix), where in off.items():
        details.append(
            f"{model}: {name} ({op_type}) → {unit} (by {source}) on {', '.join(where)}: {reason}. Fix: {fix}"
        )
    console.print(table)
    console.print(
        "latencies in ms; p90 and every compute-units setting: `anefarm report JOB --json`"
    )
    _print_bisections(report, console)
    if details:
        console.print(
            "\n[bold]Off the ANE[/bold] (reason and fix from lint when a rule explains it):"
        )
        seen: set[str] = set()
        for line in details:
            if line not in seen:
                seen.add(line)
                console.print(" • " + line, highlight=False)
    if any_simulated:
        console.print(
            "\n[magenta]SIM[/magenta] = SIMULATED: rows from the behaviour model of docs/simulation.md, "
            "not from real devices; they never enter real baselines."
        )


def _print_bisections(report: dict[str, Any], console: Console) -> None:
    """Per-op placement by probe, beside the compute plan and the lint prediction."""
    shown = [r for r in report["rows"] if r.get("bisection")]
    if not shown:
        return
    probes = report.get("probes", [])
    lifted = sum(1 for p in probes if (p.get("repeat") or 1) > 1)
    console.print(
        f"\n[bold]Bisection[/bold] ({len(probes)} probe run(s) in this job, {lifted} lifted;"
        " each op timed alone, so context effects such as segment merging are not in it):"
    )
    for row in shown:
        b = row["bisection"]
        head = f"{row['model']} on {row['device_class']} ({row['chip']}, iOS {row['os_version']})"
        if row["simulated"]:
            head += " [magenta]SIM[/magenta]"
        console.print(f" {head}: {b['state']} — {b['trigger']}", highlight=False)
        if b["state"] != "done":
            if b.get("error"):
                console.print(f"   [red]{b['error']}[/red]", highlight=False)
            continue
        console.print(
            f"   {b['signatures']} signature(s), {b['reused']} reused from the compatibility matrix,"
            f" {b['inconclusive']} not placed",
            highlight=False,
        )
        for op in b["ops"][:MAX_OPS_SHOWN]:
            confidence = "" if op["confidence"] is None else f" ({op['confidence']:.1f})"
            flag = "  [yellow]lint disagrees[/yellow]" if op["disagree"] else ""
            console.print(
                f"   {op['name']} ({op['type']}): probe {op['by_probe']}{confidence} · plan "
                f"{op['by_plan'] or '–'} · lint {op['by_lint']}{flag}",
                highlight=False,
            )
        if len(b["ops"]) > MAX_OPS_SHOWN:
            console.print(f"   … {len(b['ops']) - MAX_OPS_SHOWN} more: `anefarm report JOB --json`")
