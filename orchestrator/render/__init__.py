"""Render a report (``report_rows.Report``, or its JSON form as ``report.build_report``
returns it) as a table, CSV or JSON.

Simulated rows say SIMULATED in every form: the JSON has ``simulated: true``, the CSV a
column, the text form says it once above the verdict matrix (or marks each simulated cell
on a mixed farm) and explains it in a footer.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import textwrap
from collections.abc import Callable, Mapping
from typing import Any

from rich.console import Console
from rich.text import Text

from orchestrator.render.details import bisection_lines, model_lines
from orchestrator.render.matrix import ABBREVIATED, NO_RUN, build_matrix, grid_lines
from orchestrator.report_rows import Report, ReportRow

AnyReport = Report | Mapping[str, Any]

SETTINGS_ORDER = ("all", "cpuAndNeuralEngine", "cpuAndGPU", "cpuOnly")


def _ms(value: float | None) -> str:
    return "–" if value is None else (f"{value:.2f}" if value < 100 else f"{value:.0f}")


def _round(value: float | None, digits: int) -> float | None:
    # Binary floats print as 0.18462250000000002; nobody needs below a µs or 0.1 %.
    return None if value is None else round(value, digits)


def as_json(report: AnyReport) -> str:
    body = report.to_json() if isinstance(report, Report) else report
    return json.dumps(body, indent=2, sort_keys=False)


# The CSV: one line per row, flat. Columns of ReportRow under their own name, then these.
CSV_ROW_FIELDS = (
    "model", "sha256", "device_class", "chip", "os_version", "simulated", "status", "verdict",
    "ane_share", "speedup_all_vs_cpu_only", "cold_load_ms", "cold_load_provenance", "warm_load_ms",
)  # fmt: skip
CSV_FIELDS = (
    "job",
    *CSV_ROW_FIELDS,
    *(f"{setting}_{p}_ms" for setting in SETTINGS_ORDER for p in ("p50", "p90")),
    "ops_off_ane",
    "by_probe",
    "error",
    # A sweep's night: the series, and its p50 on the previous night that measured it.
    "series",
    "last_night",
    *(f"{setting}_last_night_p50_ms" for setting in SETTINGS_ORDER),
    # Last, so that no column moves: the hotter thermal state the runner reported (0011).
    "thermal_state",
)


def csv_line(job: str, row: ReportRow) -> dict[str, Any]:
    """One row as its CSV line (rounded: nobody needs below a µs or 0.1 %)."""
    flat: dict[str, Any] = {"job": job, **{key: getattr(row, key) for key in CSV_ROW_FIELDS}}
    flat["simulated"] = "SIMULATED" if row.simulated else "real"
    flat["ane_share"] = _round(row.ane_share, 3)  # a fraction: 0.1 %
    flat["speedup_all_vs_cpu_only"] = _round(row.speedup_all_vs_cpu_only, 2)
    for key in ("cold_load_ms", "warm_load_ms"):
        flat[key] = _round(getattr(row, key), 3)  # ms to the µs
    for setting in SETTINGS_ORDER:
        lat = row.latency_ms.get(setting)
        flat[f"{setting}_p50_ms"] = _round(lat.p50 if lat else None, 3)
        flat[f"{setting}_p90_ms"] = _round(lat.p90 if lat else None, 3)
    flat["ops_off_ane"] = "; ".join(
        f"{op.name} ({op.type}) → {row.unit_of(op)}: {op.reason}" for op in row.ops_off_ane
    )
    ops = row.bisection.ops if row.bisection else []
    flat["by_probe"] = "; ".join(f"{op.name} → {op.by_probe}" for op in ops)
    flat["error"] = row.error
    flat["series"] = row.series
    last = row.last_night
    flat["last_night"] = last.night if last else None
    for setting in SETTINGS_ORDER:
        before = last.p50_ms.get(setting) if last else None
        flat[f"{setting}_last_night_p50_ms"] = _round(before, 3)
    flat["thermal_state"] = row.thermal_state
    return flat


def as_csv(report: AnyReport) -> str:
    typed = Report.of(report)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(CSV_FIELDS), lineterminator="\n")
    writer.writeheader()
    for row in typed.rows:
        writer.writerow(csv_line(typed.job, row))
    return out.getvalue()


def _versus_last_night(row: ReportRow | None) -> str:
    """A sweep night's cell: the previous night's p50 → tonight's, under `all` (or the
    first setting the sweep measures): '1.63 → 1.71'."""
    last = row.last_night if row else None
    if row is None or last is None:
        return "–"
    setting = next((s for s in SETTINGS_ORDER if s in last.p50_ms), None)
    if setting is None:
        return "–"
    now = row.latency_ms.get(setting)
    return f"{_ms(last.p50_ms[setting])} → {_ms(now.p50 if now else None)}"


def _latency(row: ReportRow | None) -> str:
    """p50 under `all` and the speed-up over `cpuOnly`: '1.63 ×46'."""
    lat = row.latency_ms.get("all") if row else None
    if not lat:
        return "–"
    speedup = row.speedup_all_vs_cpu_only if row else None
    if speedup is None:
        return _ms(lat.p50)
    return f"{_ms(lat.p50)} ×{speedup:.0f}" if speedup >= 10 else f"{_ms(lat.p50)} ×{speedup:.1f}"


# Verdict colours on a terminal; the words carry the meaning without them (pipes, CSV).
COLOURS = {r"FULL": "green", r"PART(?:IAL|\.) \d+ %": "yellow", r"NONE|failed": "red",
           r"INCONCL(?:USIVE|\.)|waiting": "cyan"}  # fmt: skip


def _coloured(line: str) -> Text:
    text = Text(line)
    for pattern, colour in COLOURS.items():
        # Only whole cells (two spaces before): a model name may contain the same letters.
        text.highlight_regex(rf"(?<=  )(?:{pattern})(?=\*?(?:  |$))", colour)
    return text


def _wrapped(
    out: Callable[[str], None], width: int, text: str, first: str = "", rest: str = ""
) -> None:
    """Prose wrapped to the width with a hanging indent, never cut inside a word."""
    lines = textwrap.wrap(text, width=max(width, 20), initial_indent=first, subsequent_indent=rest,
                          break_on_hyphens=False, break_long_words=False)  # fmt: skip
    for line in lines or [first]:
        out(line)


def print_table(
    report: AnyReport, console: Console | None = None, *, night: str | None = None
) -> None:
    """The verdict matrix first (one screen), then latencies, causes, bisection.

    Every line fits the console's width (a pipe gets 80 columns): matrices are laid out
    to fit, and only prose lines wrap. ``night`` (``report.night_title``) names the sweep
    and night in the header when the job is one.
    """
    report = Report.of(report)
    console = console or Console()
    width = console.width
    matrix = report.matrix or build_matrix(report.rows)
    out = functools.partial(console.print, highlight=False, markup=False)
    say = functools.partial(_wrapped, out, width)
    say(f"anefarm report — job {report.job} ({report.status})" + (f", {night}" if night else ""))
    if not report.rows:
        out("no runs in this job")
        return
    if matrix["simulated"] == "all":
        say("SIMULATED farm: every verdict below comes from a behaviour model, not a device")
    grid = grid_lines(matrix, width, lambda c: c["label"] if c else NO_RUN)
    for line in grid:
        out(_coloured(line))
    abbreviated = any("PART. " in line or "INCONCL." in line for line in grid)
    say(
        (ABBREVIATED + "; " if abbreviated else "")
        + "PARTIAL n % = share of the cost on the ANE; "
        + ("* = SIMULATED; " if matrix["simulated"] == "some" else "")
        + f"{NO_RUN} = not run"
    )
    by_model: dict[str, list[ReportRow]] = {}
    for row in report.rows:
        by_model.setdefault(row.sha256 or row.model, []).append(row)
    rows_matrix = {
        **matrix,
        "simulated": "none",
        "models": [
            {
                "model": m["model"],
                "cells": {r.device_class: r for r in by_model.get(m["sha256"] or m["model"], [])},
            }
            for m in matrix["models"]
        ],
    }
    if any(r.latency_ms for r in report.rows):
        out("\nLatency: p50 in ms under `all` and ×, how much faster than CPU only")
        for line in grid_lines(rows_matrix, width, _latency):
            out(line)
        say(
            "p90, every compute-units setting and load times (each cold load with what it"
            " followed: compare only equal ones): `anefarm report JOB --json` or --csv"
        )
    nights = {r.last_night.night for r in report.rows if r.last_night}
    if nights:
        out(f"\nLast night ({', '.join(sorted(nights))}) → tonight: p50 in ms, the same series")
        for line in grid_lines(rows_matrix, width, _versus_last_night):
            out(line)
        say("under `all` (or the first setting the sweep measures); every setting: --json, --csv")
    details = [(rows[0].model, model_lines(rows)) for rows in by_model.values()]
    if any(entries for _, entries in details):
        out("\nPer model, what keeps it off FULL: each cause once, its fix, where it holds")
        for model, entries in details:
            if entries:
                out(model)
                for first, *rest in entries:
                    say(first, " • ", "   ")
                    for more in rest:
                        say(more, "   ", "     ")
    bisected = bisection_lines(report)
    if bisected:
        out("")
        for line in bisected:
            # Indented lines are ops under a row: their wrapped part goes in a little further.
            lead = line[: len(line) - len(line.lstrip())]
            say(line.lstrip(), lead, lead + "    " if lead else "  ")
    if matrix["simulated"] != "none":
        out("")
        say(
            "SIMULATED: rows from the behaviour model of docs/simulation.md, not from real"
            " devices; they never enter real baselines."
        )
