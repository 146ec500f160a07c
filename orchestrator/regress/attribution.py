"""Attribution: what differed between the baseline's nights and tonight.

A condition changed when tonight's value is none of the baseline's (a class of three
devices used in turn is not a change); ``before`` is the latest baseline night's value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from orchestrator.regress.findings import Attribution, ConditionChange
from orchestrator.regress.series import Conditions


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
    ("thermal state", lambda c: c.thermal_state, lambda c: c.thermal_state),
)


def attribute(baseline: Sequence[Conditions], tonight: Conditions) -> Attribution:
    if not baseline:
        return Attribution(changes=())
    latest = baseline[-1]
    changes = []
    for name, key, text in FIELDS:
        now = key(tonight)
        if now and now not in {key(c) for c in baseline}:
            changes.append(ConditionChange(name=name, before=text(latest), after=text(tonight)))
    return Attribution(changes=tuple(changes))
