"""SIMULATED nightly histories for the regression benches (regressions.py,
thermal_attribution.py): night ``t``'s date, its measured point, a series' history.

Run as scripts (``python bench/regressions.py``), the benches find this module beside them:
a script's own folder is ``sys.path[0]``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

from orchestrator.regress import Conditions, NightPoint, PlacedOp, Run, SeriesHistory, SeriesKey

FIRST = date(2026, 1, 1)  # night 0
# One simulated device's conditions, every night alike unless a bench changes one.
BASE = Conditions("a" * 64, "18.1", "22B83sim", "1.0", "sim-1", "nominal")


def night_date(t: int) -> date:
    return FIRST + timedelta(days=t)


def night_point(
    t: int,
    runs: Iterable[Iterable[float]],
    conditions: Conditions = BASE,
    *,
    placement: dict[str, PlacedOp] | None = None,
    verdict: str | None = None,
) -> NightPoint:
    """Night ``t`` of a simulated history: its runs' samples (ms), measured under
    ``conditions``."""
    measured = tuple(Run(samples_ms=tuple(samples)) for samples in runs)
    return NightPoint(night=night_date(t), runs=measured, verdict=verdict, placement=placement,
                      conditions=conditions)  # fmt: skip


def simulated_series(series: str, device_class: str, points: Iterable[NightPoint]) -> SeriesHistory:
    """The history of one SIMULATED series under `all`."""
    return SeriesHistory(SeriesKey(series, device_class, "all", simulated=True), tuple(points))
