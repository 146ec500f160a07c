"""Regression detection (issue 18): what changed last night, is it real, and why.

Pure: typed series histories in, findings out — no database, broker or Redis (the wiring
reads history, stores alerts, runs confirmation runs). The flow::

    histories ─ analyse() ─▶ FleetAnalysis ─ findings(night) ─▶ [Finding]
                                                   │ needs_confirmation → one more run, re-analyse
                                                   ▼
                              group_findings(sweep, …) ─▶ [Summary]  (one per night × cause)
                              decide_alert(open, finding) ─▶ new | update | re_raise | cleared

Checks per (night, series): latency (``steps``: raw-sample test and effect size against
the baseline), trend (``trend``: Mann–Kendall/Theil–Sen), placement and verdict
(``exact``), compile and load times (``steps``, effect size only), run (failed / missing).
Defaults and their sources: ``RegressSettings``, docs/regressions.md.
"""

from orchestrator.regress.alerts import AlertAction, OpenAlert, decide_alert
from orchestrator.regress.analyse import FleetAnalysis, analyse
from orchestrator.regress.findings import (
    Attribution,
    Check,
    ConditionChange,
    Finding,
    OpMove,
    Status,
)
from orchestrator.regress.grouping import Summary, group_findings
from orchestrator.regress.report import findings
from orchestrator.regress.series import (
    BaselineRule,
    Conditions,
    NightPoint,
    PlacedOp,
    PointStatus,
    RegressInputError,
    Run,
    SeriesHistory,
    SeriesKey,
)
from orchestrator.regress.settings import RegressSettings

__all__ = [
    "AlertAction",
    "Attribution",
    "BaselineRule",
    "Check",
    "ConditionChange",
    "Conditions",
    "Finding",
    "FleetAnalysis",
    "NightPoint",
    "OpMove",
    "OpenAlert",
    "PlacedOp",
    "PointStatus",
    "RegressInputError",
    "RegressSettings",
    "Run",
    "SeriesHistory",
    "SeriesKey",
    "Status",
    "Summary",
    "analyse",
    "decide_alert",
    "findings",
    "group_findings",
]
