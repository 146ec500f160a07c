"""Where the test suite's time goes, from a pytest log run with ``--durations=0``.

    python bench/suite_time.py /tmp/ci.log                 # figures per directory and phase
    python bench/suite_time.py /tmp/ci.log --write-durations
        # also rewrite tests/services/durations.txt, the list of known-slow tests the
        # suite's ordering hook reads (tests/services/order.py)

Several logs may be given (oldest first): a test's figures are those of the last log that
lists it, so the 15-slowest sections of several runs add up to a list too.

Prints, per test directory: the tests' summed set-up, call and teardown seconds, the
count and the share of the suite's sum; then the slowest tests. With two xdist workers the
wall time is about the sum / 2 plus the tail (the last test to start), so the sum is the
figure to bring down. Figures only: nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DURATIONS = ROOT / "tests" / "services" / "durations.txt"
LINE = re.compile(r"^\s*(\d+(?:\.\d+)?)s (setup|call|teardown)\s+(\S.*?)\s*$")
# Tests below this are left out of the list: the ordering hook counts them at its default.
LISTED_S = 1.0


def stable(nodeid: str) -> str:
    """The node id without the ``@group`` suffix xdist's loadgroup gives it."""
    at, bracket = nodeid.rfind("@"), nodeid.rfind("]")
    return nodeid[:at] if at > bracket else nodeid


def parse(log: Path) -> dict[str, dict[str, float]]:
    """node id → phase → seconds, from the log's "slowest durations" section."""
    tests: dict[str, dict[str, float]] = defaultdict(dict)
    inside = False
    for line in log.read_text(errors="replace").splitlines():
        if "slowest" in line and "durations" in line:
            inside = True
            continue
        if not inside:
            continue
        match = LINE.match(line)
        if match:
            seconds, phase, nodeid = match.groups()
            tests[stable(nodeid)][phase] = float(seconds)
        elif tests and line.startswith(("=", "(")):
            inside = False  # the next banner, or "(N durations < 0.005s hidden …)"
    return tests


def directory(nodeid: str) -> str:
    parts = nodeid.split("::", 1)[0].split("/")
    return "/".join(parts[:2]) if len(parts) > 2 else parts[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("logs", type=Path, nargs="+", metavar="log")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--write-durations", action="store_true")
    args = parser.parse_args(argv)
    tests: dict[str, dict[str, float]] = {}
    for log in args.logs:
        tests.update(parse(log))
    if not tests:
        print("no durations section in the log(s) (run pytest with --durations=0)")
        return 1
    total = sum(sum(p.values()) for p in tests.values())
    per_dir: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for nodeid, phases in tests.items():
        row = per_dir[directory(nodeid)]
        row["n"] += 1
        for phase, seconds in phases.items():
            row[phase] += seconds
    print(f"{len(tests)} tests, {total:.0f} s summed (≈ {total / 2:.0f} s on two workers"
          " before the tail)")  # fmt: skip
    print(
        f"{'directory':<22}{'tests':>6}{'setup':>9}{'call':>9}{'teardown':>10}{'sum':>9}{'share':>7}"
    )
    for name, row in sorted(per_dir.items(), key=lambda kv: -sum(v for k, v in kv[1].items()
                                                                    if k != "n")):  # fmt: skip
        spent = row["setup"] + row["call"] + row["teardown"]
        print(f"{name:<22}{row['n']:>6.0f}{row['setup']:>9.1f}{row['call']:>9.1f}"
              f"{row['teardown']:>10.1f}{spent:>9.1f}{spent / total:>7.1%}")  # fmt: skip
    print(f"\nslowest {args.top} (set-up + call + teardown):")
    ranked = sorted(tests.items(), key=lambda kv: -sum(kv[1].values()))
    for nodeid, phases in ranked[: args.top]:
        print(f"{sum(phases.values()):8.2f}s  setup {phases.get('setup', 0):6.2f}  {nodeid}")
    if args.write_durations:
        listed = [(sum(p.values()), n) for n, p in ranked if sum(p.values()) >= LISTED_S]
        header = (
            "# Known durations (seconds, set-up + call + teardown) of the tests that take at\n"
            f"# least {LISTED_S:.0f} s, from CI logs (--durations): the order the xdist workers\n"
            "# take work in (tests/services/order.py), longest first; a test not listed counts\n"
            "# as a short one. Refresh: `python bench/suite_time.py LOG... --write-durations`.\n"
        )
        DURATIONS.write_text(header + "".join(f"{s:.2f} {n}\n" for s, n in listed))
        print(f"\nwrote {len(listed)} tests to {DURATIONS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
