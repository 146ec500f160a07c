"""One summary per (sweep, night, cause), not one alert per series.

A cause is what attribution found changed — an OS build, a runner version, a device, the
model (per series: a retrained file is its own cause), or nothing ("device/OS unchanged,
model unchanged", kept per device class so a slowed class reads as one summary; a thermal
state, also per device class, for timing findings only) — and the
direction (worse, better, failing). The headline leads with the strongest effect:
placement moves by op kind, then failures, verdicts, latency, compile/load.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from orchestrator.regress.findings import Attribution, Check, Finding, Status

EFFECT_ORDER = (Check.PLACEMENT, Check.RUN, Check.VERDICT, Check.LATENCY, Check.TREND,
                Check.COMPILE, Check.LOAD)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Summary:
    sweep: str
    night: date
    cause: tuple[str, ...]  # the grouping key, stable for the wiring's unique constraint
    direction: str  # regression | improvement | failure
    title: str
    findings: tuple[Finding, ...]

    @property
    def series_count(self) -> int:
        return len({f.key for f in self.findings})


# Heat slows a model; it neither moves its ops nor fails it: the thermal state is a cause of
# timing findings only, and kept per device class (a hot rack is that class's problem).
TIMED = (Check.LATENCY, Check.TREND, Check.COMPILE, Check.LOAD)
PER_SERIES, PER_CLASS = "model sha256", "thermal state"


def causes(finding: Finding) -> Attribution:
    """The attribution a finding is grouped and titled by."""
    changes = finding.attribution.changes
    if finding.check in TIMED:
        return finding.attribution
    return Attribution(tuple(c for c in changes if c.name != PER_CLASS))


def cause_of(finding: Finding) -> tuple[str, ...]:
    changes = causes(finding).changes
    if not changes:
        key = finding.key
        cause: tuple[str, ...] = ("unchanged", key.device_class)
    else:
        at = {PER_SERIES: finding.key.series, PER_CLASS: finding.key.device_class}
        cause = tuple(f"{c.name}={c.after}" + (f"@{at[c.name]}" if c.name in at else "")
                      for c in changes)  # fmt: skip
    return cause


def direction_of(finding: Finding) -> str:
    if finding.status in (Status.FAILED, Status.MISSING):
        return "failure"
    return "regression" if finding.status is Status.REGRESSION else "improvement"


def _count(findings: Iterable[Finding]) -> str:
    found = list(findings)
    models = len({f.key.series for f in found})
    classes = len({f.key.device_class for f in found})
    return f"{models} model{'s' * (models != 1)} × {classes} device class{'es' * (classes != 1)}"


def _headline(findings: list[Finding]) -> str:
    by_check: dict[Check, list[Finding]] = defaultdict(list)
    for f in findings:
        by_check[f.check].append(f)
    parts = []
    for check in EFFECT_ORDER:
        group = by_check.get(check)
        if not group:
            continue
        if check is Check.PLACEMENT:
            moves: dict[tuple[str, str, str], list[Finding]] = defaultdict(list)
            for f in group:
                for kind in {(m.kind, m.before, m.after) for m in f.moves}:
                    moves[kind].append(f)
            parts += [
                f"{k} moved {b} → {a} on {_count(fs)}" for (k, b, a), fs in sorted(moves.items())
            ]
        elif check is Check.RUN:
            reasons = sorted({f.message for f in group})
            parts.append(f"{'; '.join(reasons)[:200]} on {_count(group)}")
        elif check is Check.VERDICT:
            pairs = sorted({f"{f.baseline} → {f.value}" for f in group})
            parts.append(f"verdict {', '.join(pairs)} on {_count(group)}")
        else:
            changes = sorted(f.change for f in group if f.change is not None)
            mid = changes[len(changes) // 2] if changes else 0.0
            parts.append(f"{check.value} {mid * 100:+.0f} % (median) on {_count(group)}")
    return "; ".join(parts)


def group_findings(sweep: str, findings: Iterable[Finding]) -> list[Summary]:
    """The alerting findings (``Finding.alerting``) grouped per (night, cause, direction)."""
    groups: dict[tuple[date, tuple[str, ...], str], list[Finding]] = defaultdict(list)
    for f in findings:
        if f.alerting:
            groups[(f.night, cause_of(f), direction_of(f))].append(f)
    summaries = []
    for (night, cause, direction), group in sorted(
        groups.items(), key=lambda kv: (kv[0][0], kv[0][2], kv[0][1])
    ):
        first = group[0]
        who = causes(first).text()
        if cause[0] == "unchanged" or all(c.startswith(f"{PER_CLASS}=") for c in cause):
            who = f"{first.key.device_class}, {who}"
        summaries.append(
            Summary(
                sweep=sweep,
                night=night,
                cause=cause,
                direction=direction,
                title=f"{who}: {_headline(group)}",
                findings=tuple(group),
            )
        )
    return summaries
