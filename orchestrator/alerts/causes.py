"""From the analysis' findings to what alerts store: one ``alerts.store.Finding`` per
(series, class, compute units, check), the alerting ones with the cause they are grouped
by (``regress.group_findings``: what attribution found changed, and the direction), and
whether an open alert of the same cause got worse (``regress.decide_alert``).

Placement, verdict and run are properties of a run, not of a compute-units setting: they
are kept once per (series, class), under compute units ``-``.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Any
from uuid import UUID

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
        "night": f.night.isoformat(),
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


Ident = tuple[str, str, str, str]  # (series, device class, compute units, check)


def worse(settings: RegressSettings) -> Any:
    """``store_alerts``' test of a re-raise: tonight's members against what the open
    summary holds for the same (series, check) from earlier nights (``held``: each
    member's rows, oldest first), by ``regress.decide_alert``: RE_RAISE when a change grew
    by ``reraise_margin`` past the figure it is held to (``held_changes``), when more ops
    moved, a verdict fell, another failure came."""

    def check(held: dict[Ident, list[db.AlertFinding]], tonight: list[Finding]) -> bool:
        changes = held_changes(held, settings)
        for finding in tonight:
            ident = (finding.series, finding.device_class,
                     finding.compute_units or NOT_PER_UNITS, finding.check)  # fmt: skip
            rows = held.get(ident)
            if not rows or finding.analysed is None or not _asked(ident, held):
                continue
            previous = rows[0]
            for row in rows:  # the largest, the latest of equals (a failure's message)
                if abs(row.magnitude) >= abs(previous.magnitude):
                    previous = row
            detail = previous.detail or {}
            was = OpenAlert(
                check=Check(previous.check), status=Status(previous.status),
                change=changes.get(ident),
                moved_ops=frozenset(m["op"] for m in detail.get("moves", [])),
                verdict=str(detail["value"]) if detail.get("value") is not None else None,
                message=previous.message,
            )  # fmt: skip
            if decide_alert(was, finding.analysed, settings) is AlertAction.RE_RAISE:
                return True
        return False

    return check


def _asked(ident: Ident, held: dict[Ident, list[db.AlertFinding]]) -> bool:
    """A trend where the summary holds the same series' latency is not asked: its drift
    grows to a step as the step moves through the trend window (and Theil–Sen overshoots
    it), so the latency's own figure tells whether the series got worse (seen as a re-raise
    of an unchanged alert in the acceptance runs)."""
    return not (ident[3] == Check.TREND.value and (*ident[:3], Check.LATENCY.value) in held)


def _figure(row: db.AlertFinding) -> tuple[float, float, int] | None:
    """A row's |change|, gate, and the nights of its fore window (0: not known)."""
    detail = row.detail or {}
    change, gate = detail.get("change"), detail.get("gate")
    if not isinstance(change, int | float):
        return None
    onset, night = detail.get("onset"), detail.get("night")
    nights = 0
    if isinstance(onset, str) and isinstance(night, str):
        nights = (date.fromisoformat(night) - date.fromisoformat(onset)).days + 1
    return abs(float(change)), float(gate) if isinstance(gate, int | float) else 0.0, nights


def held_changes(
    held: dict[Ident, list[db.AlertFinding]], settings: RegressSettings
) -> dict[Ident, float]:
    """Per member, the change tonight's figure must outgrow by ``reraise_margin`` to raise
    the summary again: the largest seen — except while the figures settle.

    A change is judged on fore windows of up to ``fore_nights`` nights, and the window that
    first shows it may start before it: on a pre-change night that noise lifted past half
    the gate (the first alert of a 15 % step read 10.9 %, the next night 16.9 %), or, when
    it worsens, on nights still at the old level (15 % → 40 % read 23.7 %, then 43 %). So
    for ``fore_nights`` nights after the summary was raised:

    - first raised: a member is held to the largest change its first window allows —
      j nights (from its onset) with mean c, whose pre-change nights each sat at least
      ``persist`` × the gate g away, leave at most j × c − (j − 1) × persist × g to the
      changed night (a single confirmed night: c itself, so 15 % → 40 % the next night is
      raised again);
    - raised again: nothing more is raised (its window's older nights are unknown), and
      afterwards the members are held to the largest figures of those nights.

    The summary's past raises are replayed from its rows."""
    settle, margin = settings.fore_nights, settings.reraise_margin
    nights: dict[UUID, dict[Ident, tuple[float, float, int]]] = {}
    order: dict[UUID, int] = {}
    for ident, rows in held.items():
        for row in rows:
            figure = _figure(row)
            order[row.job_id] = min(order.get(row.job_id, row.id), row.id)
            if figure is not None and _asked(ident, held):
                known = nights.setdefault(row.job_id, {}).get(ident)
                if known is None or figure[0] > known[0]:
                    nights[row.job_id][ident] = figure
    level: dict[Ident, float] = {}
    bound: dict[Ident, float] = {}
    since = 0

    def reference(ident: Ident) -> float:
        return max(level[ident], bound[ident]) if since < settle else level[ident]

    for job in sorted(nights, key=order.__getitem__):
        figures = nights[job]
        grew = since > 0 and any(c - reference(i) >= margin for i, (c, _, _) in figures.items()
                                 if i in level)  # fmt: skip
        for ident, (c, gate, window) in figures.items():
            if ident not in level:  # a member's first night: its first window
                j = window if 0 < window <= settle else 1
                level[ident], bound[ident] = c, j * c - (j - 1) * settings.persist * gate
            else:
                level[ident] = max(level[ident], c)
        if grew:  # the raise is told: its own figures settle before anything more is
            bound = dict.fromkeys(level, math.inf)
        since = 1 if grew or since == 0 else since + 1
    out = {}
    for ident in level:
        sign = -1.0 if (held[ident][-1].detail or {}).get("change", 0.0) < 0 else 1.0
        out[ident] = sign * reference(ident)
    return out
