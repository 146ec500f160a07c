"""The analysis of one night, as the wiring calls it: SIMULATED and real series apart
(they never share a baseline), the night's findings only."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from orchestrator.regress import Finding, RegressSettings, SeriesHistory, analyse, findings
from orchestrator.sweeps.definition import SweepDefinition


def settings_for(definition: SweepDefinition) -> RegressSettings:
    """The defaults (``RegressSettings``, each with its source), with the sweep's own
    ``regress:`` overrides when its definition has them."""
    overrides = getattr(definition, "regress", None)
    if isinstance(overrides, RegressSettings):
        return overrides
    if isinstance(overrides, dict) and overrides:
        return RegressSettings(**overrides)
    return RegressSettings()


def tonight(
    histories: Sequence[SeriesHistory], night: date, settings: RegressSettings
) -> list[Finding]:
    out: list[Finding] = []
    for simulated in (False, True):
        kind = [h for h in histories if h.key.simulated is simulated]
        if kind:
            out += findings(analyse(kind, settings), night)
    return out
