"""The defaults of regression detection, one pydantic model the wiring overrides per sweep.

Every default names its source; docs/regressions.md has the table and the bench figures
they were tuned against (bench/regressions.py).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class RegressSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # Minimum effect: a latency change under 5 % is never an alert (issue 18; asv's
    # regressions threshold is 5 %, Perfherder ignores changes under 2 %).
    threshold: float = Field(default=0.05, gt=0, lt=1)
    # The shift must also reach k × the baseline's run-to-run spread of nightly medians
    # (k is a normal quantile, widened to Student's t for the baseline's nights). Chromium's
    # dashboard asks ≥ 2.5 σ of one test; we judge three fore windows and a trend a night,
    # and 3.3 keeps quiet series under 5 false alerts per 1,000 nights at every run-to-run
    # σ from 0.01 to the farm's 0.08, where 3.0 gives 8.7 (bench/regressions.py).
    k: float = Field(default=3.3, gt=0)
    # Pinpoint: p = min(KS p, Mann–Whitney U p); ≤ 0.01 different, above p_same same.
    p_alert: float = Field(default=0.01, gt=0, lt=1)
    p_same: float = Field(default=0.05, gt=0, lt=1)
    # A shift under this share of the gate is clearly SAME; between it and the gate is
    # UNKNOWN (one confirmation run). Assumption tuned on the bench.
    same_fraction: float = Field(default=0.6, gt=0, le=1)
    # A change seen on a single night's single run is UNKNOWN until its confirmation run
    # agrees (Bencher issue 3670; Pinpoint re-runs before it decides): one noisy run alone
    # never alerts. False keeps the plain "clear → REGRESSION".
    confirm_first: bool = True
    # A night's latency from its runs (runs per night of the sweep, a confirmation run):
    # the mean of their log medians, or their median. The mean varies a third less for 3
    # runs (docs/regressions.md has the bench figures); the median ignores one wild run.
    night_value: Literal["mean", "median"] = "mean"
    min_baseline_nights: int = Field(default=5, ge=2)  # issue 18; Bencher needs ≥ 2
    window: int = Field(default=14, ge=2)  # issue 18; Perfherder's back window 12–24
    # Fore windows of 1..fore_nights nights: a change that persists is judged on the
    # median of its nights (PyTorch HUD: ≥ 2 violating points in a row).
    fore_nights: int = Field(default=3, ge=1, le=7)
    # A window of several nights alerts only when each of its nights is at least this share
    # of the gate away in the same direction: one wild night does not make a 2-night
    # change (Chromium's dashboard asks steppiness ≥ 0.5).
    persist: float = Field(default=0.5, ge=0, le=1)
    # Trend: Mann–Kendall over the last trend_window ok nights, Theil–Sen drift ≥ threshold.
    trend_window: int = Field(default=14, ge=4)
    trend_min_nights: int = Field(default=8, ge=4)
    trend_p: float = Field(default=0.001, gt=0, lt=1)  # Otava's p 0.001
    # Compile and load times: one value per night, no raw samples; PyTorch HUD's
    # 1.20 × baseline ratio rule.
    time_threshold: float = Field(default=0.20, gt=0, lt=10)
    # An open alert is re-raised when its change grows by this much (same direction).
    reraise_margin: float = Field(default=0.05, gt=0)
    # An open alert is closed as recovered once every member is SAME on this many analysed
    # nights in a row: as many as the longest fore window (fore_nights), so no window the
    # latency check judges still holds a night of the change, and a change still there
    # reads SAME three nights running only by chance (docs/regressions.md).
    recovery_nights: int = Field(default=3, ge=1, le=30)

    @model_validator(mode="after")
    def _coherent(self) -> RegressSettings:
        if self.p_alert > self.p_same:
            raise ValueError(f"p_alert {self.p_alert} is above p_same {self.p_same}")
        if self.trend_min_nights > self.trend_window:
            raise ValueError("trend_min_nights is larger than trend_window")
        return self
