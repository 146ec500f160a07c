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

Bounded: one round of at most ``2 ⌈log2 n⌉`` prefixes, evenly spread, packed into runner
launches like every probe (one extra round of probe batches per parent). What is reported:

* the bracket holds exactly one op its probe could not place (every other op there ran on
  the ANE alone, so it can run there): that op is the **cause** (it can only be that one);
* otherwise the bracket is named — "work leaves the ANE once ops a–b are included" — and
  no op: **moved, cause not isolated**. Nothing is named on a reading that is not
  monotone, nor when every prefix reads unknown.

A prefix does not tell which of its ops Core ML moves (its right edge is cut, so the
segments there are not the model's): carried ops are not named from it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any
from uuid import UUID

from sqlalchemy.orm import Session

from orchestrator.bisect.mapping import ANE, CAUSE, OpByProbe
from orchestrator.bisect.placement import UNKNOWN, ProbeStatus
from orchestrator.bisect.window_reading import LEAVES, ON_ANE, WindowReading
from orchestrator.protocol import ComputeUnit
from orchestrator.store import models as db


def lengths(n: int) -> list[int]:
    """The prefix lengths to cut of an ``n``-op model: at most 2 ⌈log2 n⌉ of 1 … n − 1,
    evenly spread (the whole model, ``n``, is read from the verdict's own timing)."""
    if n < 2:
        return []
    size = 2 * math.ceil(math.log2(n))
    if n - 1 <= size:
        return list(range(1, n))
    return sorted({round(1 + i * (n - 2) / (size - 1)) for i in range(size)})


@dataclass(frozen=True)
class Outcome:
    """What the prefixes say: a note for the verdict, and the isolated cause (position and
    why) when there is one."""

    note: str
    cause: int | None = None
    why: str = ""


def conclude(placed: Sequence[OpByProbe], readings: dict[int, WindowReading]) -> Outcome:
    """The bracket where work starts leaving the ANE, from each prefix length's reading
    (module docstring). The whole model leaves: the verdict's timing said so."""
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
    span = range(last, first)
    names = ", ".join(placed[i].name for i in list(span)[:5]) + (" …" if len(span) > 5 else "")
    where = f"ops {last}–{first - 1} ({names})"
    unplaced = [i for i in span if placed[i].status != ProbeStatus.PLACED]
    on_ane = all(placed[i].unit == ANE for i in span if i not in unplaced)
    if len(unplaced) == 1 and on_ane:
        [cause] = unplaced
        before = (
            f"the first {last} ops run on the ANE under `all`" if last else "it is the first op"
        )
        leaving = readings.get(first)
        said = f" ({leaving.reason})" if leaving is not None else " (the model's own timing)"
        why = (
            f"off the ANE: found by prefix search — {before}, the first {first} do not{said};"
            f" of ops {last}–{first - 1} only it was not placed on the ANE alone"
        )
        return Outcome(f"prefix search: work leaves the ANE at {placed[cause].name}, the one op"
                       f" of {where} not placed alone: the cause", cause, why)  # fmt: skip
    return Outcome(
        f"prefix search: work leaves the ANE once {where} are included; moved, cause not isolated"
        f" ({len(unplaced)} of them not placed alone)"
    )


def apply(
    session: Session,
    plan: dict[str, Any],
    alone: list[OpByProbe],
    placed: list[OpByProbe],
    roles: dict[int, tuple[str, int | None]],
    notes: list[str],
) -> None:
    """Read the prefixes of a parent's context search, if it had any: the note, and the
    isolated cause into ``placed`` and ``roles`` (``context.finish``). ``alone``: the
    single-op probes' placements."""
    runs = {w["stop"]: w["run"] for w in plan["context"]["windows"] if w.get("prefix")}
    if not runs:
        return
    readings = {}
    for k, run in runs.items():
        probe = session.get(db.Run, UUID(str(run)))
        got = (probe.bisection or {}).get("leaves") if probe is not None else None
        readings[k] = WindowReading(**got) if got else WindowReading(UNKNOWN, "no reading")
    outcome = conclude(alone, readings)
    notes.append(outcome.note)
    if outcome.cause is not None:
        i = outcome.cause
        # An op the ANE cannot run goes to the GPU under `all` (to the CPU it would read
        # the same as under `cpuAndNeuralEngine`, and not leave).
        placed[i] = replace(placed[i], unit=str(ComputeUnit.GPU), status=str(ProbeStatus.PLACED),
                            confidence=0.6, reason=outcome.why)  # fmt: skip
        roles[i] = (CAUSE, None)
