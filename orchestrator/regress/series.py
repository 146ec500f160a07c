"""What the analysis reads: one series' history of nights, typed.

A series is (series name, device class, compute units, simulated), as the sweeps' history
keys it. A night's point holds the runs of that night (the nightly run first, then any
confirmation run), what ran where (op → unit), the verdict, compile/load times, and the
conditions that attribution compares. Bad input raises ``RegressInputError``, one line.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from orchestrator.errors import UsageError


class RegressInputError(UsageError):
    """A history the analysis cannot read (unsorted nights, mixed SIMULATED and real …)."""


class PointStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"
    MISSING = "missing"


# Best first: a move down this order is a regression (ane-facts.md: the ANE is the goal).
UNIT_RANK = {"neuralEngine": 2, "gpu": 1, "cpu": 0}
VERDICT_RANK = {"FULL": 2, "PARTIAL": 1, "NONE": 0}


@dataclass(frozen=True, slots=True)
class SeriesKey:
    series: str  # the model's series name (not its hash: a retrained file is the same series)
    device_class: str  # ProductType, e.g. iPhone15,2
    compute_units: str  # all | cpuAndNeuralEngine | cpuAndGPU | cpuOnly
    simulated: bool

    def label(self) -> str:
        sim = " SIMULATED" if self.simulated else ""
        return f"{self.series} on {self.device_class} [{self.compute_units}]{sim}"


@dataclass(frozen=True, slots=True)
class Conditions:
    """What identifies a night's conditions: attribution says which of these changed."""

    model_sha256: str = ""
    os_version: str = ""
    os_build: str = ""
    runner_version: str = ""
    udid: str = ""
    thermal_state: str = ""  # nominal | fair | serious | critical, "" when unknown


def _finite_positive(values: tuple[float, ...]) -> bool:
    """Every value finite and above 0. fsum is NaN or infinite when any value is: one C
    call, not one Python test per sample (a fleet's history holds millions of samples)."""
    try:
        return math.isfinite(math.fsum(values)) and min(values) > 0
    except OverflowError:  # values near the float limit: no latency in ms
        return False


@dataclass(frozen=True, slots=True)
class Run:
    """One run's latency samples (ms) and its median (given, or computed from them)."""

    samples_ms: tuple[float, ...]
    median_ms: float = math.nan

    def __post_init__(self) -> None:
        if self.samples_ms and not _finite_positive(self.samples_ms):
            raise RegressInputError("latency samples must be finite and positive")
        if math.isnan(self.median_ms):
            if not self.samples_ms:
                raise RegressInputError("a run needs samples or a median")
            ordered = sorted(self.samples_ms)
            mid = len(ordered) // 2
            median = ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
            object.__setattr__(self, "median_ms", median)
        elif not math.isfinite(self.median_ms) or self.median_ms <= 0:
            raise RegressInputError(f"median {self.median_ms} ms is not a positive number")


@dataclass(frozen=True, slots=True)
class PlacedOp:
    unit: str  # neuralEngine | gpu | cpu
    kind: str = ""  # the op kind that groups a change ("conv dilated"); "" → the op name


@dataclass(frozen=True, slots=True)
class NightPoint:
    night: date
    status: PointStatus = PointStatus.OK
    reason: str = ""  # why failed or missing
    runs: tuple[Run, ...] = ()  # the nightly run first, then confirmation runs
    verdict: str | None = None  # FULL | PARTIAL | NONE
    placement: Mapping[str, PlacedOp] | None = None  # op name → where it ran; None unknown
    compile_ms: float | None = None
    load_ms: float | None = None
    conditions: Conditions = field(default_factory=Conditions)

    def __post_init__(self) -> None:
        if self.status is PointStatus.OK and not self.runs:
            raise RegressInputError(f"night {self.night}: status ok but no run")
        if self.verdict is not None and self.verdict not in VERDICT_RANK:
            raise RegressInputError(f"night {self.night}: unknown verdict {self.verdict!r}")
        for op, placed in (self.placement or {}).items():
            if placed.unit not in UNIT_RANK:
                raise RegressInputError(
                    f"night {self.night}: op {op} on unknown unit {placed.unit!r}"
                )
        for name in ("compile_ms", "load_ms"):
            value = getattr(self, name)
            if value is not None and (not math.isfinite(value) or value <= 0):
                raise RegressInputError(f"night {self.night}: {name} {value} is not positive")

    def log_run_medians(self) -> list[float]:
        """The log of each run's median (what a night's value and its within-night spread
        are made of)."""
        return [math.log(run.median_ms) for run in self.runs]

    @property
    def median_ms(self) -> float:
        """The night's median: the median of its runs' medians (a confirmation run counts)."""
        if len(self.runs) == 1:
            return self.runs[0].median_ms
        medians = sorted(run.median_ms for run in self.runs)
        if not medians:
            return math.nan
        mid = len(medians) // 2
        return medians[mid] if len(medians) % 2 else (medians[mid - 1] + medians[mid]) / 2


@dataclass(frozen=True, slots=True)
class BaselineRule:
    """Which nights may be baseline: none before ``reset_at`` (a change accepted as the new
    normal), and with ``pinned_night`` only the window ending at that night."""

    reset_at: date | None = None
    pinned_night: date | None = None


@dataclass(frozen=True, slots=True)
class SeriesHistory:
    key: SeriesKey
    points: tuple[NightPoint, ...]  # oldest first, one per night
    baseline: BaselineRule = BaselineRule()

    def __post_init__(self) -> None:
        nights = [p.night for p in self.points]
        if any(b <= a for a, b in itertools.pairwise(nights)):
            raise RegressInputError(f"{self.key.label()}: nights must be unique and oldest first")
        pin = self.baseline.pinned_night
        if pin is not None and pin not in nights:
            raise RegressInputError(f"{self.key.label()}: pinned baseline night {pin} has no point")


def check_one_kind(histories: Sequence[SeriesHistory]) -> None:
    """SIMULATED and real series are analysed apart, never mixed in one call."""
    kinds = {h.key.simulated for h in histories}
    if len(kinds) > 1:
        raise RegressInputError(
            "SIMULATED and real series in one analysis: analyse them separately"
        )
    keys = [h.key for h in histories]
    if len(set(keys)) != len(keys):
        raise RegressInputError("a series appears twice in one analysis")
