"""Step detection against a baseline, for many series at once (latency, compile, load).

Night by night (series vectorised): tonight, and the fore windows of the last 2 … J nights
ending tonight, are compared with the baseline — the last ``window`` accepted nights before
the window's first night (none before the series' reset, none after its pinned night).
A shift (in log space, so +10 % and −9.1 % weigh alike) is *clear* when it reaches
``gate = max(log(1 + threshold), k_ν × σ × √(Σ f_i / j² + f̄ / n))`` — σ one run's
run-to-run spread (``stats.run_spread``: the standard deviation of the baseline's nightly
values within 8 MAD-σ of their median, pooled with the spread between each night's runs
when a night has several), f a night's variance in units of one run's (1/r for the mean
of r runs), j the fore nights, n the baseline nights, k_ν the Student-t quantile with σ's
degrees of freedom at the normal quantile k: k standard errors of a difference of two
means, widened for a spread known from few nights. Under
``same_fraction × gate`` it is SAME; between, UNKNOWN. The raw-sample test (``Tester``)
then confirms: clear and p ≤ p_alert → a change; p > p_same → SAME; else UNKNOWN.

Accepted nights (the baseline's pool) are those judged SAME, UNKNOWN or INSUFFICIENT_DATA;
the nights of a change are left out while it lasts (until the wiring resets the baseline),
and rejoin the pool when the series is back to SAME.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from orchestrator.regress.findings import Status
from orchestrator.regress.stats import Array, robust_spread, run_spread, t_quantile

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
CODES: tuple[Status, ...] = tuple(Status)
NO_VALUE = -1  # no value tonight (failed, missing, or no point): the caller fills in why
SAME, REGRESSION, IMPROVEMENT, UNKNOWN, INSUFFICIENT = (
    CODES.index(s)
    for s in (Status.SAME, Status.REGRESSION, Status.IMPROVEMENT, Status.UNKNOWN,
              Status.INSUFFICIENT_DATA)
)  # fmt: skip


# tester(rows, tonight, fore_nights, baseline mask of those rows) → p per row
Tester = Callable[[IntArray, int, int, BoolArray], Array]


@dataclass(frozen=True)
class StepRule:
    threshold: float
    k: float
    same_fraction: float
    min_nights: int
    window: int
    fore_nights: int
    p_alert: float
    p_same: float
    confirm_first: bool = False  # a change seen on one unconfirmed run is UNKNOWN
    # A fore window of several nights alerts only when each of its nights is at least this
    # share of the gate away in the same direction (Chromium's dashboard: "steppiness").
    persist: float = 0.5


@dataclass
class StepResult:
    """Per (series, night): the status code (index in ``CODES``, or NO_VALUE) and figures."""

    code: npt.NDArray[np.int8]
    change: Array  # relative change of the chosen window's median against the baseline
    baseline: Array  # the baseline's median of nightly values (not log)
    gate: Array  # relative change the shift had to reach
    p: Array  # NaN when no test was needed
    baseline_n: IntArray
    onset: IntArray  # first night (column) of the chosen fore window
    accepted: BoolArray


def baseline_mask(
    accepted: BoolArray, start: IntArray, pin: IntArray, end: IntArray, window: int
) -> BoolArray:
    """The last ``window`` accepted columns before ``end`` (per row), none before ``start``,
    none after ``pin`` when pinned (pin ≥ 0 and before ``end``)."""
    columns = np.arange(accepted.shape[1])
    pinned = (pin >= 0) & (pin < end)
    upper = np.where(pinned, pin + 1, end)
    pool = accepted & (columns >= start[:, None]) & (columns < upper[:, None])
    from_right = np.cumsum(pool[:, ::-1], axis=1)[:, ::-1]
    return np.asarray(pool & (from_right <= window))


def detect_steps(
    logv: Array,
    start: IntArray,
    pin: IntArray,
    rule: StepRule,
    tester: Tester | None,
    runs: Array | None = None,
    factor: Array | None = None,
    within: tuple[Array, Array] | None = None,
) -> StepResult:
    """``logv`` (S, T): log of each night's value, NaN when there is none. ``tester`` None
    (a single number per night, e.g. compile time): the effect size alone decides.
    ``runs`` (S, T): runs behind each night's value (repeats and a confirmation run).
    ``factor`` (S, T): the variance of a night's value in units of one run's (default 1/runs:
    the mean of its runs). ``within`` (S, T) twice: the sum of squares of a night's run
    values around their mean and its degrees of freedom (runs − 1); None: none known."""
    runs = np.ones_like(logv) if runs is None else np.maximum(runs, 1.0)
    factor = 1.0 / runs if factor is None else factor
    within_ss, within_df = within if within is not None else (np.zeros_like(logv),) * 2
    n_series, n_nights = logv.shape
    result = StepResult(
        code=np.full((n_series, n_nights), NO_VALUE, dtype=np.int8),
        change=np.full((n_series, n_nights), np.nan),
        baseline=np.full((n_series, n_nights), np.nan),
        gate=np.full((n_series, n_nights), np.nan),
        p=np.full((n_series, n_nights), np.nan),
        baseline_n=np.zeros((n_series, n_nights), dtype=np.int64),
        onset=np.zeros((n_series, n_nights), dtype=np.int64),
        accepted=np.zeros((n_series, n_nights), dtype=bool),
    )
    floor = math.log1p(rule.threshold)
    has = ~np.isnan(logv)
    change_from = np.full(n_series, -1, dtype=np.int64)  # first night of an ongoing change
    for t in range(n_nights):
        best_score = np.full(n_series, -1.0)
        best = {name: np.full(n_series, np.nan) for name in ("shift", "gate", "n", "centre")}
        best_j = np.zeros(n_series, dtype=np.int64)
        masks: dict[int, BoolArray] = {}
        nights_one = np.zeros(n_series)
        for j in range(1, rule.fore_nights + 1):
            first = t - j + 1
            if first < 0:
                break
            fore_ok = has[:, first : t + 1].all(axis=1) & (first >= start) & has[:, t]
            if not fore_ok.any():
                continue
            end = np.full(n_series, first, dtype=np.int64)
            mask = baseline_mask(result.accepted[:, :first], start, pin, end, rule.window)
            centre, spread, n = robust_spread(logv[:, :first], mask)
            fore = np.mean(logv[:, first : t + 1], axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                base_factor = np.where(mask, factor[:, :first], 0.0).sum(axis=1) / mask.sum(axis=1)
                sigma, dof = run_spread(
                    spread, n, base_factor,
                    np.where(mask, within_ss[:, :first], 0.0).sum(axis=1),
                    np.where(mask, within_df[:, :first], 0.0).sum(axis=1),
                )  # fmt: skip
                # Student's t for a spread estimated from few values: k is the normal
                # quantile, so 5 nights of one run need a far larger shift than 14 of 3.
                k = t_quantile(rule.k, dof)
                fore_var = factor[:, first : t + 1].sum(axis=1) / j**2
                gate = np.maximum(floor, k * sigma * np.sqrt(fore_var + base_factor / n))
                score = np.abs(fore - centre) / gate
            nights = mask.sum(axis=1)  # before the outlier screen: what min_nights counts
            usable = fore_ok & (nights >= rule.min_nights)
            clear_j = usable & (score >= 1.0)
            if j > 1:  # every night of the window shows the change, not one wild night
                each = (logv[:, first : t + 1] - centre[:, None]) * np.sign(fore - centre)[:, None]
                clear_j &= (each >= rule.persist * gate[:, None]).all(axis=1)
            if rule.confirm_first and j == 1:  # one run alone never alerts: confirm first
                clear_j &= runs[:, t] >= 2
            # A window that can alert wins over a larger score that cannot.
            key = np.where(clear_j, score + 1e6, score)
            better = usable & (key > best_score)
            best_score = np.where(better, key, best_score)
            best["shift"] = np.where(better, fore - centre, best["shift"])
            best["gate"] = np.where(better, gate, best["gate"])
            best["n"] = np.where(better, nights, best["n"])
            best["centre"] = np.where(better, centre, best["centre"])
            best_j = np.where(better, j, best_j)
            masks[j] = mask
            if j == 1:  # what INSUFFICIENT_DATA reports when no window is usable
                nights_one = nights
        tonight = has[:, t]
        code = np.where(tonight, INSUFFICIENT, NO_VALUE).astype(np.int8)
        judged = best_score >= 0
        code[judged] = SAME
        change = np.expm1(best["shift"])
        direction = np.where(best["shift"] > 0, REGRESSION, IMPROVEMENT).astype(np.int8)
        clear = judged & (best_score >= 1e6)
        score = np.where(clear, best_score - 1e6, best_score)
        between = judged & (score >= rule.same_fraction) & ~clear
        p = np.full(n_series, np.nan)
        if tester is None:
            code[clear] = direction[clear]
            code[between] = UNKNOWN
        else:
            for j, mask in masks.items():
                rows = np.flatnonzero((clear | between) & (best_j == j))
                if rows.size:
                    p[rows] = tester(rows, t, j, mask[rows])
            code[clear & (p <= rule.p_alert)] = direction[clear & (p <= rule.p_alert)]
            code[
                (clear & (p > rule.p_alert) & (p <= rule.p_same)) | (between & (p <= rule.p_same))
            ] = UNKNOWN
        result.code[:, t] = code
        result.change[:, t] = change
        result.baseline[:, t] = np.exp(best["centre"])
        result.gate[:, t] = np.expm1(best["gate"])
        result.p[:, t] = p
        result.baseline_n[:, t] = np.where(judged, np.nan_to_num(best["n"]), nights_one)
        result.onset[:, t] = t - np.maximum(best_j, 1) + 1
        # An UNKNOWN night waits for its confirmation run before it may be baseline.
        settled = (code == UNKNOWN) & ((runs[:, t] >= 2) | (tester is None))
        result.accepted[:, t] = np.isin(code, (SAME, INSUFFICIENT)) | settled
        changed = np.flatnonzero(np.isin(code, (REGRESSION, IMPROVEMENT)))
        if t > 0:  # a change that goes on keeps the night it started
            going_on = changed[result.code[changed, t - 1] == code[changed]]
            result.onset[going_on, t] = np.minimum(
                result.onset[going_on, t - 1], result.onset[going_on, t]
            )
        for row in changed[best_j[changed] > 1]:  # the whole fore window is the change
            result.accepted[row, result.onset[row, t] : t + 1] = False
        # A change that did not last was noise or is over: its nights rejoin the pool, or
        # the baseline would keep only the calm nights, its spread would shrink and quiet
        # nights would alert ever more often.
        pending = tonight & ~result.accepted[:, t]
        change_from = np.where(pending & (change_from < 0), result.onset[:, t], change_from)
        back = np.flatnonzero(result.accepted[:, t] & (change_from >= 0))
        for row in back:
            first = int(change_from[row])
            result.accepted[row, first:t] = has[row, first:t] & (first >= start[row])
        change_from[back] = -1
    return result
