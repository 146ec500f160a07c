"""Scripted and random faults of a simulated device, in a compact form usable from the
CLI, the environment and YAML farm files.

One fault is ``name[#sha256-prefix][@N|~P]``:

- ``@N`` fires on the device's N-th run only, ``~P`` on each run with probability P (seeded),
  neither on every run; ``#abc123`` restricts it to models whose sha256 starts so.
- run faults: ``crash`` (RunnerCrashed), ``hang`` (RunnerTimeout), ``disconnect``
  (DeviceGone), ``malformed`` (ProtocolError), ``exception`` (a plain RuntimeError out of
  the driver, as a bug in agent code would raise: no anefarm error at all), ``background``
  (the app leaves the foreground in the last slot: that setting is ``interrupted``, an
  infra failure), and the
  *model* failures ``compilefail`` / ``loadfail`` (the RunnerResult carries a compile /
  load error; never retried);
- readiness faults (permanent states, no modifiers): ``battery``, ``hot``, ``unpaired``,
  ``devmode``.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from dataclasses import dataclass

from orchestrator.errors import UsageError

RUN_FAULTS = frozenset(
    {
        "crash",
        "hang",
        "disconnect",
        "malformed",
        "exception",
        "background",
        "compilefail",
        "loadfail",
    }
)
READY_FAULTS = frozenset({"battery", "hot", "unpaired", "devmode"})
TOKEN = re.compile(
    r"(?P<name>[a-z]+)(?:#(?P<model>[0-9a-f]{6,64}))?(?:@(?P<at>[0-9]+)|~(?P<p>[0-9]*\.?[0-9]+))?"
)
SYNTAX_HINT = "write name[#sha256-prefix][@N|~P], e.g. crash@1, hang~0.2, compilefail#1537cb92"


@dataclass(frozen=True)
class Fault:
    name: str
    at_run: int | None = None  # 1-based run number of the device
    probability: float | None = None
    model_prefix: str | None = None  # only models whose sha256 starts with this

    @property
    def readiness(self) -> bool:
        return self.name in READY_FAULTS

    def text(self) -> str:
        out = self.name + (f"#{self.model_prefix}" if self.model_prefix else "")
        if self.at_run is not None:
            out += f"@{self.at_run}"
        if self.probability is not None:
            out += f"~{self.probability:g}"
        return out


def parse_fault(text: str) -> Fault:
    match = TOKEN.fullmatch(text.strip())
    if match is None:
        raise UsageError(f"cannot read the simulated fault {text!r}", hint=SYNTAX_HINT)
    name = match["name"]
    if name not in RUN_FAULTS | READY_FAULTS:
        known = ", ".join(sorted(RUN_FAULTS | READY_FAULTS))
        raise UsageError(f"unknown simulated fault {name!r}", hint=f"known faults: {known}")
    at = int(match["at"]) if match["at"] else None
    probability = float(match["p"]) if match["p"] else None
    if name in READY_FAULTS and (at is not None or probability is not None or match["model"]):
        raise UsageError(
            f"fault {text!r}: {name} is a permanent device state",
            hint=f"write just !{name}",
        )
    if at is not None and at < 1:
        raise UsageError(f"fault {text!r}: runs are counted from 1", hint="e.g. crash@1")
    if probability is not None and not 0.0 <= probability <= 1.0:
        raise UsageError(f"fault {text!r}: probability {probability} outside 0..1")
    return Fault(name, at, probability, match["model"])


def parse_faults(texts: Iterable[str]) -> list[Fault]:
    return [parse_fault(t) for t in texts if t.strip()]


class FaultScript:
    """Decides, run by run, which faults fire. Deterministic for a seed: every probabilistic
    fault draws once per run whether or not it applies, so the sequence never shifts."""

    def __init__(self, faults: Iterable[Fault], seed: str) -> None:
        self.faults = list(faults)
        self._rng = random.Random(f"faults:{seed}")

    def readiness(self) -> set[str]:
        return {f.name for f in self.faults if f.readiness}

    def fire(self, run: int, model_sha256: str) -> set[str]:
        fired = set()
        for fault in self.faults:
            if fault.readiness:
                continue
            draw = self._rng.random() if fault.probability is not None else 0.0
            if fault.model_prefix and not model_sha256.startswith(fault.model_prefix):
                continue
            if fault.at_run is not None:
                hit = fault.at_run == run
            elif fault.probability is not None:
                hit = draw < fault.probability
            else:
                hit = True
            if hit:
                fired.add(fault.name)
        return fired
