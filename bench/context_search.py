"""Context search: the share of truly-off-ANE ops that bisection names, on devices without a
compute plan, against the simulator's ground truth — before (single-op probes only: the
causes) and after context search (causes and carried ops). SIMULATED figures.

Models: ``random_model(seed)``, seeded chains of 8–28 ops drawn from convolutions (plain and
dilated), activations, element-wise ops with constants, pooling (3×3 and 15×15), transposes
and softmax, at feature maps of 16–64 px and 8–32 channels, so that some segments beside a
cause are cheap (Core ML moves them) and some are not (they stay on the ANE). Devices: a
SIMULATED XR (A12) and iPhone 12 (A14), both on iOS 16 (no compute plan). Ground truth:
``agents.devices.simulation`` profiles the model as the device does (``placement.
context_roles``: per op on the ANE, cause, or carried by which op).

An op is *named* when the verdict lists it off the ANE; *named wrongly* when it truly runs
on the ANE under `all`, and a *wrong role* when it is named cause but is carried or the other
way round (or carried by another op).

The no-cause case (issue 21: a verdict not FULL, no op placed off the ANE by its own probe,
where prefix search brackets or isolates the cause: bisect/prefix_search.py) is counted over
the random models and ``--small`` more (8 channels on 8–16 px, seeds from 3000), where a
cause is more often too small to time alone.

Run: .venv/bin/python -m bench.context_search [--models 30] [--seed 2100] [--device iPhone11,8]
     [--small 30] [--small-seed 3000] [--hidden 10] [--no-whole-model] [--no-lint]
     [--per-round K]
(--hidden: models of 100 small ops with one 15×15 pooling at a seeded position, too small
for its probe to time: the issue's case for prefix search; --per-round: prefixes a round of
prefix search instead of 2 ⌈log2 n⌉, to weigh device-seconds against rounds)
(BENCH_SHOW_MISSED=1 lists every op truly off the ANE that was not named, with the reasons)
(needs a Redis: ANEFARM_BENCH_REDIS_URL, or redis-server on the PATH)
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections import Counter
from dataclasses import astuple, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agents.devices.simulation.placement import CARRIED, CAUSE
from bench.packed_probes import PackedFarm, _redis
from bench.seeded_models import hidden_cause_model, random_model, truth
from orchestrator.bisect import prefix_search
from orchestrator.bisect.mapping import NOT_ISOLATED
from orchestrator.report import report_model

FARMS = {"XR (A12)": "iPhone11,8@16.7.8=1", "iPhone 12 (A14)": "iPhone13,2@16.7.8=1"}
SMALL_SEED = 3000
HIDDEN_OPS = 100


@dataclass
class NoCause:
    """Models whose single-op probes placed no op off the ANE, the verdict not FULL."""

    models: int = 0
    truly_off: int = 0
    named: int = 0
    wrong: int = 0
    searched: int = 0  # a prefix search ran
    isolated: int = 0  # … and named the cause
    bracketed: int = 0  # … and named the stretch only (moved, cause not isolated)
    named_cause: int = 0  # ops named, by role
    named_carried: int = 0
    not_isolated: int = 0  # ops reported in a bracket prefix search left (not named)
    rounds: int = 0  # rounds of window/prefix probe batches, over the searched models
    launches: int = 0  # their runner launches
    device_s: float = 0.0  # their device-seconds
    searches: list[str] = field(default_factory=list)  # one line per searched model

    def add(
        self,
        expected: list[tuple[str | None, str | None]],
        row: Any,
        off: dict[str, Any],
        context: dict[str, Any],
        device_s: float,
    ) -> None:
        self.models += 1
        names = [op.name for op in row.bisection.ops] if row.bisection else []
        truly = {name for name, (role, _) in zip(names, expected, strict=True) if role is not None}
        self.truly_off += len(truly)
        self.named += len(truly & set(off))
        self.wrong += len(set(off) - truly)
        self.named_cause += sum(1 for o in off.values() if o.role != CARRIED)
        self.named_carried += sum(1 for o in off.values() if o.role == CARRIED)
        bracket = [o for o in row.ops_off_ane if o.role == NOT_ISOLATED]
        self.not_isolated += len(bracket)
        notes = [r for r in row.reasons if r.startswith("context search: prefix search:")]
        self.searched += bool(notes)
        isolated = any("the cause" in r and "not isolated" not in r for r in notes)
        bracketed = any("cause not isolated" in r and "work leaves" in r for r in notes)
        self.isolated += isolated
        self.bracketed += bracketed
        if notes:
            prefix_rounds = len(prefix_search.rounds_of({"context": context}))
            self.rounds += int(context.get("rounds") or 1)
            self.launches += int(context.get("launches") or 0)
            self.device_s += device_s
            said = "cause isolated" if isolated else "bracket only" if bracketed else "nothing"
            self.searches.append(
                f"{row.model[:24]:<24} {len(names):>4} {prefix_rounds:>7} {context.get('rounds', 1):>7}"
                f" {context.get('launches', 0):>9} {device_s:>9.1f}  {said}; named"
                f" {len(truly & set(off))}/{len(truly)}, wrongly {len(set(off) - truly)},"
                f" not isolated {len(bracket)}"
            )


@dataclass
class Score:
    models: int = 0
    truly_off: int = 0
    truly: Counter[str] = field(default_factory=Counter)  # cause / carried
    named_before: int = 0
    named: int = 0
    named_as: Counter[str] = field(default_factory=Counter)
    wrong: int = 0  # named off the ANE, truly on it
    wrong_role: int = 0
    windows: int = 0
    window_launches: int = 0
    window_device_s: float = 0.0
    causes: int = 0
    wrong_ops: list[str] = field(default_factory=list)
    no_cause: NoCause = field(default_factory=NoCause)

    def add(
        self,
        expected: list[tuple[str | None, str | None]],
        row: Any,
        probes: Any,
        context: dict[str, Any],
        device_s: float,
    ) -> None:
        self.models += 1
        names = [op.name for op in row.bisection.ops] if row.bisection else []
        # Named by bisection (source probe); a lint prediction the verdict lists is not, nor
        # an op of a bracket prefix search could not narrow (not isolated: not named).
        off = {o.name: o for o in row.ops_off_ane
               if o.source == "probe" and o.role != NOT_ISOLATED}  # fmt: skip
        # Before context search the verdict named the ops their own probe put off the ANE.
        before = {
            op.name
            for op in (row.bisection.ops if row.bisection else [])
            if op.by_probe not in ("neuralEngine", "unknown")
            and not (op.probe_reason or "").startswith(
                (
                    "carried:",
                    "off the ANE in its window",
                    "off the ANE in the model",
                    "off the ANE: found by prefix search",
                )
            )
        }
        # The no-cause case: single-op probes placed no op off the ANE (the figure of
        # prefix search, bisect/prefix_search.py).
        if not before and row.verdict != "FULL":
            self.no_cause.add(expected, row, off, context, device_s)
        for name, (role, by) in zip(names, expected, strict=True):
            if role is not None:
                self.truly_off += 1
                self.truly[role] += 1
                self.named_before += name in before
            if name not in off:
                if role is not None and os.environ.get("BENCH_SHOW_MISSED"):
                    reasons = [r for r in row.reasons if "context" in r or "unknown" in r]
                    print(f"    missed {row.model}: {name} ({role}); {' | '.join(reasons)[:400]}")
                continue
            self.named += role is not None
            self.named_as[str(off[name].role)] += 1
            if role is None:
                self.wrong += 1
                self.wrong_ops.append(f"{row.model}: {name} ({off[name].role}, {off[name].reason})")
            elif (off[name].role or CAUSE) != role or (
                role == CARRIED and off[name].carried_by != by
            ):
                self.wrong_role += 1
                self.wrong_ops.append(
                    f"{row.model}: {name} role {off[name].role}/{off[name].carried_by},"
                    f" truly {role}/{by}"
                )
        windows = [p for p in probes if (p.op_type or "").startswith("window")]
        self.windows += len(windows)
        self.causes += sum(1 for r, _ in expected if r == CAUSE)


def run(count: int, seed: int, only: str | None = None, small: int = 30,
        small_seed: int = SMALL_SEED, hidden: int = 0) -> None:  # fmt: skip
    url, proc = _redis()
    try:
        with tempfile.TemporaryDirectory() as scratch:
            root = Path(scratch)
            started = time.perf_counter()
            models = [
                random_model(root / f"random_{seed + i}.mlpackage", seed + i) for i in range(count)
            ]
            tiny = [random_model(root / f"small_{small_seed + i}.mlpackage", small_seed + i,
                                 small=True) for i in range(small)]  # fmt: skip
            # The 100-op case: one hidden cause at a seeded position.
            spots = np.random.default_rng(seed).integers(5, HIDDEN_OPS - 5, size=hidden)
            tiny += [hidden_cause_model(root / f"hidden_{i}_at_{at}.mlpackage", HIDDEN_OPS, int(at))
                     for i, at in enumerate(spots)]  # fmt: skip
            print(f"{count} random models (seeds {seed}–{seed + count - 1}) and {small} small ones"
                  f" (seeds {small_seed}–{small_seed + small - 1}) and {hidden} of {HIDDEN_OPS} ops with"
                  f" one hidden cause, converted in"
                  f" {time.perf_counter() - started:.0f} s; SIMULATED devices on iOS 16.7.8 (no compute plan)")  # fmt: skip
            for label, farm_spec in FARMS.items():
                if only and only not in farm_spec:
                    continue
                score, extra = Score(), Score()
                farm = PackedFarm.start(root / label.split()[0], url, packing=True, farm=farm_spec)
                device_class = farm_spec.split("@")[0]
                try:
                    for into, model in [(score, m) for m in models] + [(extra, m) for m in tiny]:
                        job = farm.submit(model, iterations=50, bisect="always")
                        launched = len(farm.launches)
                        farm.run_all()
                        with farm.sessions() as session:
                            report = report_model(session, job)
                        [row] = report.rows
                        windows = [launch for launch in farm.launches[launched:]
                                   if launch.batch.purpose == "probe" and launch.window]  # fmt: skip
                        context = (farm.parent(job).bisection or {}).get("context") or {}
                        device_s = sum(launch.device_s for launch in windows)
                        into.add(truth(model, device_class), row, report.probes, context, device_s)
                        into.window_launches += len(windows)
                        into.window_device_s += device_s
                finally:
                    farm.close()
                _print(label, score)
                _print_no_cause(label, score.no_cause, extra.no_cause)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait()


def _print_no_cause(label: str, random: NoCause, small: NoCause) -> None:
    """The no-cause case over both model sets (prefix search, bisect/prefix_search.py)."""
    both = NoCause(*(a + b for a, b in zip(astuple(random), astuple(small), strict=True)))
    share = f"{both.named / both.truly_off:.0%}" if both.truly_off else "n/a"
    print(f"    no cause placed by probe, verdict not FULL: {both.models} model(s)"
          f" ({random.models} random, {small.models} small or hidden-cause), {both.truly_off} op(s) truly off the ANE;"
          f" named {both.named} = {share}, named wrongly {both.wrong}")  # fmt: skip
    print(f"      named as cause {both.named_cause}, as carried {both.named_carried};"
          f" {both.not_isolated} op(s) reported not isolated (a bracket, not named)")  # fmt: skip
    print(f"      prefix search ran on {both.searched}: cause isolated {both.isolated},"
          f" stretch named (moved, cause not isolated) {both.bracketed}; {both.rounds} round(s) of"
          f" window probes in {both.launches} launch(es), {both.device_s:.0f} device-s")  # fmt: skip
    if both.searches:
        print(f"      {'model':<24} {'ops':>4} {'prefix':>7} {'rounds':>7} {'launches':>9}"
              f" {'device-s':>9}  outcome")  # fmt: skip
        for line in both.searches:
            print(f"      {line}")


def _print(label: str, s: Score) -> None:
    share = s.named / max(s.truly_off, 1)
    before = s.named_before / max(s.truly_off, 1)
    print(f"  {label}: {s.models} models, {s.truly_off} ops truly off the ANE"
          f" ({s.truly[CAUSE]} cause, {s.truly[CARRIED]} carried)")  # fmt: skip
    print(f"    named before (single-op probes): {s.named_before} = {before:.0%}")
    print(f"    named after context search:      {s.named} = {share:.0%}"
          f" (as cause {s.named_as[CAUSE]}, carried {s.named_as[CARRIED]});"
          f" named wrongly {s.wrong}, wrong role {s.wrong_role}")  # fmt: skip
    for line in s.wrong_ops[:10]:
        print(f"    wrong: {line[:300]}")
    print(f"    window probe runs {s.windows} (each cause alone included) in {s.window_launches} extra launch(es)"
          f" ({s.window_device_s:.0f} device-s) for {s.truly[CAUSE]} cause op(s)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=30)
    parser.add_argument("--seed", type=int, default=2100)
    parser.add_argument("--device", help="only this device class (e.g. iPhone11,8)")
    parser.add_argument("--small", type=int, default=30,
                        help="small models (8 channels, 8–16 px) for the no-cause case")  # fmt: skip
    parser.add_argument("--small-seed", type=int, default=SMALL_SEED)
    parser.add_argument("--hidden", type=int, default=10,
                        help=f"models of {HIDDEN_OPS} small ops with one hidden cause (prefix search)")  # fmt: skip
    parser.add_argument("--no-lint", action="store_true",
                        help="context search without lint's causes (a cause no rule knows): prefix"
                        " search must find it, and its carried ops come from windows cut beside it")  # fmt: skip
    parser.add_argument("--per-round", type=int,
                        help="prefixes a round of prefix search (default 2 ⌈log2 n⌉)")  # fmt: skip
    parser.add_argument("--no-whole-model", action="store_true",
                        help="without the whole-model shortcut (context.whole_model): the no-cause"
                        " case then rests on lint windows and prefix search alone")  # fmt: skip
    args = parser.parse_args()
    if args.no_whole_model:
        from orchestrator.bisect import context

        setattr(context, "whole_model", lambda verdict: None)  # noqa: B010 - a bench knob
        print("the whole-model shortcut is off (--no-whole-model)")
    if args.no_lint:
        from orchestrator.bisect import context

        setattr(context, "stored_lint", lambda model, chip: [])  # noqa: B010 - a bench knob
        print("context search reads no lint finding (--no-lint)")
    if args.per_round:
        prefix_search.PER_ROUND = args.per_round
        print(f"prefix search cuts {args.per_round} prefixes a round (--per-round)")
    run(args.models, args.seed, args.device, args.small, args.small_seed, args.hidden)


if __name__ == "__main__":
    main()
