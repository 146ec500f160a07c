"""The versioned messages that cross every process boundary (pydantic v2).

Single source of truth: the JSON Schemas in ``ios-runner/Schema/`` are exported from
here by ``protocol.schema`` (``anefarm schema export``) and the Swift runner is tested against them.

Flow::

    coordinator ──RunBatch──▶ agent ──RunnerManifest──▶ runner (device)
    coordinator ◀──RunBatchResult── agent ◀──RunnerResult── runner
    coordinator: Verdict (stored, reported)

Rules: messages are frozen; unknown fields are refused; timings are finite and ≥ 0;
lists are bounded so a malformed result cannot exhaust memory; every message carries
``schema_version`` so a newer peer is refused with a clear error instead of misread.
"""

from __future__ import annotations

from orchestrator.protocol.base import (
    MAX_PACKED as MAX_PACKED,
)
from orchestrator.protocol.base import (
    MAX_PLAN_OPS as MAX_PLAN_OPS,
)
from orchestrator.protocol.base import (
    MAX_SAMPLES as MAX_SAMPLES,
)
from orchestrator.protocol.base import (
    PACKED_SCHEMA_VERSION as PACKED_SCHEMA_VERSION,
)
from orchestrator.protocol.base import (
    SCHEMA_VERSION as SCHEMA_VERSION,
)
from orchestrator.protocol.base import (
    BatchId as BatchId,
)
from orchestrator.protocol.base import (
    ComputeUnit as ComputeUnit,
)
from orchestrator.protocol.base import (
    ComputeUnits as ComputeUnits,
)
from orchestrator.protocol.base import (
    Message as Message,
)
from orchestrator.protocol.base import (
    Millis as Millis,
)
from orchestrator.protocol.base import (
    ModelFormat as ModelFormat,
)
from orchestrator.protocol.base import (
    Name as Name,
)
from orchestrator.protocol.base import (
    ProductType as ProductType,
)
from orchestrator.protocol.base import (
    RunPurpose as RunPurpose,
)
from orchestrator.protocol.base import (
    Sha256 as Sha256,
)
from orchestrator.protocol.base import (
    ShortText as ShortText,
)
from orchestrator.protocol.base import (
    ThermalState as ThermalState,
)
from orchestrator.protocol.base import (
    Udid as Udid,
)
from orchestrator.protocol.base import (
    Version as Version,
)
from orchestrator.protocol.batch import (
    ModelRef as ModelRef,
)
from orchestrator.protocol.batch import (
    PackedRun as PackedRun,
)
from orchestrator.protocol.batch import (
    RunBatch as RunBatch,
)
from orchestrator.protocol.batch import (
    RunSpec as RunSpec,
)
from orchestrator.protocol.results import (
    ABSENT_FROM_FARM as ABSENT_FROM_FARM,
)
from orchestrator.protocol.results import (
    BatchOutcome as BatchOutcome,
)
from orchestrator.protocol.results import (
    DeviceInfo as DeviceInfo,
)
from orchestrator.protocol.results import (
    FailureInfo as FailureInfo,
)
from orchestrator.protocol.results import (
    RunBatchResult as RunBatchResult,
)
from orchestrator.protocol.runner import (
    ColdLoadProvenance as ColdLoadProvenance,
)
from orchestrator.protocol.runner import (
    ComputePlan as ComputePlan,
)
from orchestrator.protocol.runner import (
    DeviceFacts as DeviceFacts,
)
from orchestrator.protocol.runner import (
    LatencyStats as LatencyStats,
)
from orchestrator.protocol.runner import (
    ManifestModel as ManifestModel,
)
from orchestrator.protocol.runner import (
    ModelResult as ModelResult,
)
from orchestrator.protocol.runner import (
    OpPlan as OpPlan,
)
from orchestrator.protocol.runner import (
    RunnerError as RunnerError,
)
from orchestrator.protocol.runner import (
    RunnerErrorKind as RunnerErrorKind,
)
from orchestrator.protocol.runner import (
    RunnerManifest as RunnerManifest,
)
from orchestrator.protocol.runner import (
    RunnerResult as RunnerResult,
)
from orchestrator.protocol.runner import (
    SettingResult as SettingResult,
)
from orchestrator.protocol.verdicts import (
    EvidenceSource as EvidenceSource,
)
from orchestrator.protocol.verdicts import (
    OpOffAne as OpOffAne,
)
from orchestrator.protocol.verdicts import (
    TimingComparison as TimingComparison,
)
from orchestrator.protocol.verdicts import (
    Verdict as Verdict,
)
from orchestrator.protocol.verdicts import (
    VerdictKind as VerdictKind,
)
