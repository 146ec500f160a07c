"""Prefix search: context search when nothing names a cause (docs/bisection.md, "Context
search", step 5).

Every single-op probe ran on the ANE or could not be placed, no lint rule names an op that
could border a window, and yet the model's own timing says `all` does not run it as the
ANE path does (`all` differs from `cpuAndNeuralEngine`). Some op the ANE cannot run is
there, too small for its own probe to time, or Core ML moves work for reasons single ops
do not show. The first ``k`` ops of the model (a prefix: the window from 0,
``modelkit.windows``) keep the neighbours they have in the model on their left, and an op
the ANE cannot run goes to the GPU under `all` and to the CPU under `cpuAndNeuralEngine`:
a prefix that holds one reads *leaves* (``window_reading.read_leaving``), a prefix that
holds none reads *on the ANE*. Which prefixes leave is monotone in ``k`` (an op that cannot
run on the ANE cannot anywhere), so the first prefix that leaves, after the last that stays,
brackets the op where work starts leaving the ANE.

Adaptive and bounded: each round cuts at most ``k`` prefixes (``per_round``: 4, fewer
than 2 ⌈log2 n⌉ and cheaper in device-seconds, measured), evenly spread
inside the bracket the rounds before left (the first round: inside the whole model), packed
into runner launches like every probe; a round is planned when the previous one is read
(``context.on_window_final``). Each round divides the bracket by about ``k + 1``, so
``⌈log_(k+1) n⌉`` rounds narrow it to one op — three for a model of 100 ops — within the
cap of ``⌈log_k n⌉ + 1`` rounds (``max_rounds``: five). It stops as soon as:

* the bracket is one op: that op is the **cause** — the first ops before it run on the ANE
  under `all`, and with it included they do not: its inclusion is what makes work leave;
* the bracket holds exactly one op its probe could not place (every other op there ran on
  the ANE alone, so it can run there): that op is the cause (it can only be that one);
* the readings are not monotone, or none could be read, or a round narrowed nothing: no op
  is named (a wrong reading somewhere; guessing would name an op wrongly);
* the round cap is reached: the bracket's ops are reported **not isolated** (``mapping.
  NOT_ISOLATED``): work leaves the ANE once they are included, which of them is not known.

A prefix does not tell which of its ops Core ML moves (its right edge is cut, so the
segments there are not the model's): carried ops are not named from it. Once the cause is
isolated, the windows beside it (``window_runs.windows``, cut at the cause as for a cause a
probe placed) are measured in one more round, and ``context.finish`` names the ops they move
carried by it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any
from uuid import UUID

from sqlalchemy.orm import Session

from orchestrator.bisect.mapping import ANE, CAUSE, NOT_ISOLATED, OpByProbe
from orchestrator.bisect.placement import UNKNOWN, ProbeStatus
from orchestrator.bisect.window_reading import LEAVES, ON_ANE, WindowReading
from orchestrator.bisect.window_runs import Window, window_runs, windows
from orchestrator.errors import AnefarmError
from orchestrator.protocol import ComputeUnit, RunBatch
from orchestrator.settings import Settings
from orchestrator.store import models as db

log = logging.getLogger(__name__)

# Prefixes a round: at most 4 (2 ⌈log2 n⌉ for a model under 5 ops). Measured
# (bench/context_search.py --per-round, SIMULATED XR, 2026-11-27): 14 a round for 100-op
# models cost 84 device-s over 14 searches, 4 cost 63 and 2 cost 57 — the search nearly
# always ends in its first round there, so every prefix past the needed ones is waste —
# while 2 a round needs twice the rounds of 4 where narrowing is needed (each round a
# wait for the last result of the one before). PER_ROUND: the bench's knob.
PER_ROUND: int | None = None
MOST_PER_ROUND = 4


def per_round(n: int) -> int:
    """How many prefixes a round cuts of an ``n``-op model."""
    return PER_ROUND or min(MOST_PER_ROUND, 2 * math.ceil(math.log2(max(n, 2))))


def max_rounds(n: int) -> int:
    """The round cap, ``⌈log_k n⌉ + 1`` for ``k`` prefixes a round (k = 1: log base 2)."""
    base, rounds = max(per_round(n), 2), 0
    while base**rounds < n:
        rounds += 1
    return rounds + 1


def lengths(n: int, lo: int = 0, hi: int | None = None, skip: Collection[int] = ()) -> list[int]:
    """The prefix lengths to cut of an ``n``-op model inside the bracket ``lo`` … ``hi``
    (both excluded: read already; the whole model, ``n``, is read from the verdict's own
    timing): at most ``per_round(n)`` of them, dividing it evenly; none of ``skip``."""
    hi = n if hi is None else hi
    inside = [k for k in range(lo + 1, hi) if k not in skip]
    size = per_round(n)
    if len(inside) <= size:
        return inside
    width = hi - lo
    picked = {lo + round(width * j / (size + 1)) for j in range(1, size + 1)}
    return sorted(k for k in picked if lo < k < hi and k not in skip)


@dataclass(frozen=True)
class Outcome:
    """What the prefixes say: a note for the verdict, the isolated cause (position and
    why) when there is one; else, when the readings can be trusted, the ops one of which
    makes work leave (``suspects``) and the lengths between which to cut next (``bracket``:
    the prefixes ``bracket[0] + 1`` … ``bracket[1] - 1``)."""

    note: str
    cause: int | None = None
    why: str = ""
    bracket: tuple[int, int] | None = None
    suspects: tuple[int, ...] = ()


def conclude(
    placed: Sequence[OpByProbe], readings: dict[int, WindowReading], rounds: int = 1
) -> Outcome:
    """The op where work starts leaving the ANE, from each prefix length's reading (module
    docstring). The whole model leaves: the verdict's timing said so.

    A prefix that *leaves* holds an op off the ANE under `all`: sound evidence. One that
    reads *on the ANE* clears only ops that ran on the ANE alone: an op its probe could not
    place may be a cause that costs about the same on the GPU as on the CPU, and then `all`
    (it on the GPU) takes as long as `cpuAndNeuralEngine` (it on the CPU) — the SIMULATED
    XR reads a 15×15 pooling on 8×8 px so in a prefix that ends a few ops after it."""
    n = len(placed)
    order = sorted(readings)
    first = next((k for k in order if readings[k].verdict == LEAVES), n)
    if any(readings[k].verdict == ON_ANE for k in order if k > first):
        said = ", ".join(f"{k}: {readings[k].verdict}" for k in order)
        return Outcome(
            f"prefix search: the prefixes do not read in order ({said}); cause not isolated"
        )
    if order and all(readings[k].verdict == UNKNOWN for k in order):
        return Outcome("prefix search: timing could not read any prefix; cause not isolated")
    stays = [k for k in order if k < first and readings[k].verdict == ON_ANE]
    last = stays[-1] if stays else 0
    after = f"after {rounds} round(s)"
    leaving = readings.get(first)
    said = f" ({leaving.reason})" if leaving is not None else " (the model's own timing)"
    # Ops that did not run on the ANE alone, before the first prefix that leaves: an op
    # that ran there alone is not a cause (as everywhere in bisection).
    odd = [
        i for i in range(first) if placed[i].status != ProbeStatus.PLACED or placed[i].unit != ANE
    ]
    if len(odd) == 1:
        [cause] = odd
        why = (
            f"off the ANE: found by prefix search — the first {first} ops do not run on the ANE"
            f" under `all`{said}; of them only it did not run on the ANE alone"
        )
        return Outcome(f"prefix search: work leaves the ANE at {placed[cause].name}, the one op"
                       f" of the first {first} not placed on the ANE alone ({after}): the cause",
                       cause, why, (cause, first), (cause,))  # fmt: skip
    if odd:
        names = ", ".join(placed[i].name for i in odd[:5]) + (" …" if len(odd) > 5 else "")
        return Outcome(
            f"prefix search: work leaves the ANE once the first {first} ops are included;"
            f" {len(odd)} of them did not run on the ANE alone ({names}): moved, cause not"
            f" isolated {after}",
            bracket=(odd[0], first),
            suspects=tuple(odd),
        )
    # Every op ran on the ANE alone (the case): the prefixes that stay bound it too.
    span = range(last, first)
    if len(span) == 1:
        [cause] = span
        before = (
            f"the first {last} ops run on the ANE under `all`" if last else "it is the first op"
        )
        why = (
            f"off the ANE: found by prefix search — {before}, the first {first} do not{said}:"
            " it is the op whose inclusion makes work leave the ANE"
        )
        return Outcome(f"prefix search: work leaves the ANE at {placed[cause].name}, {after}:"
                       " the op whose inclusion makes work leave the ANE: the cause", cause, why,
                       (last, first), (cause,))  # fmt: skip
    names = ", ".join(placed[i].name for i in list(span)[:5]) + (" …" if len(span) > 5 else "")
    return Outcome(
        f"prefix search: work leaves the ANE once ops {last}–{first - 1} ({names}) are included;"
        f" moved, cause not isolated {after} (each ran on the ANE alone)",
        bracket=(last, first),
        suspects=tuple(span),
    )


def next_lengths(
    placed: Sequence[OpByProbe], readings: dict[int, WindowReading], rounds: list[list[int]]
) -> list[int]:
    """The next round's prefix lengths, inside the bracket the readings so far leave; none
    when the search is over (module docstring). ``rounds``: each round's lengths so far."""
    n = len(placed)
    outcome = conclude(placed, readings, len(rounds))
    if outcome.cause is not None or outcome.bracket is None or len(rounds) >= max_rounds(n):
        return []
    if len(rounds) > 1:
        earlier = {k: r for k, r in readings.items() if k not in set(rounds[-1])}
        if conclude(placed, earlier).bracket == outcome.bracket:
            return []  # the last round narrowed nothing: another would not either
    lo, hi = outcome.bracket
    return lengths(n, lo, hi, skip=readings)


def prefix_readings(session: Session, plan: dict[str, Any]) -> dict[int, WindowReading]:
    """Each prefix length's reading, over every round so far."""
    readings = {}
    for w in plan["context"]["windows"]:
        if not w.get("prefix"):
            continue
        probe = session.get(db.Run, UUID(str(w["run"])))
        got = (probe.bisection or {}).get("leaves") if probe is not None else None
        readings[w["stop"]] = WindowReading(**got) if got else WindowReading(UNKNOWN, "no reading")
    return readings


def rounds_of(plan: dict[str, Any]) -> list[list[int]]:
    """The prefix lengths of each round so far (a prefix of the first round has no number)."""
    by_round: dict[int, list[int]] = {}
    for w in plan["context"]["windows"]:
        if w.get("prefix"):
            by_round.setdefault(int(w.get("round") or 1), []).append(int(w["stop"]))
    return [by_round[r] for r in sorted(by_round)]


def next_round(
    session: Session, plan: dict[str, Any], alone: list[OpByProbe], marked: list[OpByProbe]
) -> list[Window]:
    """What to cut next once every window so far is read: the next round of prefixes; or,
    the cause isolated, the windows beside it not cut yet (with the cause alone as their
    reference), once; else nothing. ``marked``: the placements windows are cut from (with
    any provisional lint causes)."""
    readings = prefix_readings(session, plan)
    if not readings:
        return []
    rounds = rounds_of(plan)
    more = next_lengths(alone, readings, rounds)
    if more:
        return [Window(0, k, list(range(k)), []) for k in more]
    cause = conclude(alone, readings, len(rounds)).cause
    if cause is None or plan["context"].get("beside") is not None:
        return []
    marked = list(marked)
    marked[cause] = _as_cause(marked[cause], "")
    cut = {(w["start"], w["stop"]) for w in plan["context"]["windows"]}
    # Not a window holding an op its probe could not place: that op may be a cause too (the
    # prefixes find only the first), and the window would call it carried.
    beside = [w for w in windows(marked) if cause in w.causes and (w.start, w.stop) not in cut
              and all(marked[i].status == ProbeStatus.PLACED for i in w.inner)]  # fmt: skip
    if not beside:
        return []
    referenced = any(w.get("reference") and w["causes"] == [cause]
                     for w in plan["context"]["windows"])  # fmt: skip
    return beside + ([] if referenced else [Window(cause, cause + 1, [], [cause])])


def plan_round(
    session: Session,
    parent: db.Run,
    plan: dict[str, Any],
    alone: list[OpByProbe],
    marked: list[OpByProbe],
    settings: Settings,
) -> list[RunBatch]:
    """Cut and plan the next round (``next_round``) into ``parent.bisection``: its batches,
    packed; none when the search is over (``context.finish`` reads what the rounds read)."""
    cut = next_round(session, plan, alone, marked)
    if not cut:
        return []
    try:
        batches, runs_ids = window_runs(session, parent, cut, plan, settings)
    except AnefarmError as error:  # finish with what the rounds so far read
        log.warning("context search of run %s: no next round: %s", parent.id, error)
        return []
    context = plan["context"]
    rounds = int(context.get("rounds") or 1) + 1
    listed = [
        {**asdict(w), "run": str(r), "reference": not w.inner,
         "prefix": bool(w.inner) and not w.causes, "round": rounds}
        for w, r in zip(cut, runs_ids, strict=True)
        if r is not None
    ]  # fmt: skip
    if not listed:
        return []
    # Windows beside the cause found: the one cause they all share (a window may also
    # border a provisional lint cause on its other side); prefixes have none.
    shared = set.intersection(*(set(w.causes) for w in cut))
    beside = min(shared) if shared else None
    plan["context"] = {
        **context,
        "windows": [*context["windows"], *listed],
        "launches": int(context.get("launches") or 0) + len(batches),
        "rounds": rounds,  # rounds of probe batches: the first, then one per next round
        **({"beside": beside} if beside is not None else {}),
    }
    parent.bisection = plan
    return batches


def _as_cause(op: OpByProbe, why: str) -> OpByProbe:
    # An op the ANE cannot run goes to the GPU under `all` (to the CPU it would read the
    # same as under `cpuAndNeuralEngine`, and not leave).
    return replace(op, unit=str(ComputeUnit.GPU), status=str(ProbeStatus.PLACED),
                   confidence=0.6, reason=why or op.reason)  # fmt: skip


def apply(
    session: Session,
    plan: dict[str, Any],
    alone: list[OpByProbe],
    placed: list[OpByProbe],
    roles: dict[int, tuple[str, int | None]],
    notes: list[str],
) -> int | None:
    """Read the prefixes of a parent's context search, if it had any: the note, and the
    isolated cause into ``placed`` and ``roles`` (``context.finish``), or the bracket's ops
    as not isolated when the round cap stopped the search. ``alone``: the single-op probes'
    placements. Returns the cause's position, if isolated."""
    readings = prefix_readings(session, plan)
    if not readings:
        return None
    rounds = rounds_of(plan)
    outcome = conclude(alone, readings, len(rounds))
    notes.append(outcome.note)
    if outcome.cause is not None:
        placed[outcome.cause] = _as_cause(placed[outcome.cause], outcome.why)
        roles[outcome.cause] = (CAUSE, None)
        return outcome.cause
    for i in outcome.suspects:
        if i not in roles:  # an op named already (a lint cause, say) keeps its role
            roles[i] = (NOT_ISOLATED, None)
    return None
