"""Attribution: what differed between the baseline's nights and tonight.

A condition changed when tonight's value is none of the baseline's (a class of three
devices used in turn is not a change); ``before`` is the latest baseline night's value.

The thermal state is read otherwise: it is the night's, not the device's, and a baseline
with one hot night in fourteen is not a hot baseline. It is compared with the baseline's
usual state (the most common one the runner reported; a tie goes to the cooler), and named
only when tonight or that usual state throttles (ProcessInfo.ThermalState ``serious`` or
``critical``: "system performance may be reduced"; ``fair`` is not throttled, and a nominal
↔ fair flicker would only split alerts). A baseline that never reported a state (runs
stored before migration 0011) is ``unknown``; an unknown state tonight is no change.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from orchestrator.regress.findings import Attribution, ConditionChange
from orchestrator.regress.series import Conditions

THERMAL = "thermal state"
# Coolest first (ProcessInfo.ThermalState); serious and critical reduce performance.
THERMAL_ORDER = ("nominal", "fair", "serious", "critical")
THROTTLED = frozenset({"serious", "critical"})
UNKNOWN = "unknown"


def _os(c: Conditions) -> str:
    if c.os_version and c.os_build:
        return f"iOS {c.os_version} ({c.os_build})"
    return c.os_build or c.os_version


Read = Callable[[Conditions], str]
FIELDS: tuple[tuple[str, Read, Read], ...] = (
    # name, what is compared, how it reads
    ("model sha256", lambda c: c.model_sha256, lambda c: c.model_sha256),
    ("OS", lambda c: c.os_build or c.os_version, _os),
    ("runner", lambda c: c.runner_version, lambda c: c.runner_version),
    ("device", lambda c: c.udid, lambda c: c.udid),
)


@dataclass(frozen=True, slots=True)
class ThermalChange(ConditionChange):
    """A thermal change says which side throttled: what a person needs to judge whether a
    latency change is the model's or the heat's."""

    def text(self) -> str:
        note = (" (throttled tonight)" if self.after in THROTTLED
                else " (the baseline throttled)" if self.before in THROTTLED else "")  # fmt: skip
        return f"{THERMAL} {self.before} → {self.after}{note}"


def hottest(states: Iterable[str]) -> str:
    """The hottest known state of a night's runs ("" when none reported one): a night whose
    figure mixes several runs (repeats, a confirmation run) was throttled if one of them was."""
    rank = {state: i for i, state in enumerate(THERMAL_ORDER)}
    known = [s for s in states if s]
    return max(known, key=lambda s: rank.get(s, -1)) if known else ""


def usual_thermal(baseline: Sequence[Conditions]) -> str:
    """The state the baseline's nights reported most often (a tie: the cooler), or
    ``unknown`` when none reported one."""
    counts = Counter(c.thermal_state for c in baseline if c.thermal_state)
    if not counts:
        return UNKNOWN
    rank = {state: i for i, state in enumerate(THERMAL_ORDER)}
    return min(counts, key=lambda s: (-counts[s], rank.get(s, len(rank)), s))


def thermal_change(baseline: Sequence[Conditions], tonight: Conditions) -> ThermalChange | None:
    now = tonight.thermal_state
    if not now:
        return None
    usual = usual_thermal(baseline)
    if now == usual or (now not in THROTTLED and usual not in THROTTLED):
        return None
    return ThermalChange(name=THERMAL, before=usual, after=now)


def attribute(baseline: Sequence[Conditions], tonight: Conditions) -> Attribution:
    if not baseline:
        return Attribution(changes=())
    latest = baseline[-1]
    changes: list[ConditionChange] = []
    for name, key, text in FIELDS:
        now = key(tonight)
        if now and now not in {key(c) for c in baseline}:
            changes.append(ConditionChange(name=name, before=text(latest), after=text(tonight)))
    thermal = thermal_change(baseline, tonight)
    if thermal is not None:
        changes.append(thermal)
    return Attribution(changes=tuple(changes))
