"""Context search: which ops off the ANE are a **cause** (the ANE cannot run them) and
which are **carried** (the ANE runs them alone, but Core ML moves them with a cause).

Single-op probes name the causes. Within a whole model Core ML merges neighbouring ops
into segments and moves a cheap ANE segment to the GPU when that saves the hand-overs
into and out of it (ane-facts.md, runtime heuristics): those ops are off the ANE in the
model although every probe of theirs ran on it. Without a compute plan (iOS < 17.4)
nothing but timing shows it, so after the probes are mapped back
(``finish.try_finish``) the parent's runs of ops *not* off the ANE (on it, or not placed)
that border a cause are each cut out as a **window**: the run with the ops off the ANE on
either side of it (``modelkit.windows``). Inside the window every op of the run has the
same neighbours on the same units as in the whole model, so Core ML decides about that
segment as it does in the model, and the window's timing tells the decision:

* the whole interval of `all`/`cpuAndGPU` within ±4 % → the run goes where the causes go:
  its ops are **carried** by the cause that borders it on the GPU side — unless staying on
  the ANE would look the same (a close call: ``window_reading.unless_close_call``, from each
  cause measured alone in the same launch), then unknown;
* the whole interval outside ±4 % (either side: a split also costs GPU dispatches Core ML's
  choice does not weigh) → the ANE takes part: the run stays on it;
* anything else → unknown, said so; nothing is named.

Cost: at most two windows and one reference (the cause alone) per cause, all planned at once and packed into runner launches
with the parent's other probes (``packing``): one extra round of probe batches per
parent, within the O(log n) per cause the issue allows. Windows are never cut inside a
run: a cut edge changes the neighbours, and with them Core ML's choice.

Without a cause (every op on the ANE by probe or not placed, no lint rule naming one, the
model's timing saying otherwise) there is nothing to border a window: prefixes of the model
are measured instead (``prefix_search``), the first round with any windows, then in rounds
of their own planned as each round is read (``on_window_final``), to bracket where work
starts leaving the ANE down to the cause; the windows beside the cause found follow in one
more round, and their moved runs are carried by it.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from orchestrator.bisect import context_reuse, prefix_search
from orchestrator.bisect.mapping import ANE, CARRIED, CAUSE, OpByProbe, OpRef, redo_with_roles
from orchestrator.bisect.placement import UNKNOWN, ProbeStatus
from orchestrator.bisect.plan import stored_lint
from orchestrator.bisect.window_reading import (
    MOVED,
    WindowReading,
    leaves_in_model,
    read_leaving,
    read_window,
    unless_close_call,
    whole_model,
)
from orchestrator.bisect.window_runs import GPU_SIDE, Window, window_runs, windows
from orchestrator.errors import AnefarmError
from orchestrator.protocol import (
    ComputeUnit,
    RunBatch,
    RunnerResult,
    Verdict,
    VerdictKind,
)
from orchestrator.settings import Settings
from orchestrator.store import models as db

log = logging.getLogger(__name__)
RUNNING, DONE = "running", "done"
PROVISIONAL = "a window beside it runs on the GPU under `all`"


def start(session: Session, parent: db.Run, *, settings: Settings) -> list[RunBatch]:
    """After the probes are mapped back, without a compute plan and with a verdict that is
    not FULL: when the model's own timing shows it entirely off the ANE, name the roles at
    once (no probe); else plan the windows beside the causes; the window batches (packed)."""
    plan = dict(parent.bisection or {})
    row = session.scalars(select(db.Verdict).filter_by(run_id=parent.id)).one_or_none()
    if row is None:
        return []
    verdict = Verdict.model_validate(row.payload)
    # FULL: nothing is off the ANE. No timing comparison: the model's settings could not be
    # compared (too few samples, say), and windows measured the same way could not be either.
    if verdict.plan_available or "context" in plan:
        return []
    if verdict.verdict is VerdictKind.FULL or not verdict.timing:
        return []
    placed = [_by_probe(p) for p in plan.get("placements", [])]
    found = windows(placed)
    # The whole model is a window too, but a long one: a short segment staying on the ANE
    # changes its timing by too little to see. Only without causes placed by probe (so
    # without windows to cut) does its own timing stand in, and then only lint names causes.
    whole = None if found else whole_model(verdict)
    if whole is not None:
        marked = _lint_causes(
            placed,
            stored_lint(session.get(db.Model, parent.model_sha256), plan["key"]["chip"]),
            whole,
        )
        runs = windows(marked)
        if runs:
            plan["context"] = {
                "state": RUNNING,
                "windows": [{**asdict(w), "run": f"model-{i}"} for i, w in enumerate(runs)],
                "launches": 0,
            }
            finish(
                session,
                parent,
                plan,
                {f"model-{i}": WindowReading(MOVED, whole) for i in range(len(runs))},
                marked,
            )
        return []
    provisional: list[int] = []
    if not found:
        # No cause placed by probe, the model's own timing not decisive: the ops their probe
        # could not place but a lint rule names border windows provisionally; such a cause
        # stands only if a window beside it moves (``finish``).
        lint = stored_lint(session.get(db.Model, parent.model_sha256), plan["key"]["chip"])
        marked = _lint_causes(placed, lint, PROVISIONAL)
        provisional = [i for i, (a, b) in enumerate(zip(placed, marked, strict=True)) if a is not b]
        found = windows(marked)
    prefixes: list[Window] = []
    if (not found or provisional) and leaves_in_model(verdict):
        # No cause placed by probe, yet `all` does not run the model as the ANE path does:
        # bracket where work starts leaving the ANE with prefixes (prefix_search), in the
        # same round as any provisional windows (a cause whose neighbours stay on the ANE
        # moves no window, but a prefix still isolates it).
        prefixes = [Window(0, k, list(range(k)), []) for k in prefix_search.lengths(len(placed))]
    if not found and not prefixes:
        return []
    # Each cause alone as well, in the same launches: what it costs on the CPU and on the
    # GPU under the same heat as its windows (window_reading.unless_close_call).
    causes = sorted({c for w in found for c in w.causes})
    references = [Window(c, c + 1, [], [c]) for c in causes]
    # Prefixes last: packing fills launches in order, and a window must share its launch
    # with its causes' references (the same heat) more than a prefix needs any company.
    cut = found + references + prefixes
    reused = context_reuse.earlier_windows(session, parent, cut)
    if reused is not None:  # the same model on the same conditions: read those windows
        plan["context"] = {"state": RUNNING, "windows": reused.windows, "launches": 0,
                           "provisional": provisional, "reused_from": reused.run}  # fmt: skip
        finish(session, parent, plan, reused.readings)
        return []
    try:
        batches, runs_ids = window_runs(session, parent, cut, plan, settings)
    except AnefarmError as error:
        log.warning("context search of run %s cannot start: %s", parent.id, error)
        plan["context"] = {"state": DONE, "error": str(error), "windows": []}
        parent.bisection = plan
        return []
    listed = [
        {**asdict(w), "run": str(r), "reference": not w.inner,
         "prefix": bool(w.inner) and not w.causes, "round": 1}
        for w, r in zip(cut, runs_ids, strict=True)
        if r is not None
    ]  # fmt: skip
    if not listed:  # only prefixes, none of which could be cut: nothing to wait for
        return []
    plan["context"] = {
        "state": RUNNING,
        "started_at": datetime.now(UTC).isoformat(),
        "windows": listed,
        "launches": len(batches),
        "rounds": 1,  # rounds of probe batches; prefix search may add more (prefix_search)
        "provisional": provisional,
    }
    parent.bisection = plan
    parent.bisect_state = db.BisectState.PENDING
    return batches


def _lint_causes(placed: list[OpByProbe], lint: list[Any], whole: str) -> list[OpByProbe]:
    """With the whole model off the ANE, an op its probe could not place is off it too;
    when a lint rule says why, it is a cause (by lint) and borders the runs it carries."""
    expected = {
        f.op_index: f.expected_unit
        for f in lint
        if f.op_index is not None and f.expected_unit in GPU_SIDE | {str(ComputeUnit.CPU)}
    }
    out = []
    for op in placed:
        p, unit = op, expected.get(op.index)
        # Only an op too small to time: a probe that failed on the device stays unknown.
        if p.status == ProbeStatus.INCONCLUSIVE and unit is not None:
            p = replace(p, unit=unit, status=str(ProbeStatus.PLACED), confidence=0.6,
                        reason=f"off the ANE in the model ({whole}); not placed alone, a lint rule names the cause")  # fmt: skip
        out.append(p)
    return out


def running(parent: db.Run) -> bool:
    return bool(((parent.bisection or {}).get("context") or {}).get("state") == RUNNING)


def on_window_final(
    session: Session,
    run: db.Run,
    runner: RunnerResult | None,
    failure: str | None,
    *,
    settings: Settings,
) -> list[RunBatch]:
    """A window probe is final: keep its reading; when it was the last of its round, plan
    the next round (prefix search narrowing its bracket, or the windows beside the cause it
    isolated: ``prefix_search.next_round``) and return its batches, or finish the parent."""
    reading = (
        read_window(runner)
        if runner is not None
        else WindowReading(UNKNOWN, f"the window probe failed: {failure or 'no result'}")
    )
    leaving = read_leaving(runner) if runner is not None else WindowReading(UNKNOWN, reading.reason)
    run.bisection = {
        **(run.bisection or {}),
        "reading": asdict(reading),
        "leaves": asdict(leaving),  # read by a prefix search (prefix_search.conclude)
    }
    session.flush()
    parent = (
        session.get(db.Run, run.parent_run_id, with_for_update=True) if run.parent_run_id else None
    )
    if parent is None or not running(parent):
        return []
    plan = dict(parent.bisection or {})
    readings: dict[str, WindowReading] = {}
    for w in plan["context"]["windows"]:
        probe = session.get(db.Run, _uuid(w["run"]))
        got = (probe.bisection or {}).get("reading") if probe is not None else None
        if got is None:
            return []  # another window is on its way
        readings[w["run"]] = WindowReading(**got)
    batches = _next_round(session, parent, plan, settings)
    if not batches:
        finish(session, parent, plan, readings)
    return batches


def _next_round(
    session: Session, parent: db.Run, plan: dict[str, Any], settings: Settings
) -> list[RunBatch]:
    """The next round of the parent's context search (``prefix_search.plan_round``)."""
    alone = [_by_probe(p) for p in plan["placements"]]
    marked = alone
    if plan["context"].get("provisional"):
        lint = stored_lint(session.get(db.Model, parent.model_sha256), plan["key"]["chip"])
        marked = _lint_causes(alone, lint, PROVISIONAL)
    return prefix_search.plan_round(session, parent, plan, alone, marked, settings)


def finish(
    session: Session,
    parent: db.Run,
    plan: dict[str, Any],
    readings: dict[str, WindowReading],
    placed: list[OpByProbe] | None = None,
) -> None:
    """Name each op off the ANE cause or carried, and redo the verdict with them
    (``placed``: the probes' placements, with the causes lint names when the whole model is
    off the ANE)."""
    ops = [OpRef.from_json(o) for o in plan["ops"]]
    alone = [_by_probe(p) for p in plan["placements"]]
    model = session.get(db.Model, parent.model_sha256)
    lint = stored_lint(model, plan["key"]["chip"])
    provisional = plan["context"].get("provisional") or []
    if placed is None:
        placed = _lint_causes(alone, lint, PROVISIONAL) if provisional else list(alone)
    placed = list(placed)
    linted = {f.op_index for f in lint if f.op_index is not None}
    roles: dict[int, tuple[str, int | None]] = {
        i: (CAUSE, None)
        for i, p in enumerate(placed)
        if p.status == ProbeStatus.PLACED and p.unit != ANE
    }
    notes: list[str] = []
    # The cause prefix search isolated, before the windows: those beside it are read with it.
    found = prefix_search.apply(session, plan, alone, placed, roles, notes)
    moved: set[str] = set()  # window runs read as moved
    references = {
        w["causes"][0]: w["run"] for w in plan["context"]["windows"] if w.get("reference")
    }
    for w in plan["context"]["windows"]:
        if w.get("reference") or w.get("prefix"):
            continue
        reading = readings[w["run"]]
        if not w["run"].startswith("model-"):  # a window run (not the model's own timing)
            judged = unless_close_call(
                reading,
                _p50(session, w["run"]),
                {placed[c].name: _p50(session, references.get(c)) for c in w["causes"]},
            )
            probe = session.get(db.Run, _uuid(w["run"])) if judged != reading else None
            if probe is not None:  # the probe list shows the final reading
                probe.bisection = {**(probe.bisection or {}), "reading": asdict(judged)}
            reading = judged
        names = ", ".join(placed[i].name for i in w["inner"][:5]) + (
            " …" if len(w["inner"]) > 5 else ""
        )
        notes.append(
            f"window {w['start']}–{w['stop'] - 1} ({names}): {reading.verdict}: {reading.reason}"
        )
        if reading.verdict != MOVED:
            continue
        moved.add(w["run"])
        by = next((j for j in w["causes"] if placed[j].unit in GPU_SIDE), w["causes"][0])
        for i in w["inner"]:
            p = placed[i]
            if p.status != ProbeStatus.PLACED and ops[i].index in linted:
                roles[i] = (CAUSE, None)  # not placed alone; a lint rule keeps it off the ANE
                why = f"off the ANE in its window (it runs with {placed[by].name}); not placed alone, lint names the cause"
            else:
                roles[i] = (CARRIED, by)
                by_itself = (
                    "on the ANE alone"
                    if p.unit == ANE
                    else "not placed alone, no lint rule against it"
                )
                why = f"carried: {by_itself}, but Core ML moves it off the ANE with its window's causes in the model ({reading.reason})"
            # A probe that failed on the device keeps saying so: the window places the op,
            # the probe's own outcome stays on record.
            status = p.status if p.status == ProbeStatus.FAILED else str(ProbeStatus.PLACED)
            placed[i] = replace(p, unit=placed[by].unit, status=status, confidence=0.6, reason=why)
        _nearest_causes(roles, placed, range(w["start"], w["stop"]))
    for i in provisional:  # a lint cause no window moved beside: not shown to be off the ANE
        if i != found and not any(
            i in w["causes"] and w["run"] in moved for w in plan["context"]["windows"]
        ):
            roles.pop(i, None)
            placed[i] = alone[i]
    verdict_row = session.scalars(select(db.Verdict).filter_by(run_id=parent.id)).one()
    verdict, named = redo_with_roles(
        Verdict.model_validate(verdict_row.payload), ops, placed, roles, lint, notes
    )
    verdict_row.verdict, verdict_row.ane_share = verdict.verdict, verdict.ane_share
    verdict_row.payload = verdict.model_dump(mode="json")
    session.execute(delete(db.OpPlacement).filter_by(run_id=parent.id, source="probe"))
    units = {u.value for u in ComputeUnit}
    for p in placed:
        session.add(db.OpPlacement(run_id=parent.id, source="probe", index=p.index, name=p.name[:512],
                                   op_type=p.type[:128], preferred=p.unit if p.unit in units else None,
                                   supported=[], cost=None))  # fmt: skip
    plan["placements"] = [
        {**asdict(p), "role": roles.get(i, (None, None))[0],
         "carried_by": placed[by].name if (by := roles.get(i, (None, None))[1]) is not None else None}
        for i, p in enumerate(placed)
    ]  # fmt: skip
    plan["context"] = {**plan["context"], "state": DONE, "finished_at": datetime.now(UTC).isoformat(),
                       "carried": sum(1 for r, _ in roles.values() if r == CARRIED), "named": named}  # fmt: skip
    parent.bisection = plan
    parent.bisect_state = db.BisectState.DONE


def _nearest_causes(
    roles: dict[int, tuple[str, int | None]], placed: list[OpByProbe], span: range
) -> None:
    """A carried op is carried by the cause nearest it on the GPU side (the one before it
    first), as Core ML moves its segment: a cause lint found inside a window splits it."""
    causes = [j for j in span if roles.get(j, ("", None))[0] == CAUSE]
    for i in span:
        if roles.get(i, ("", None))[0] != CARRIED:
            continue
        before = max((j for j in causes if j < i), default=None)
        after = min((j for j in causes if j > i), default=None)
        sides = [j for j in (before, after) if j is not None]
        if sides:
            roles[i] = (CARRIED, next((j for j in sides if placed[j].unit in GPU_SIDE), sides[0]))


def _p50(session: Session, run: str | None) -> dict[str, float]:
    """A window run's median latency by compute-units setting."""
    if run is None:
        return {}
    rows = session.scalars(select(db.Measurement).filter_by(run_id=_uuid(run)))
    return {str(m.compute_units): float(m.p50) for m in rows if m.p50 is not None}


def _by_probe(p: dict[str, Any]) -> OpByProbe:
    return OpByProbe(
        p["index"], p["name"], p["type"], p["unit"], p["status"], p["confidence"], p["reason"]
    )


def _uuid(text: str) -> Any:
    from uuid import UUID

    return UUID(text)
