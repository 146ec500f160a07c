"""Does the model run on the ANE? ``decide()`` turns one runner result into a ``Verdict``.

Evidence, strongest first (ARCHITECTURE "How it is decided"):

1. the compute plan (iOS ≥ 17.4): share of estimated cost on the ANE, and the ops that are
   not (``verdict.plan``);
2. the timing signature: `all` vs `cpuAndGPU` and `cpuAndNeuralEngine` vs `cpuOnly`,
   compared by a seeded bootstrap interval of the ratio of medians, not a fixed threshold
   on two numbers (``verdict.timing``);
3. static lint findings, attached to the ops off the ANE as the probable reason and fix
   (``verdict.lint``).

Plan and timing disagreeing is itself a finding (``plan_timing_disagree``). The rules that
combine them are in ``verdict.decision``. Pure functions: no database, no queue.
"""

from orchestrator.verdict.decision import decide
from orchestrator.verdict.lint import LintLike
from orchestrator.verdict.plan import FULL_SHARE, NONE_SHARE
from orchestrator.verdict.timing import (
    BOOTSTRAP_RESAMPLES,
    CONFIDENCE,
    EQUIVALENCE,
    EQUIVALENCE_MARGIN,
    MIN_SAMPLES,
    Relation,
    compare,
    relation,
)

__all__ = [
    "BOOTSTRAP_RESAMPLES",
    "CONFIDENCE",
    "EQUIVALENCE",
    "EQUIVALENCE_MARGIN",
    "FULL_SHARE",
    "MIN_SAMPLES",
    "NONE_SHARE",
    "LintLike",
    "Relation",
    "compare",
    "decide",
    "relation",
]
