"""``anefarm compat``: the compatibility matrix as cells — one per (op signature, chip,
OS build, runner version, simulated) — with the measured unit, its evidence, the lint
prediction beside it, and where the two disagree. Simulated cells say SIMULATED."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.bisect.matrix import settle
from orchestrator.bisect.placement import UNKNOWN, ProbeStatus
from orchestrator.errors import UsageError
from orchestrator.store import models as db

ANE = "neuralEngine"
FIELDS = (
    "signature", "op_type", "chip", "os_version", "os_build", "runner_version", "simulated",
    "unit", "status", "confidence", "evidence", "placed", "first_seen", "last_seen",
    "device_classes", "lint_unit", "lint_rule", "lint_reason", "lint_fix", "disagree", "reason",
)  # fmt: skip


def cells(
    session: Session, *, chip: str | None = None, op: str | None = None
) -> list[dict[str, Any]]:
    """The matrix, filtered by chip (exact, any case) and op type (substring, any case)."""
    if chip is not None and not chip.strip():
        raise UsageError("empty --chip", hint="e.g. --chip A12")
    groups: dict[tuple[Any, ...], list[db.ProbeResult]] = defaultdict(list)
    for row in session.scalars(select(db.ProbeResult)):
        if chip and row.chip.casefold() != chip.strip().casefold():
            continue
        if op and op.strip().casefold() not in (row.op_type or "").casefold():
            continue
        groups[(row.signature, row.chip, row.os_build, row.runner_version, row.simulated)].append(
            row
        )
    out = [_cell(rows) for rows in groups.values()]
    out.sort(
        key=lambda c: (c["chip"], c["op_type"] or "", c["os_build"], c["signature"], c["simulated"])
    )
    return out


def _cell(rows: list[db.ProbeResult]) -> dict[str, Any]:
    rows.sort(key=lambda r: (r.created_at, r.id), reverse=True)
    placed = [r for r in rows if r.status == ProbeStatus.PLACED]
    settled = settle(rows)
    lint = next((r for r in rows if r.lint_rule), None)
    # A lint rule always predicts "off the ANE" (on the unit it names, or unknown).
    lint_unit = (lint.lint_unit or UNKNOWN) if lint else ANE
    measured = settled.unit if settled.status == ProbeStatus.PLACED else UNKNOWN
    return {
        "signature": settled.signature,
        "op_type": settled.op_type,
        "chip": settled.chip,
        "os_version": settled.os_version,
        "os_build": settled.os_build,
        "runner_version": settled.runner_version,
        "simulated": bool(settled.simulated),
        "label": "SIMULATED" if settled.simulated else "real",
        "unit": measured,
        "status": settled.status,
        "confidence": settled.confidence,
        "evidence": len(rows),
        "placed": len(placed),
        "first_seen": min(r.created_at for r in rows).isoformat(),
        "last_seen": max(r.created_at for r in rows).isoformat(),
        "device_classes": sorted({r.device_class for r in rows if r.device_class}),
        "lint_unit": lint_unit,
        "lint_rule": lint.lint_rule if lint else None,
        "lint_reason": lint.lint_reason if lint else None,
        "lint_fix": lint.lint_fix if lint else None,
        "disagree": measured != UNKNOWN and (measured == ANE) != (lint_unit == ANE),
        "reason": settled.reason,
    }


def as_csv(found: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(
        out, fieldnames=list(FIELDS), lineterminator="\n", extrasaction="ignore"
    )
    writer.writeheader()
    for cell in found:
        writer.writerow(
            {**cell, "simulated": cell["label"], "device_classes": " ".join(cell["device_classes"])}
        )
    return out.getvalue()
