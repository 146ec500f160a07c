"""Coordinator: the verdict of a run (FULL / PARTIAL / NONE / …), with the evidence
that decided it and the ops off the Neural Engine."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import (
    Field,
)

from orchestrator.protocol.base import (
    MAX_PLAN_OPS,
    SCHEMA_VERSION,
    ComputeUnit,
    ComputeUnits,
    Message,
    ProductType,
    Sha256,
    ShortText,
    Version,
)


class VerdictKind(StrEnum):
    FULL = "FULL"
    PARTIAL = "PARTIAL"
    NONE = "NONE"
    INCONCLUSIVE = "INCONCLUSIVE"


class EvidenceSource(StrEnum):
    PLAN = "plan"
    TIMING = "timing"
    PROBE = "probe"
    LINT = "lint"


class OpOffAne(Message):
    name: str = Field(max_length=512)
    type: str = Field(max_length=128)
    unit: ComputeUnit | Literal["unknown"]
    reason: ShortText
    fix: ShortText
    source: EvidenceSource
    # Context search (orchestrator/bisect/context.py), without a compute plan: "cause" —
    # the ANE cannot run the op; "carried" — it can, but Core ML moves it with the op named
    # in ``carried_by``; "not isolated" — prefix search brackets it, with others, where work
    # leaves the ANE (unit unknown). None: not searched (a plan, lint or timing named the op).
    role: Literal["cause", "carried", "not isolated"] | None = None
    carried_by: str | None = Field(default=None, max_length=512)


class TimingComparison(Message):
    """Median latency ratio a/b with a bootstrap confidence interval."""

    a: ComputeUnits
    b: ComputeUnits
    ratio: float = Field(gt=0, allow_inf_nan=False)
    low: float = Field(gt=0, allow_inf_nan=False)
    high: float = Field(gt=0, allow_inf_nan=False)
    indistinguishable: bool


class Verdict(Message):
    schema_version: Literal[1] = SCHEMA_VERSION
    model_sha256: Sha256
    device_class: ProductType
    chip: str
    os_version: Version
    simulated: bool
    verdict: VerdictKind
    ane_share: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)
    plan_available: bool
    timing: list[TimingComparison] = Field(default_factory=list, max_length=16)
    plan_timing_disagree: bool = False
    ops_off_ane: list[OpOffAne] = Field(default_factory=list, max_length=MAX_PLAN_OPS)
    reasons: list[ShortText] = Field(default_factory=list, max_length=100)
