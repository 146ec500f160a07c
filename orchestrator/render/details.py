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


def unit_word(unit: str | None) -> str:
    return UNIT.get(unit, str(unit))


def where(row: dict[str, Any]) -> str:
    return f"{row['chip']} {short_device(row.get('device_name'), row['device_class'])}"


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:MAX_NAMES])
    return shown + (f" and {len(names) - MAX_NAMES} more" if len(names) > MAX_NAMES else "")


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "es" if word.endswith("s") else "s")


def probe_units(row: dict[str, Any]) -> dict[str, str]:
    # The verdict stores a probe's "GPU or CPU" as unknown; the bisection keeps it: use that.
    return {op["name"]: op["by_probe"] for op in (row.get("bisection") or {}).get("ops", [])}


def model_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The lines for one model's rows (all device classes); empty when nothing to say."""
    causes: dict[tuple[str, str], dict[str, Any]] = {}
    context: dict[str, list[str]] = {}  # device → names moved along by the plan
    layout: dict[str, Counter[str]] = {}  # device → op type → count
    lines: list[str] = []
    for row in rows:
        here = where(row)
        if row.get("error"):
            lines.append(f"{here}: failed — {row['error'][:200]}")
        elif row.get("waiting_since"):
            lines.append(
                f"{here}: waiting for a device of the class since {row['waiting_since'][:19]} UTC"
            )
        probed = probe_units(row)
        for op in row.get("ops_off_ane", []):
            unit = probed.get(op["name"], op["unit"]) if op["source"] == "probe" else op["unit"]
            if op["fix"] == NO_RULE_FIX:
                if op["type"] in PLUMBING_OP_TYPES:
                    layout.setdefault(here, Counter())[op["type"]] += 1
                else:
                    context.setdefault(here, []).append(op["name"])
                continue
            cause = causes.setdefault((op["reason"], op["fix"]), {"ops": [], "where": {}})
            label = f"{op['name']} ({op['type']})"
            if label not in cause["ops"]:
                cause["ops"].append(label)
            cause["where"].setdefault(here, set()).add(
                (unit_word(unit), SOURCE.get(op["source"], op["source"]))
            )
    for (reason, fix), cause in causes.items():
        spots = "; ".join(
            f"{device} → {', '.join(sorted(f'{u} {s}' for u, s in found))}"
            for device, found in cause["where"].items()
        )
        lines.append(f"{_names(cause['ops'])}: {reason}. Fix: {fix}. On {spots}")
    if context:
        names = list(dict.fromkeys(n for moved in context.values() for n in moved))
        lines.append(
            f"context effect on {', '.join(context)}: the compute plan also moves {_names(names)} off the"
            " ANE, though the ANE supports them, to avoid hand-overs between units; they should"
            " follow once the causes above are fixed"
        )
    if layout:
        total: Counter[str] = Counter()
        for counts in layout.values():
            total = total | counts
        said = " and ".join(_plural(n, t) for t, n in sorted(total.items()))
        lines.append(
            f"{said} run on the GPU or CPU by plan on {', '.join(layout)}: layout ops, usually harmless"
        )
    for note in dict.fromkeys(
        r.removeprefix("context: ")
        for row in rows
        for r in row.get("reasons", [])
        if r.startswith("context: ")
    ):
        lines.append(f"context effect: {note}")
    return lines


def bisection_lines(report: dict[str, Any]) -> list[str]:
    """Per bisected row: why, the verdict before and after, and only the ops off the ANE."""
    shown = [r for r in report["rows"] if r.get("bisection")]
    if not shown:
        return []
    probes = report.get("probes", [])
    lifted = sum(1 for p in probes if (p.get("repeat") or 1) > 1)
    lines = [
        f"Bisection: {len(probes)} probe run(s), each one op of the model run alone on the device"
        f" ({lifted} lifted: run again as many parallel copies of the op, one alone being too quick"
        " to time). Ops run alone do not show context effects (Core ML moving neighbours along).",
        UNIT_NOTE,
    ]
    for row in shown:
        b = row["bisection"]
        why = b.get("why") or b.get("trigger")
        head = f"{row['model']} on {where(row)} (iOS {row['os_version']}), {why}"
        if b["state"] != "done":
            lines.append(f"{head}: {b['state']}" + (f" — {b['error']}" if b.get("error") else ""))
            continue
        on_ane = sum(1 for op in b["ops"] if op["by_probe"] == "neuralEngine")
        now = row["verdict"] + (
            f" {share_text(row['ane_share'])}" if row["verdict"] == "PARTIAL" else ""
        )
        before = b.get("verdict_before")
        lines.append(
            f"{head}: {on_ane} of {len(b['ops'])} op(s) on the ANE → {now}"
            + (f" (timing alone had said {before})" if before and before != row["verdict"] else "")
        )
        for op in b["ops"]:
            if op["by_probe"] == "neuralEngine" and not op["disagree"]:
                continue
            confidence = "" if op["confidence"] is None else f" (confidence {op['confidence']:.1f})"
            lint = f"lint {unit_word(op['by_lint'])}" + (", disagrees" if op["disagree"] else "")
            plan = f", plan {unit_word(op['by_plan'])}" if op.get("by_plan") else ""
            lines.append(
                f"  {op['name']} ({op['type']}): {unit_word(op['by_probe'])}{confidence}{plan}; {lint}"
            )
    return lines
