"""From the analysis' findings to what alerts store: one ``alerts.store.Finding`` per
(series, class, compute units, check), the alerting ones with the cause they are grouped
by (``regress.group_findings``: what attribution found changed, and the direction), and
whether an open alert of the same cause got worse (``regress.decide_alert``).

Placement, verdict and run are properties of a run, not of a compute-units setting: they
are kept once per (series, class), under compute units ``-``.
"""

from __future__ import annotations

from typing import Any

from orchestrator.alerts.store import NOT_PER_UNITS, Finding
from orchestrator.regress import (
    AlertAction,
    Check,
    OpenAlert,
    RegressSettings,
    Status,
    decide_alert,
    group_findings,
)
from orchestrator.regress import Finding as Analysed
from orchestrator.store import models as db

PER_UNITS = (Check.LATENCY, Check.TREND, Check.COMPILE, Check.LOAD)


def _detail(f: Analysed) -> dict[str, Any]:
    return {
        "value": f.value, "baseline": f.baseline, "change": f.change, "gate": f.gate,
        "p_value": f.p_value, "baseline_nights": f.baseline_nights,
        "onset": f.onset.isoformat() if f.onset else None, "confirmed": f.confirmed,
        "attribution": f.attribution.text(),
        "changes": [{"name": c.name, "before": c.before, "after": c.after}
                    for c in f.attribution.changes],
        "moves": [{"op": m.op, "kind": m.kind, "before": m.before, "after": m.after}
                  for m in f.moves],
    }  # fmt: skip


def _magnitude(f: Analysed) -> float:
    if f.change is not None:
        return abs(f.change)
    return float(len(f.moves)) if f.moves else 1.0


def convert(sweep: str, findings: list[Analysed]) -> list[Finding]:
    """Every finding as stored; alerting ones carry their summary's cause key and title."""
    seen: set[tuple[str, str, str, bool, str]] = set()
    kept: list[tuple[Analysed, str]] = []
    for f in findings:
        units = f.key.compute_units if f.check in PER_UNITS else NOT_PER_UNITS
        ident = (f.key.series, f.key.device_class, units, f.key.simulated, f.check.value)
        if ident not in seen:
            seen.add(ident)
            kept.append((f, units))
    cause: dict[int, tuple[str, str, str]] = {}
    for summary in group_findings(sweep, [f for f, _ in kept]):
        checks = {f.check for f in summary.findings}
        kind = "placement" if Check.PLACEMENT in checks else summary.direction
        key = "|".join((summary.direction, *summary.cause))
        sim = "SIMULATED " if summary.findings[0].key.simulated else ""
        for f in summary.findings:
            cause[id(f)] = (key, f"{sim}{summary.title}", kind)
    out = []
    for f, units in kept:
        key, title, kind = cause.get(id(f), ("", "", ""))
        out.append(Finding(
            series=f.key.series, device_class=f.key.device_class, compute_units=units,
            simulated=f.key.simulated, check=f.check.value, status=f.status.value,
            message=f.message, magnitude=_magnitude(f), cause_key=key, cause=title, kind=kind,
            detail=_detail(f), analysed=f,
        ))  # fmt: skip
    return out


def worse(settings: RegressSettings) -> Any:
    """``store_alerts``' test of a re-raise: tonight's finding against the same (series,
    check)'s figures the open summary holds from an earlier night."""

    def check(previous: db.AlertFinding, finding: Finding) -> bool:
        if finding.analysed is None:
            return False
        detail = previous.detail or {}
        change = detail.get("change")
        was = OpenAlert(
            check=Check(previous.check), status=Status(previous.status),
            change=float(change) if isinstance(change, int | float) else None,
            moved_ops=frozenset(m["op"] for m in detail.get("moves", [])),
            verdict=str(detail["value"]) if detail.get("value") is not None else None,
            message=previous.message,
        )  # fmt: skip
        return decide_alert(was, finding.analysed, settings) is AlertAction.RE_RAISE

    return check
