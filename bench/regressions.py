"""Detection quality and speed of regression detection (issue 18), SIMULATED.

Noise model (the sweeps issue's, from ``agents/devices/simulation/nights.py`` and
``runner.py``): each run of a night multiplies the series' latency by the simulated farm's
run-to-run factor (``NightState.run_to_run``: log-normal, σ = ``RUN_TO_RUN_SIGMA`` = 0.08
on the farm, swept here; the nightly run and a confirmation run draw their own), and each
prediction of a run by a log-normal factor with σ = ``NOISE_SIGMA`` (within a run). A
night has ``--repeats`` runs of each series (a sweep's ``repeats:``, each its own draw,
as on distinct devices). Confirmation runs are simulated as the wiring does them: a night
of one run whose latency is UNKNOWN gets one more run and is analysed again (a night of
several runs is not confirmed: its runs already are a second opinion).

Run: ``.venv/bin/python bench/regressions.py`` (``--quick`` for a smaller run; ``--sigma``
to choose run-to-run spreads; ``--repeats 1,3,5`` runs per night; ``--series`` for the
timing fleet).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np
from regress_history import night_date, night_point, simulated_series

from agents.devices.simulation.nights import RUN_TO_RUN_SIGMA, NightState
from agents.devices.simulation.runner import NOISE_SIGMA
from orchestrator.regress import (
    Check,
    Conditions,
    PlacedOp,
    RegressSettings,
    SeriesHistory,
    Status,
    analyse,
    findings,
    group_findings,
)
from orchestrator.regress import stats as regress_stats
from orchestrator.regress.alerts import AlertAction, OpenAlert, decide_alert
from orchestrator.regress.steps import CODES, IMPROVEMENT, INSUFFICIENT, REGRESSION, UNKNOWN

NIGHTS = 30
CHANGE_NIGHT = 20  # steps start here: 20 nights of history before
CREEP_NIGHT = 16  # creep starts here, judged over 10 nights (16..25)
LABEL = "SIMULATED"


@dataclass
class Fleet:
    """True latency per (series, night) and the draws of its runs per night."""

    truth: np.ndarray  # (S, T) ms
    samples: np.ndarray  # (S, T, repeats + 1, n) ms: the night's repeats, then a confirmation
    confirmed: np.ndarray  # (S, T) bool
    repeats: int = 1


def run_factors(count: int, nights: int, sigma: float, seed: int, draws: int) -> np.ndarray:
    """(S, T, draws, 1): the simulated farm's own run-to-run factor of each run of each
    series' night (``NightState.run_to_run``: the repeats, then a confirmation run)."""
    out = np.empty((count, nights, draws, 1))
    for t in range(nights):
        state = NightState(night=night_date(t), present=True, os_version="18.1",
                           os_build="22B83sim", sigma=sigma, noise_seed=seed)  # fmt: skip
        for s in range(count):
            for draw in range(draws):
                out[s, t, draw, 0] = state.run_to_run(f"sim-{s}", f"model-{s}", draw)
    return out


def make_fleet(
    multiplier: np.ndarray, sigma: float, rng: np.random.Generator, n: int, repeats: int = 1
) -> Fleet:
    count, nights = multiplier.shape
    base = rng.uniform(2.0, 40.0, size=(count, 1))
    truth = base * multiplier
    run = run_factors(count, nights, sigma, int(rng.integers(2**31)), repeats + 1)
    within = rng.lognormal(0.0, NOISE_SIGMA, size=(count, nights, repeats + 1, n))
    samples = truth[:, :, None, None] * run * within
    return Fleet(truth=truth, samples=samples,
                 confirmed=np.zeros((count, nights), dtype=bool), repeats=repeats)  # fmt: skip


def history_of(fleet: Fleet, s: int, name: str = "m") -> SeriesHistory:
    points = (
        night_point(t, (fleet.samples[s, t, r].tolist()
                        for r in range(fleet.repeats + int(fleet.confirmed[s, t]))))
        for t in range(fleet.truth.shape[1])
    )  # fmt: skip
    return simulated_series(f"{name}{s}", "iPhone15,2", points)


def analyse_with_confirmations(fleet: Fleet, settings: RegressSettings):  # type: ignore[no-untyped-def]
    """Analyse; every unconfirmed UNKNOWN night of one run gets its confirmation run (as
    ``Finding.needs_confirmation`` asks the wiring); again until none."""
    histories = [history_of(fleet, s) for s in range(len(fleet.truth))]
    while True:
        result = analyse(histories, settings)
        if fleet.repeats > 1 or not settings.confirm_first:
            return result, histories
        todo = (result.latency.code == UNKNOWN) & ~fleet.confirmed
        if not todo.any():
            return result, histories
        fleet.confirmed |= todo
        for s in np.flatnonzero(todo.any(axis=1)):
            histories[s] = history_of(fleet, int(s))


def alert_nights(result, first: int, last: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    """(S,) bool: a latency or trend REGRESSION on a night in [first, last]."""
    window = slice(first, last + 1)
    return (
        (result.latency.code[:, window] == REGRESSION)
        | (result.trend.code[:, window] == REGRESSION)
    ).any(axis=1)


def raised_alerts(result, settings: RegressSettings) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    """(alerts raised or re-raised, alerting series-nights, judged series-nights) over the
    latency and trend checks, with ``decide_alert`` keeping the open alert per check."""
    judged = int((result.latency.code != INSUFFICIENT).sum() - (result.latency.code < 0).sum())
    codes = {Check.LATENCY: result.latency, Check.TREND: result.trend}
    raised = nights = 0
    for check, res in codes.items():
        for s in range(res.code.shape[0]):
            open_alert: OpenAlert | None = None
            for t in range(res.code.shape[1]):
                code = int(res.code[s, t])
                if code not in (REGRESSION, IMPROVEMENT) and open_alert is None:
                    continue
                status = CODES[code] if code >= 0 else Status.MISSING
                change = float(res.change[s, t])
                finding_like = _FindingLike(check, status, change)
                action = decide_alert(open_alert, finding_like, settings)  # type: ignore[arg-type]
                if action in (AlertAction.NEW, AlertAction.RE_RAISE):
                    raised += 1
                    open_alert = OpenAlert(check=check, status=status, change=change)
                elif action is AlertAction.CLEARED:
                    open_alert = None
                nights += code in (REGRESSION, IMPROVEMENT)
    return raised, nights, judged


@dataclass(frozen=True)
class _FindingLike:
    """The three fields ``decide_alert`` reads for a latency or trend finding."""

    check: Check
    status: Status
    change: float

    @property
    def alerting(self) -> bool:
        return self.status in (Status.REGRESSION, Status.IMPROVEMENT)


def multiplier(kind: str, count: int) -> np.ndarray:
    m = np.ones((count, NIGHTS))
    if kind.startswith("step"):
        m[:, CHANGE_NIGHT:] = 1 + int(kind[4:]) / 100
    elif kind == "creep":
        m[:, CREEP_NIGHT:] = 1.01 ** np.arange(1, NIGHTS - CREEP_NIGHT + 1)
    return m


def detection(
    sigma: float, settings: RegressSettings, per_seed: int, seeds: int, n: int, repeats: int
) -> dict[str, float]:
    out: dict[str, float] = {}
    raised = nights = judged = 0
    hits: dict[str, list[bool]] = {"step10": [], "step5": [], "creep": []}
    confirmations = 0
    for seed in range(seeds):
        rng = np.random.default_rng([seed, int(sigma * 1e4)])
        fleet = make_fleet(multiplier("quiet", per_seed), sigma, rng, n, repeats)
        result, _ = analyse_with_confirmations(fleet, settings)
        r, a, j = raised_alerts(result, settings)
        raised, nights, judged = raised + r, nights + a, judged + j
        confirmations += int(fleet.confirmed.sum())
        for kind, first, last in (("step10", CHANGE_NIGHT, CHANGE_NIGHT + 1),
                                  ("step5", CHANGE_NIGHT, CHANGE_NIGHT + 2),
                                  ("creep", CREEP_NIGHT, CREEP_NIGHT + 9)):  # fmt: skip
            fleet = make_fleet(multiplier(kind, per_seed), sigma, rng, n, repeats)
            result, _ = analyse_with_confirmations(fleet, settings)
            hits[kind] += alert_nights(result, first, last).tolist()
    out["false_alerts_per_1000"] = 1000 * raised / judged
    out["alert_nights_per_1000"] = 1000 * nights / judged
    out["confirmations_per_1000"] = 1000 * confirmations / judged
    for kind, found in hits.items():
        out[kind] = float(np.mean(found))
    return out


def placement_bench(
    settings: RegressSettings, rng: np.random.Generator
) -> tuple[float, int, int, str]:
    """14 models with a dilated convolution + 6 without, on 3 classes; iOS 18.2 on night 21
    moves the dilated convolutions ANE → GPU. → (share caught on night 21, summaries for
    that cause, series hit, the summary's title)."""
    classes = ("iPhone12,1", "iPhone14,5", "iPhone15,2")
    upgrade = 21
    histories = []
    for c, device_class in enumerate(classes):
        for m in range(20):
            dilated = m < 14
            ops = {f"conv{i}": "conv" for i in range(4)} | (
                {"conv_d": "conv dilated"} if dilated else {}
            )
            points = []
            for t in range(NIGHTS):
                upgraded = t >= upgrade
                cond = Conditions("b" * 63 + str(m % 10), "18.2" if upgraded else "18.1",
                                  "22C152sim" if upgraded else "22B83sim", "1.0", f"sim-{c}", "nominal")  # fmt: skip
                placement = {op: PlacedOp("gpu" if upgraded and kind == "conv dilated" else "neuralEngine", kind)
                             for op, kind in ops.items()}  # fmt: skip
                samples = (
                    5.0 * rng.lognormal(0, RUN_TO_RUN_SIGMA) * rng.lognormal(0, NOISE_SIGMA, 20)
                )
                points.append(night_point(t, [samples.tolist()], cond, placement=placement,
                                          verdict="FULL"))  # fmt: skip
            histories.append(simulated_series(f"model{m}", device_class, points))
    result = analyse(histories, settings)
    night = findings(result, night_date(upgrade), alerts_only=True)
    caught = {f.key for f in night if f.check is Check.PLACEMENT and f.status is Status.REGRESSION}
    summaries = [
        s
        for s in group_findings("bench-nightly", night)
        if any(f.check is Check.PLACEMENT for f in s.findings)
    ]
    title = summaries[0].title if summaries else "(none)"
    return len(caught) / 42, len(summaries), len(caught), title


def timing(
    count: int, settings: RegressSettings, n: int, repeats: int
) -> tuple[float, float, float, float]:
    """(seconds to build the typed histories, to analyse every night, its CPU seconds, to
    read tonight's alerts)."""
    rng = np.random.default_rng(7)
    fleet = make_fleet(multiplier("quiet", count), RUN_TO_RUN_SIGMA, rng, n, repeats)
    started = time.perf_counter()
    histories = [history_of(fleet, s) for s in range(count)]
    built, cpu = time.perf_counter(), time.process_time()
    result = analyse(histories, settings)
    analysed, cpu_analysed = time.perf_counter(), time.process_time()
    findings(result, alerts_only=True)
    read = time.perf_counter() - analysed
    return built - started, analysed - built, cpu_analysed - cpu, read


def detection_table(
    args: argparse.Namespace, settings: RegressSettings, sigmas: list[float], seeds: int,
    per_seed: int,
) -> None:  # fmt: skip
    print(f"{LABEL} regression detection — {NIGHTS} nights, {args.samples} predictions per run, "
          f"within-run σ {NOISE_SIGMA}, {seeds} seeds × {per_seed} series per scenario")  # fmt: skip
    print(f"settings: {settings.model_dump()}")
    header = f"{'runs/night':>10} | {'device time ×':>13} | {'run-to-run σ':>12} | {'false alerts/1000':>17} | {'alert nights/1000':>17} | {'confirm runs/1000':>17} | {'10 % ≤2 n':>9} | {'5 % ≤3 n':>8} | {'creep ≤10 n':>11}"
    print(header)
    print("-" * len(header))
    for repeats, sigma in ((r, s) for r in args.repeats for s in sigmas):
        d = detection(sigma, settings, per_seed, seeds, args.samples, repeats)
        # Device time against one run a night: the repeats, plus the confirmation runs.
        cost = repeats + d["confirmations_per_1000"] / 1000
        print(f"{repeats:>10} | {cost:>13.2f} | {sigma:>12.3f} | {d['false_alerts_per_1000']:>17.2f} | {d['alert_nights_per_1000']:>17.2f} | "
              f"{d['confirmations_per_1000']:>17.1f} | {d['step10']:>9.1%} | {d['step5']:>8.1%} | {d['creep']:>11.1%}")  # fmt: skip
    print("goals: false alerts ≤ 5 per 1,000 quiet series-nights; 10 % steps ≥ 95 % within 2 nights; "
          "5 % steps ≥ 80 % within 3 nights")  # fmt: skip
    share, groups, hit, title = placement_bench(settings, np.random.default_rng(3))
    print(f"placement: {share:.0%} of {hit} changed series caught on the first night, "
          f"{groups} summary for the cause (goal 100 %, 1): {title}")  # fmt: skip


def _counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a list of run counts: {text!r} (e.g. 1,3,5)"
        ) from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"runs per night must be ≥ 1: {text!r} (e.g. 1,3,5)")
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer seeds and series")
    parser.add_argument("--sigma", type=float, nargs="*", default=None,
                        help=f"run-to-run σ values (default: 0.04 and the farm's {RUN_TO_RUN_SIGMA}; "
                             "--quick: the farm's)")  # fmt: skip
    parser.add_argument("--repeats", type=_counts, default=[1, 3, 5],
                        help="runs per night to compare, e.g. 1,3,5 (a sweep's repeats:)")  # fmt: skip
    parser.add_argument("--series", type=int, default=10_000, help="timing fleet size")
    parser.add_argument("--timing-repeats", type=int, default=1,
                        help="runs per night of the timing fleet")  # fmt: skip
    parser.add_argument("--samples", type=int, default=30, help="predictions per run")
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE",
                        help="override a RegressSettings default, e.g. --set k=3 threshold=0.04")  # fmt: skip
    parser.add_argument("--no-timing", action="store_true")
    parser.add_argument("--timing-only", action="store_true", help="only the analysis time")
    parser.add_argument("--no-pool", action="store_true",
                        help="judge with the nights' spread alone (the rule before runs per night "
                             "pooled their own spread), for comparison")  # fmt: skip
    args = parser.parse_args(argv)
    settings = RegressSettings(**dict(item.split("=", 1) for item in args.set))
    if args.no_pool:  # an F-test no spread passes: the nights' spread stands alone
        regress_stats.POOL_P = 1.0
    # A few minutes on the shared 2-core machine: 4 seeds × 250 series (25,000 quiet
    # series-nights per row); --quick 3 × 200 at the farm's σ only.
    seeds, per_seed = (3, 200) if args.quick else (4, 250)
    sigmas = args.sigma or ([RUN_TO_RUN_SIGMA] if args.quick else [0.04, RUN_TO_RUN_SIGMA])
    if not args.timing_only:
        detection_table(args, settings, sigmas, seeds, per_seed)
    if args.no_timing:
        return
    build_s, analyse_s, cpu_s, read_s = timing(args.series, settings, 20, args.timing_repeats)
    print(f"time, {args.series:,} series × {NIGHTS} nights × {args.timing_repeats} run(s) a night "
          f"(20 predictions per run): analyse every night "
          f"{analyse_s:.2f} s ({cpu_s:.2f} s CPU), tonight's alerts {read_s:.2f} s (goal ≤ 10 s); "
          f"building the typed histories {build_s:.2f} s (not counted: the wiring's read)")  # fmt: skip


if __name__ == "__main__":
    main()
