"""What the analysis says: per (night, series, check) a status with its figures and what
differed between the baseline and tonight."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from orchestrator.regress.series import SeriesKey


class Status(StrEnum):
    SAME = "SAME"
    REGRESSION = "REGRESSION"
    IMPROVEMENT = "IMPROVEMENT"
    UNKNOWN = "UNKNOWN"  # between SAME and a change: the wiring runs one confirmation run
    INSUFFICIENT_DATA = "INSUFFICIENT_DATA"
    FAILED = "FAILED"
    MISSING = "MISSING"


class Check(StrEnum):
    """In report order: latency first (the `all` compute units sort first among series)."""

    LATENCY = "latency"
    TREND = "trend"
    PLACEMENT = "placement"
    VERDICT = "verdict"
    COMPILE = "compile"
    LOAD = "load"
    RUN = "run"  # did the series run: FAILED / MISSING here is the failure alert


# Statuses that make an alert. FAILED and MISSING only on the RUN check: a failed night is
# one alert, not one per check.
ALERTING = frozenset({Status.REGRESSION, Status.IMPROVEMENT})
RUN_ALERTING = frozenset({Status.FAILED, Status.MISSING})


@dataclass(frozen=True, slots=True)
class ConditionChange:
    name: str  # model sha256 | OS | runner | device | thermal state
    before: str
    after: str

    def text(self) -> str:
        if self.name == "model sha256":
            return f"model changed (sha256 {self.before[:12]} → {self.after[:12]})"
        return f"{self.name} {self.before or '?'} → {self.after or '?'}"


@dataclass(frozen=True, slots=True)
class Attribution:
    changes: tuple[ConditionChange, ...]

    def text(self) -> str:
        if not self.changes:
            return "device/OS unchanged, model unchanged"
        return "; ".join(change.text() for change in self.changes)

    def changed(self, name: str) -> ConditionChange | None:
        return next((c for c in self.changes if c.name == name), None)


def merged(attributions: Iterable[Attribution]) -> Attribution:
    """Several nights' attributions as one: each condition once, as the first night that
    changed it reads (oldest first)."""
    changes: dict[str, ConditionChange] = {}
    for attribution in attributions:
        for change in attribution.changes:
            changes.setdefault(change.name, change)
    return Attribution(changes=tuple(changes.values()))


@dataclass(frozen=True, slots=True)
class OpMove:
    op: str
    kind: str
    before: str  # unit in the baseline
    after: str  # unit tonight


@dataclass(frozen=True, slots=True)
class Finding:
    """One (night, series, check). ``change`` is relative (0.12 = 12 % slower); ``value``
    and ``baseline`` are in the check's unit (ms, or a verdict as text)."""

    night: date
    key: SeriesKey
    check: Check
    status: Status
    message: str
    attribution: Attribution
    value: float | str | None = None
    baseline: float | str | None = None
    change: float | None = None
    gate: float | None = None  # the relative change a shift had to reach
    p_value: float | None = None
    baseline_nights: int = 0
    onset: date | None = None  # first night of the change (a fore window of several nights)
    moves: tuple[OpMove, ...] = ()
    confirmed: bool = False  # a confirmation run is part of tonight's figures

    @property
    def alerting(self) -> bool:
        if self.check is Check.RUN:
            return self.status in RUN_ALERTING
        return self.status in ALERTING

    @property
    def needs_confirmation(self) -> bool:
        """UNKNOWN latency without a confirmation run yet: run one tonight, then re-analyse."""
        return self.status is Status.UNKNOWN and not self.confirmed
