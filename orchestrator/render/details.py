"""Per model, what is worth reading below the verdict matrix.

Ops off the ANE are grouped by cause: one line per (reason, fix) naming the ops and the
device classes it holds on. Ops the compute plan moves off the ANE with no rule against
them are not causes but a context effect (Core ML keeps neighbouring ops on one unit to
avoid hand-overs): they are stated once per model, and the layout-only ones among them
(casts, reshapes) are one count line, since they cost next to nothing.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from orchestrator.render.matrix import share_text, short_device
from orchestrator.report_rows import Report, ReportRow
from orchestrator.verdict.plan import NO_RULE_FIX, PLUMBING_OP_TYPES

# One word per placement everywhere in the text form (JSON keeps the stored names).
UNIT = {
    "neuralEngine": "ANE",
    "gpu": "GPU",
    "cpu": "CPU",
    "gpu-or-cpu": "GPU or CPU",
    "unknown": "not placed",
    None: "–",
}
SOURCE = {"plan": "by the compute plan", "probe": "by probe", "lint": "predicted by lint"}
UNIT_NOTE = (
    "GPU or CPU = measured off the ANE, but timing cannot tell which of the two;"
    " not placed = the probe's timing was too close to call"
)
MAX_NAMES = 4  # op names quoted per line; the JSON has them all
# What kept a verdict the probes could not decide, as bisect.mapping's reason words it.
KEPT_BY = {"its timing": "the model's timing", "lint's prediction": "lint's prediction"}


def unit_word(unit: str | None) -> str:
    return UNIT.get(unit, str(unit))


def where(row: ReportRow) -> str:
    return f"{row.chip} {short_device(row.device_name, row.device_class)}"


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:MAX_NAMES])
    return shown + (f" and {len(names) - MAX_NAMES} more" if len(names) > MAX_NAMES else "")


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "es" if word.endswith("s") else "s")


def model_lines(rows: list[ReportRow]) -> list[list[str]]:
    """One model's rows (all device classes) as entries of paragraphs; empty: nothing to say."""
    causes: dict[tuple[str, str], dict[str, Any]] = {}
    context: dict[str, list[str]] = {}  # device → ops the plan moved along
    context_units: set[str] = set()
    layout: dict[str, Counter[str]] = {}  # device → op type → count
    layout_units: set[str] = set()
    # (cause, unit) → device → ops context search found carried by that cause.
    carried: dict[tuple[str, str], dict[str, list[str]]] = {}
    entries: list[list[str]] = []
    for row in rows:
        here = where(row)
        if row.error:
            entries.append([f"{here}: failed — {row.error[:200]}"])
        elif row.waiting_since:
            entries.append(
                [f"{here}: waiting for a device of the class since {row.waiting_since[:19]} UTC"]
            )
        for op in row.ops_off_ane:
            unit = row.unit_of(op)
            if op.role == "carried":
                spot = carried.setdefault((str(op.carried_by), unit_word(unit)), {})
                spot.setdefault(here, []).append(str(op.name))
                continue
            if op.fix == NO_RULE_FIX:
                # No rule against the op: the plan moved it along with a neighbour.
                if op.type in PLUMBING_OP_TYPES:
                    layout.setdefault(here, Counter())[str(op.type)] += 1
                    layout_units.add(unit_word(unit))
                else:
                    context.setdefault(here, []).append(str(op.name))
                    context_units.add(unit_word(unit))
                continue
            cause = causes.setdefault((str(op.reason), str(op.fix)), {"ops": {}, "where": {}})
            cause["ops"].setdefault(op.type, [])
            if op.name not in cause["ops"][op.type]:
                cause["ops"][op.type].append(op.name)
            found = f"{unit_word(unit)} {SOURCE.get(str(op.source), op.source)}" + (
                ", the cause"
                if op.role == "cause"
                else ", not isolated"
                if op.role == "not isolated"
                else ""
            )
            cause["where"].setdefault(found, []).append(here)
    for (reason, fix), cause in causes.items():
        ops = "; ".join(f"{_names(names)} ({kind})" for kind, names in cause["ops"].items())
        spots = "; ".join(
            f"{', '.join(dict.fromkeys(devices))}: {found}"
            for found, devices in cause["where"].items()
        )
        entries.append([f"{ops}: {reason}", f"fix: {fix}", f"on {spots}"])
    for (by, unit), moved_on in carried.items():
        names = list(dict.fromkeys(n for moved in moved_on.values() for n in moved))
        them, they = ("it", "it") if len(names) == 1 else ("them", "they")
        entries.append(
            [
                f"{_names(names)}: carried to the {unit} with {by} on {', '.join(moved_on)} —"
                f" the ANE runs {them} alone, but Core ML moves {them} with {by} (context search)",
                f"fix: fix {by}, and {they} should return to the ANE",
            ]
        )
    if context:
        names = list(dict.fromkeys(n for moved in context.values() for n in moved))
        it = "it" if len(names) == 1 else "them"
        # With no cause listed above (no lint rule, no probe names one), "fixing the causes
        # above" would point at nothing: say the plan chose it on its own.
        cause_listed = bool(causes or carried)
        entries.append(
            [
                f"context effect on {', '.join(context)}: the compute plan"
                f"{' also' if cause_listed else ''} puts {_names(names)}"
                f" on the {' or '.join(sorted(context_units))}, though the ANE supports {it},"
                " to avoid hand-overs between units; "
                + (
                    f"fixing the causes above should bring {it} back"
                    if cause_listed
                    else "no op of this model is a known cause (no lint rule or probe names"
                    " one): it is Core ML's own placement"
                )
            ]
        )
    if layout:
        total: Counter[str] = Counter()
        for counts in layout.values():
            total = total | counts  # the same ops on each device: the largest count
        said = " and ".join(_plural(n, t) for t, n in sorted(total.items()))
        entries.append(
            [
                f"{said} run on the {' or '.join(sorted(layout_units))} by plan on"
                f" {', '.join(layout)}: layout ops, usually harmless"
            ]
        )
    timed = [row for row in rows if any(r.startswith("context: ") for r in row.reasons)]
    for note in dict.fromkeys(
        r.removeprefix("context: ")
        for row in timed
        for r in row.reasons
        if r.startswith("context: ")
    ):
        entries.append(
            [f"context effect, from timing on {', '.join(where(r) for r in timed)}: {note}"]
        )
    return entries


def bisection_lines(report: Report) -> list[str]:
    """Per bisected row: the verdict the matrix shows and how the probes led to it, then
    only the ops worth a look (off the ANE, not placed, or where lint disagrees)."""
    shown = [(r, r.bisection) for r in report.rows if r.bisection]
    if not shown:
        return []
    probes = report.probes
    lifted = sum(1 for p in probes if (p.repeat or 1) > 1)
    windows = sum(1 for p in probes if (p.op_type or "").startswith("window"))
    whys = {b.why or b.trigger for _, b in shown}
    common = whys.pop() if len(whys) == 1 else None
    lines = [
        f"Bisection: {len(probes) - windows} probe run(s), each one op of the model run alone on"
        f" the device ({lifted} lifted: run again as many parallel copies of the op, one alone being"
        " too quick to time). Ops run alone do not show context effects (Core ML moving neighbours"
        " along)"
        + (
            f"; {windows} context-search window(s) did: the ops beside a cause, cut out with it,"
            " show whether Core ML moves them with it (carried)"
            if windows
            else ""
        )
        + "."
        + (f" Why bisected: {common}." if common else ""),
        UNIT_NOTE,
    ]
    for row, b in shown:
        head = f"{row.model} on {where(row)} (iOS {row.os_version})"
        if not common:
            head += f", {b.why or b.trigger}"
        if b.state != "done":
            lines.append(f"{head}: {b.state}" + (f" — {b.error}" if b.error else ""))
            continue
        units = Counter(
            "on"
            if op.by_probe == "neuralEngine"
            else "unknown"
            if op.by_probe == "unknown"
            else "off"
            for op in b.ops
        )
        now = f"{row.verdict}" + (
            f" {share_text(row.ane_share)}" if row.verdict == "PARTIAL" else ""
        )
        # With ops not placed and none off the ANE, the verdict stays what decided it before
        # the probes: the model's timing, or lint's prediction beside it (bisect.mapping).
        kept = next(
            (
                source
                for r in row.reasons
                for said_by, source in KEPT_BY.items()
                if f"decided by {said_by}" in r
            ),
            None,
        )
        said = (
            f"{units['on']} op(s) on the ANE, {units['off']} off it, {units['unknown']} not placed"
        )
        verdict = f"; too few placed to decide: {now} from {kept}" if kept else f" → {now}"
        before = b.verdict_before
        lines.append(
            f"{head}: {said}{verdict}"
            + (f" (timing alone had said {before})" if before and before != row.verdict else "")
        )
        for op in b.ops:
            if op.by_probe == "neuralEngine" and not op.disagree and op.role != "not isolated":
                continue
            confidence = "" if op.confidence is None else f" (confidence {op.confidence:.1f})"
            lint = f"lint {unit_word(op.by_lint)}" + (", disagrees" if op.disagree else "")
            plan = f", plan {unit_word(op.by_plan)}" if op.by_plan else ""
            role = (
                f"; carried by {op.carried_by}"
                if op.role == "carried"
                else "; the cause"
                if op.role == "cause"
                else "; not isolated (prefix search)"
                if op.role == "not isolated"
                else ""
            )
            lines.append(
                f"   · {op.name} ({op.type}): {unit_word(op.by_probe)}{confidence}{plan}; {lint}"
                + role
            )
    return lines
