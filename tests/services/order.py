"""Longest work first on the xdist workers (`make test`: two workers, ``--dist loadgroup``).

A worker takes the next unit of work (one test, or one ``xdist_group``) in collection
order as it runs dry. In file order the longest tests (tests/sweeps, tests/faults: 20 to
100 s each) come near the end, so one worker still runs them for a minute or two after
the other has finished: the run's tail. Sorting the units by their known duration,
longest first, lets the short tests fill in at the end instead (the longest-processing-
time rule), and the two workers finish within seconds of each other.

The durations come from ``durations.txt`` beside this file (CI logs' ``--durations``
sections; ``bench/suite_time.py LOG... --write-durations`` refreshes it); a test not
listed counts as ``UNLISTED_S``. Only the order changes, in the workers only: every
test still runs, and a unit's own tests keep their order, so a module-scoped fixture is
still built once per group. xdist's own reordering (units with more tests first) would
undo this one, so it is switched off.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.services.common import group_of, stable_nodeid

DURATIONS = Path(__file__).with_name("durations.txt")
UNLISTED_S = 0.3  # a test under the list's 1 s threshold: most of them take 0.1-0.5 s


def known_durations(path: Path = DURATIONS) -> dict[str, float]:
    """Node id (without any ``@group`` suffix) → seconds."""
    found: dict[str, float] = {}
    if not path.exists():
        return found
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            seconds, _, nodeid = line.partition(" ")
            found[nodeid.strip()] = float(seconds)
    return found


def longest_first(items: list[pytest.Item], durations: dict[str, float]) -> list[pytest.Item]:
    """``items`` regrouped into xdist's units (group, else the test itself), the units in
    decreasing total duration; ties and each unit's tests keep collection order."""
    units: dict[str, list[pytest.Item]] = {}
    for item in items:
        units.setdefault(group_of(item) or item.nodeid, []).append(item)

    def seconds(unit: list[pytest.Item]) -> float:
        return sum(durations.get(stable_nodeid(item), UNLISTED_S) for item in unit)

    ranked = sorted(units.values(), key=seconds, reverse=True)  # sorted() is stable
    return [item for unit in ranked for item in unit]


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config.option, "loadscopereorder"):  # pytest-xdist's controller and workers
        config.option.loadscopereorder = False


@pytest.hookimpl(trylast=True)  # after the hook that adds the xdist_group marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not hasattr(config, "workerinput"):  # not an xdist worker: file order, as ever
        return
    items[:] = longest_first(items, known_durations())
