"""The verdict matrix: one line per model, one column per device class.

It is the first thing the report shows, so that a whole job reads on one screen
(24 lines × 80 columns for the 15 sample models on the 5-class demo farm). The data form
(``build_matrix``) goes into the JSON report with full names; ``grid_lines`` lays any such
matrix out in a given width, shortening model names in the middle and, when the classes
do not fit side by side, printing them in several blocks rather than wrapping lines.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from pathlib import PurePath
from typing import Any

from orchestrator.catalog import osversion
from orchestrator.report_rows import ReportRow

ELLIPSIS = "…"
GAP = "  "
MIN_NAME = 12  # below this a model name says nothing; columns go to another block instead
NO_RUN = "—"  # the model was not run on that class


def share_text(share: float | None) -> str:
    """0.6682 → '67 %' (the house style puts a space before %). A share short of whole
    never reads as whole: 0.996 is '99 %' and 0.003 '1 %', so 'PARTIAL 100 %' (a
    newcomer's "then why PARTIAL?") cannot be printed."""
    if share is None:
        return ""
    percent = round(share * 100)
    if 0 < share < 1:
        percent = min(99, max(1, percent))
    return f"{percent} %"


def cell_label(row: ReportRow | None) -> str:
    """What one (model, device class) cell says: the verdict, or why there is none."""
    if row is None:
        return NO_RUN
    verdict, status = row.verdict, str(row.status)
    if status == "failed":
        return "failed"
    if verdict == "PARTIAL" and row.ane_share is not None:
        return f"PARTIAL {share_text(row.ane_share)}"
    if verdict:
        return str(verdict)
    return status  # queued, running, waiting, cancelled: not decided yet


def short_device(name: str | None, device_class: str) -> str:
    """'iPhone XS' → 'XS', 'iPad Pro 11" (2018)' → 'iPad Pro'."""
    if not name:
        return device_class
    short = re.sub(r"\s*\(.*\)", "", name)  # the year or generation
    short = re.sub(r'\s+[\d.]+"', "", short)  # the screen size
    return short.removeprefix("iPhone ").strip() or device_class


def _os_line(rows: list[ReportRow]) -> str:
    versions = Counter(osversion.short(str(r.os_version)) for r in rows if r.os_version)
    return f"iOS {versions.most_common(1)[0][0]}" if versions else ""  # none has run yet


def build_matrix(rows: list[ReportRow]) -> dict[str, Any]:
    """Report rows → columns (device classes, in row order) and one line per model."""
    columns: dict[str, dict[str, Any]] = {}
    for row in rows:
        columns.setdefault(
            row.device_class,
            {"device_class": row.device_class, "chip": row.chip, "device_name": row.device_name},
        )
    headers = {
        cls: [c["chip"] or "?", short_device(c["device_name"], cls)] for cls, c in columns.items()
    }
    seen = Counter(tuple(h) for h in headers.values())
    for cls, column in columns.items():
        if seen[tuple(headers[cls])] > 1:  # two classes of one chip and name: say which
            headers[cls][1] = cls
        column["os"] = _os_line([r for r in rows if r.device_class == cls])
        column["header"] = [*headers[cls], column["os"]]
    models: dict[str, dict[str, Any]] = {}
    for row in rows:
        line = models.setdefault(
            row.sha256 or row.model, {"model": row.model, "sha256": row.sha256, "cells": {}}
        )
        # The last run of a class wins (rows are in run order within a class).
        line["cells"][row.device_class] = {
            "verdict": row.verdict, "ane_share": row.ane_share, "status": row.status,
            "simulated": row.simulated, "label": cell_label(row),
        }  # fmt: skip
    simulated = [r.simulated for r in rows]
    return {
        "columns": list(columns.values()),
        "models": list(models.values()),
        "simulated": "all"
        if simulated and all(simulated)
        else "some"
        if any(simulated)
        else "none",
    }


def short_names(names: list[str]) -> dict[str, str]:
    """Drop the extension where the rest still tells the models apart."""
    stems = Counter(PurePath(n).stem for n in names)
    return {n: PurePath(n).stem if stems[PurePath(n).stem] == 1 else n for n in names}


def middle(text: str, width: int) -> str:
    """Shorten in the middle: the start and the end of a name are what tell models apart."""
    if len(text) <= width:
        return text
    if width <= 1:
        return text[:width]
    keep = width - 1
    head = (keep + 1) // 2
    return text[:head] + ELLIPSIS + text[len(text) - (keep - head) :]


def grid_lines(matrix: dict[str, Any], width: int, cell: Callable[[Any], str]) -> list[str]:
    """The matrix as text lines no wider than ``width``; ``cell`` words each cell (a
    matrix cell, or a report row for the latency grid; None where nothing ran).

    When the classes do not fit side by side, the long verdict words are abbreviated
    (``ABBREVIATED`` says how) before any class goes to a second block.
    """
    lines = _grid(matrix, width, cell)
    if "" in lines:  # more than one block
        short = _grid(matrix, width, lambda c: abbreviate(cell(c)))
        if "" not in short:
            return short
    return lines


def _simulated(cell: Any) -> bool:
    if isinstance(cell, ReportRow):
        return bool(cell.simulated)
    return bool((cell or {}).get("simulated"))


ABBREVIATIONS = {"INCONCLUSIVE": "INCONCL.", "PARTIAL ": "PART. "}
ABBREVIATED = "PART. = PARTIAL, INCONCL. = INCONCLUSIVE"


def abbreviate(label: str) -> str:
    for word, short in ABBREVIATIONS.items():
        label = label.replace(word, short)
    return label


def _grid(matrix: dict[str, Any], width: int, cell: Callable[[Any], str]) -> list[str]:
    columns = matrix["columns"]
    names = short_names([m["model"] for m in matrix["models"]])
    mark = matrix["simulated"] == "some"  # mixed: mark simulated cells; all: said once above
    body = {
        (m["model"], c["device_class"]): cell(m["cells"].get(c["device_class"]))
        + ("*" if mark and _simulated(m["cells"].get(c["device_class"])) else "")
        for m in matrix["models"]
        for c in columns
    }
    widths = [
        max(
            [len(h) for h in c["header"]]
            + [len(body[(m["model"], c["device_class"])]) for m in matrix["models"]]
        )
        for c in columns
    ]
    longest = max((len(n) for n in names.values()), default=5)
    lines: list[str] = []
    start = 0
    while start < len(columns) or not lines:
        # As many classes as fit beside a readable name; the rest in the next block.
        end, used = start, 0
        while end < len(columns) and (
            end == start or MIN_NAME + used + len(GAP) + widths[end] <= width
        ):
            used += len(GAP) + widths[end]
            end += 1
        name_width = max(1, min(longest, width - used))
        if lines:
            lines.append("")
        for level in range(3):
            lines.append(
                " " * name_width
                + "".join(
                    GAP + columns[i]["header"][level].ljust(widths[i]) for i in range(start, end)
                )
            )
        for m in matrix["models"]:
            lines.append(
                middle(names[m["model"]], name_width).ljust(name_width)
                + "".join(
                    GAP + body[(m["model"], columns[i]["device_class"])].ljust(widths[i])
                    for i in range(start, end)
                )
            )
        start = end
        if not columns:
            break
    return [line.rstrip() for line in lines]
