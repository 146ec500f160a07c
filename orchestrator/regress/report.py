"""Findings from a ``FleetAnalysis``: figures, a one-line message and the attribution, built
only for the nights (and, if asked, only the alerts) the caller reads."""

from __future__ import annotations

from datetime import date

import numpy as np

from orchestrator.regress.analyse import FleetAnalysis
from orchestrator.regress.attribution import attribute
from orchestrator.regress.findings import Attribution, Check, Finding, Status, merged
from orchestrator.regress.series import Conditions, NightPoint, PointStatus
from orchestrator.regress.steps import CODES, NO_VALUE, StepResult, baseline_mask

_POINT_STATUS = {PointStatus.FAILED: Status.FAILED, PointStatus.MISSING: Status.MISSING}


def _pct(x: float) -> str:
    return f"{x * 100:+.1f} %"


def _p(p: float) -> str:
    return "" if np.isnan(p) else f", p {p:.2g}"


class _Builder:
    def __init__(self, analysis: FleetAnalysis, s: int) -> None:
        self.a = analysis
        self.s = s
        self.history = analysis.histories[s]
        self.points = self.history.points

    def point(self, t: int) -> NightPoint:
        return self.points[int(self.a.point_at[self.s, t])]

    def conditions(self, columns: list[int]) -> list[Conditions]:
        return [self.point(c).conditions for c in columns]

    def step_baseline(self, result: StepResult, t: int) -> tuple[list[int], int]:
        onset = int(result.onset[self.s, t])
        s = slice(self.s, self.s + 1)
        mask = baseline_mask(
            result.accepted[s, :onset], self.a.start[s], self.a.pin[s],
            np.array([onset]), self.a.settings.window,
        )  # fmt: skip
        return [int(c) for c in np.flatnonzero(mask[0])], onset

    def first_seen(self, result: StepResult, t: int, onset: int) -> list[int]:
        """The nights a change was first seen on: from its onset to the first night that
        reported it (a fore window of several nights). Attribution compares all of them
        with the baseline: a window whose first night came before a retrained model (a
        quiet but low night, then the new model) is the model's change, though its onset
        night still ran the old one. Later nights of the change are left out, so that
        what changes while it lasts (another device, a retrain) does not move its cause."""
        code = result.code[self.s, t]
        seen = next((c for c in range(onset, t + 1) if result.code[self.s, c] == code), t)
        return [c for c in self.a.columns[self.s] if onset <= c <= seen]

    def recent_ok(self, t: int) -> list[int]:
        """Baseline for a failure: the last ``window`` ok nights before tonight."""
        cols = [c for c in self.a.columns[self.s] if c < t]
        ok = [c for c in cols if self.point(c).status is PointStatus.OK]
        return ok[-self.a.settings.window :]

    def step(self, check: Check, result: StepResult, t: int, unit: str) -> Finding:
        code = int(result.code[self.s, t])
        status = CODES[code]
        night = self.a.nights[t]
        base_cols, onset = self.step_baseline(result, t)
        change = float(result.change[self.s, t])
        base = float(result.baseline[self.s, t])
        gate = float(result.gate[self.s, t])
        p = float(result.p[self.s, t])
        n = int(result.baseline_n[self.s, t])
        if status is Status.INSUFFICIENT_DATA:
            message = f"{n} baseline nights, {self.a.settings.min_baseline_nights} needed"
            if check is not Check.LATENCY and np.isnan(change):
                message = f"no {check.value} time tonight or too few baseline nights"
        else:
            since = f"; since {self.a.nights[onset]}" if onset < t else ""
            message = (
                f"{check.value} {base * (1 + change):.3g} {unit} vs {base:.3g} {unit} "
                f"({_pct(change)}; gate ±{gate * 100:.1f} %{_p(p)}; {n} nights{since})"
            )
        point = self.point(t)
        return Finding(
            night=night, key=self.history.key, check=check, status=status, message=message,
            attribution=merged(
                attribute(self.conditions(base_cols), self.point(c).conditions)
                for c in self.first_seen(result, t, onset)
            ),
            value=base * (1 + change) if not np.isnan(change) else None,
            baseline=base if not np.isnan(base) else None,
            change=None if np.isnan(change) else change, gate=None if np.isnan(gate) else gate,
            p_value=None if np.isnan(p) else p, baseline_nights=n, onset=self.a.nights[onset],
            confirmed=check is Check.LATENCY and len(point.runs) > 1,
        )  # fmt: skip

    def trend(self, t: int) -> Finding:
        r = self.a.trend
        status = CODES[int(r.code[self.s, t])]
        first = int(r.first[self.s, t])
        change, p, n = float(r.change[self.s, t]), float(r.p[self.s, t]), int(r.nights[self.s, t])
        if status is Status.INSUFFICIENT_DATA:
            message = f"{n} nights in the trend window, {self.a.settings.trend_min_nights} needed"
        else:
            message = (
                f"drift {_pct(change)} over {t - first} nights "
                f"(Mann–Kendall p {p:.2g}, Theil–Sen slope)"
            )
        return Finding(
            night=self.a.nights[t], key=self.history.key, check=Check.TREND, status=status,
            message=message,
            attribution=attribute([self.point(first).conditions], self.point(t).conditions),
            change=None if np.isnan(change) else change, gate=self.a.settings.threshold,
            p_value=None if np.isnan(p) else p, baseline_nights=n, onset=self.a.nights[first],
        )  # fmt: skip

    def exact(self, check: Check, t: int) -> Finding:
        i = int(self.a.point_at[self.s, t])
        result = (self.a.placement if check is Check.PLACEMENT else self.a.verdict)[self.s]
        status = CODES[result.code[i]]
        ref = result.reference[i]
        point = self.point(t)
        moves = result.moves.get(i, ())
        before = self.points[ref] if ref >= 0 else None
        if check is Check.VERDICT:
            value, base = point.verdict, before.verdict if before else None
            message = f"verdict {base or '?'} → {value or '?'}"
        else:
            value = base = None
            message = "; ".join(
                f"{m.op} ({m.kind}) {m.before} → {m.after}"
                if m.kind != m.op
                else f"{m.op} {m.before} → {m.after}"
                for m in moves
            ) or ("placement as on " + str(before.night) if before else "no placement to compare")
        if status is Status.INSUFFICIENT_DATA:
            message = f"no {check.value} tonight or none in the baseline"
        return Finding(
            night=self.a.nights[t], key=self.history.key, check=check, status=status,
            message=message,
            attribution=attribute([before.conditions], point.conditions) if before else Attribution(()),
            value=value, baseline=base, moves=moves, baseline_nights=1 if before else 0,
            onset=self.a.nights[t],
        )  # fmt: skip

    def failed(self, check: Check, t: int) -> Finding:
        point = self.point(t)
        status = _POINT_STATUS[point.status]
        return Finding(
            night=self.a.nights[t], key=self.history.key, check=check, status=status,
            message=f"{point.status.value}: {point.reason or 'no reason recorded'}",
            attribution=attribute(self.conditions(self.recent_ok(t)), point.conditions),
            onset=self.a.nights[t],
        )  # fmt: skip

    def one(self, check: Check, t: int) -> Finding:
        point = self.point(t)
        if point.status is not PointStatus.OK:
            return self.failed(check, t)
        if check is Check.RUN:
            return Finding(
                night=self.a.nights[t], key=self.history.key, check=check, status=Status.SAME,
                message="ran", attribution=Attribution(()), onset=self.a.nights[t],
            )  # fmt: skip
        if check is Check.LATENCY:
            return self.step(check, self.a.latency, t, "ms")
        if check is Check.COMPILE:
            return self.step(check, self.a.compile, t, "ms")
        if check is Check.LOAD:
            return self.step(check, self.a.load, t, "ms")
        if check is Check.TREND:
            return self.trend(t)
        return self.exact(check, t)


def status_code(analysis: FleetAnalysis, s: int, t: int, check: Check) -> int:
    """The status code alone (index in ``CODES``; NO_VALUE: failed, missing or no point)."""
    i = int(analysis.point_at[s, t])
    if i < 0 or analysis.histories[s].points[i].status is not PointStatus.OK:
        return NO_VALUE
    if check is Check.RUN:
        return CODES.index(Status.SAME)
    if check is Check.PLACEMENT:
        return analysis.placement[s].code[i]
    if check is Check.VERDICT:
        return analysis.verdict[s].code[i]
    array = {Check.LATENCY: analysis.latency.code, Check.COMPILE: analysis.compile.code,
             Check.LOAD: analysis.load.code, Check.TREND: analysis.trend.code}[check]  # fmt: skip
    return int(array[s, t])


def findings(
    analysis: FleetAnalysis, night: date | None = None, *, alerts_only: bool = False
) -> list[Finding]:
    """Findings of one night (default: the last), `all` compute units first."""
    if not analysis.nights:
        return []
    night = night or analysis.nights[-1]
    if night not in analysis.nights:
        return []
    t = analysis.nights.index(night)
    order = sorted(
        range(len(analysis.histories)),
        key=lambda s: (analysis.histories[s].key.compute_units != "all",
                       analysis.histories[s].key.series, analysis.histories[s].key.device_class,
                       analysis.histories[s].key.compute_units),
    )  # fmt: skip
    out: list[Finding] = []
    for s in order:
        if analysis.point_at[s, t] < 0:
            continue
        builder = _Builder(analysis, s)
        point = builder.point(t)
        for check in Check:
            if alerts_only:
                if point.status is not PointStatus.OK:
                    if check is not Check.RUN:
                        continue
                elif CODES[status_code(analysis, s, t, check)] not in (
                    Status.REGRESSION, Status.IMPROVEMENT,
                ):  # fmt: skip
                    continue
            out.append(builder.one(check, t))
    return out
