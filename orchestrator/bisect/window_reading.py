"""Reading a context-search window (``context``): did the run beside a cause go where the
cause goes under `all` (moved), stay on the ANE (stays), or can timing not tell (unknown)?
The model's own timing is read the same way: the whole model is one window too."""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.bisect.placement import UNKNOWN
from orchestrator.protocol import ComputeUnits, RunnerResult, Verdict
from orchestrator.verdict.timing import describe, pairwise

# The whole interval of `all`/`cpuAndGPU` within ±4 %: the same path (unless staying on the
# ANE would look the same: ``CLOSE``); wholly outside: another path, the ANE takes part.
# Tighter than the verdict's ±10 %: a run that stays on the ANE but saves only a few per
# cent must not be called carried (a placement named must be right).
TIGHT = 1.04
# Staying on the ANE would change the window's time by less than this share: unknown.
CLOSE = 0.15
MOVED, STAYS = "moved", "stays"


@dataclass(frozen=True)
class WindowReading:
    verdict: str  # MOVED, STAYS or UNKNOWN
    reason: str


def read_window(result: RunnerResult, *, seed: int = 0) -> WindowReading:
    """Did the window's run go with its causes? (``context``'s docstring)."""
    if result.error is not None:
        return WindowReading(
            UNKNOWN, f"the window failed ({result.error.kind}): {result.error.message}"
        )
    gaps: list[str] = []
    found = pairwise(result, [(ComputeUnits.ALL, ComputeUnits.CPU_AND_GPU)], seed=seed, gaps=gaps)
    if not found:
        return WindowReading(
            UNKNOWN, "timing cannot read the window: " + ("; ".join(gaps) or "no `all`/`cpuAndGPU`")
        )
    [c] = found
    said = describe(c)
    if c.low >= 1 / TIGHT and c.high <= TIGHT:
        return WindowReading(MOVED, f"`all` runs the window like `cpuAndGPU` ({said})")
    if c.high < 1 / TIGHT or c.low > TIGHT:
        # Another placement than the GPU path's: the ANE takes part (even when slower:
        # the split costs more GPU dispatches than Core ML's choice weighs).
        return WindowReading(
            STAYS, f"`all` differs from `cpuAndGPU` on the window: the ANE takes part ({said})"
        )
    return WindowReading(UNKNOWN, f"the window's timing cannot tell ({said})")


def unless_close_call(
    reading: WindowReading, window: dict[str, float], causes: dict[str, dict[str, float] | None]
) -> WindowReading:
    """A window that looks moved, unless staying on the ANE would look the same: Core ML
    weighs ANE time + hand-overs against GPU time, and near that balance the two choices
    differ by a per cent or two — less than timing can tell. Had the run stayed, `all`
    would take `cpuAndNeuralEngine`'s time with each cause on the GPU instead of the CPU:
    window `cpuAndNeuralEngine` − Σ cause (`cpuOnly` − `cpuAndGPU`). ``window`` and each of
    ``causes`` (by op name) are p50s by setting, measured in the same launch (a cause alone
    is a reference window) so that heat throttles them alike. Within ``CLOSE`` of
    `cpuAndGPU`, the reading is unknown."""
    if reading.verdict != MOVED:
        return reading
    moved, ne = window.get(ComputeUnits.CPU_AND_GPU), window.get(ComputeUnits.CPU_AND_NE)
    if not moved or ne is None:
        return WindowReading(UNKNOWN, f"{reading.reason}; but the window's settings are missing")
    stays = ne
    for name, alone in causes.items():
        cpu = (alone or {}).get(ComputeUnits.CPU_ONLY)
        gpu = (alone or {}).get(ComputeUnits.CPU_AND_GPU)
        if cpu is None or gpu is None:
            return WindowReading(
                UNKNOWN,
                f"{reading.reason}; but {name} was not measured alone beside it to tell how close"
                " Core ML's choice is",
            )
        stays -= cpu - gpu
    if abs(stays / moved - 1) < CLOSE:
        return WindowReading(
            UNKNOWN,
            f"{reading.reason}; but staying on the ANE would take about {stays:.3f} ms against"
            f" {moved:.3f} ms: too close a call for timing to tell",
        )
    return reading


def whole_model(verdict: Verdict) -> str | None:
    """Why the model's own timing shows every op off the ANE (`all` runs it like
    `cpuAndGPU`, by the window's criterion), or None. The whole model is the one window
    whose context is exact by construction: no probe needed."""
    c = next(
        (c for c in verdict.timing if (c.a, c.b) == (ComputeUnits.ALL, ComputeUnits.CPU_AND_GPU)),
        None,
    )
    if c is None or not 1 / TIGHT <= c.low <= 1.0 <= c.high <= TIGHT:
        return None
    return f"the model's own timing: `all` runs it like `cpuAndGPU` ({describe(c)})"


# Prefix search (bisect/prefix_search.py): does work leave the ANE inside a stretch of ops?
# `all` against `cpuAndNeuralEngine`, by the same tight band: the whole interval outside →
# some op of it runs elsewhere under `all` (an op the ANE cannot run goes to the GPU there
# and to the CPU under `cpuAndNeuralEngine`, and its neighbours may follow it); the whole
# interval inside → `all` runs it as the ANE path does; otherwise unknown.
LEAVES, ON_ANE = "leaves", "on the ANE"


def read_leaving(result: RunnerResult, *, seed: int = 0) -> WindowReading:
    """Whether `all` runs the stretch like `cpuAndNeuralEngine` (``ON_ANE``) or not
    (``LEAVES``), or timing cannot tell."""
    if result.error is not None:
        return WindowReading(UNKNOWN, f"the stretch failed ({result.error.kind})")
    gaps: list[str] = []
    found = pairwise(result, [(ComputeUnits.ALL, ComputeUnits.CPU_AND_NE)], seed=seed, gaps=gaps)
    if not found:
        why = "; ".join(gaps) or "no `all`/`cpuAndNeuralEngine`"
        return WindowReading(UNKNOWN, f"timing cannot read the stretch: {why}")
    [c] = found
    said = describe(c)
    if c.high < 1 / TIGHT or c.low > TIGHT:
        return WindowReading(LEAVES, f"`all` differs from `cpuAndNeuralEngine` ({said})")
    if c.low >= 1 / TIGHT and c.high <= TIGHT:
        return WindowReading(ON_ANE, f"`all` runs it like `cpuAndNeuralEngine` ({said})")
    return WindowReading(UNKNOWN, f"timing cannot tell ({said})")


def leaves_in_model(verdict: Verdict) -> bool:
    """The model's own timing: `all` differs from `cpuAndNeuralEngine` by the tight band."""
    c = next(
        (c for c in verdict.timing if (c.a, c.b) == (ComputeUnits.ALL, ComputeUnits.CPU_AND_NE)),
        None,
    )
    return c is not None and (c.high < 1 / TIGHT or c.low > TIGHT)
