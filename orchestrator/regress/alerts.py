"""Whether tonight's finding opens, updates or re-raises an alert (pure; the wiring stores).

An open alert is not raised again every night: it is updated while its change lasts, and
re-raised only when it worsens — a change grown by ``reraise_margin`` in the same direction,
more ops moved off their unit, a verdict lower again, a different failure (not the same
one on another night: ``failure_text``). The opposite
direction is a new alert (the wiring closes or keeps the old one as it sees fit).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from orchestrator.regress.findings import Check, Finding, Status
from orchestrator.regress.series import VERDICT_RANK
from orchestrator.regress.settings import RegressSettings

# What a failure's message carries that differs night by night without the failure being
# another: the night or a time ("… not in the farm on 2026-03-21"), a run's or batch's id.
_PER_NIGHT = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ][\d:.]+(?:Z|[+-]\d{2}:?\d{2})?)?"
    r"|\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"
)


def failure_text(message: str) -> str:
    """A failure's message as re-raising compares it: the same failure on another night
    reads the same (a class absent from the farm names the night each time)."""
    return _PER_NIGHT.sub("…", message)


class AlertAction(StrEnum):
    NEW = "new"
    UPDATE = "update"
    RE_RAISE = "re_raise"
    CLEARED = "cleared"  # an open alert, and tonight the check is SAME again
    NONE = "none"


@dataclass(frozen=True, slots=True)
class OpenAlert:
    """The figures of the open alert of one (series, check), as the wiring stored them."""

    check: Check
    status: Status
    change: float | None = None
    moved_ops: frozenset[str] = frozenset()
    verdict: str | None = None
    message: str = ""


def decide_alert(
    open_alert: OpenAlert | None, finding: Finding, settings: RegressSettings | None = None
) -> AlertAction:
    settings = settings or RegressSettings()
    if not finding.alerting:
        if open_alert is not None and finding.status is Status.SAME:
            return AlertAction.CLEARED
        return AlertAction.NONE
    if open_alert is None or open_alert.status is not finding.status:
        return AlertAction.NEW
    if finding.check is Check.PLACEMENT:
        more_ops = {m.op for m in finding.moves} - open_alert.moved_ops
        return AlertAction.RE_RAISE if more_ops else AlertAction.UPDATE
    if finding.check is Check.VERDICT:
        now = VERDICT_RANK.get(str(finding.value), 0)
        before = VERDICT_RANK.get(str(open_alert.verdict), 0)
        worse = now < before if finding.status is Status.REGRESSION else now > before
        return AlertAction.RE_RAISE if worse else AlertAction.UPDATE
    if finding.check is Check.RUN:
        same = failure_text(finding.message) == failure_text(open_alert.message)
        return AlertAction.UPDATE if same else AlertAction.RE_RAISE
    if finding.change is None or open_alert.change is None:
        return AlertAction.UPDATE
    grown = abs(finding.change) - abs(open_alert.change)
    return AlertAction.RE_RAISE if grown >= settings.reraise_margin else AlertAction.UPDATE
