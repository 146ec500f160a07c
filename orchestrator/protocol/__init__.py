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

import itertools
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

SCHEMA_VERSION: Literal[1] = 1

Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
ProductType = Annotated[
    str, StringConstraints(pattern=r"^(iPhone|iPad|iPod)[0-9]{1,3},[0-9]{1,3}$")
]
# UDIDs end up in queue names (device.<udid>) and file names: keep them plain.
Udid = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
BatchId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")]
Millis = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Version = Annotated[str, StringConstraints(pattern=r"^[0-9]+(\.[0-9]+){0,3}$")]
ShortText = Annotated[str, StringConstraints(max_length=4000)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=256)]

MAX_SAMPLES = 100_000
MAX_PLAN_OPS = 200_000


class Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ComputeUnits(StrEnum):
    """MLModelConfiguration.computeUnits settings a batch measures."""

    ALL = "all"
    CPU_AND_NE = "cpuAndNeuralEngine"
    CPU_AND_GPU = "cpuAndGPU"
    CPU_ONLY = "cpuOnly"


class ComputeUnit(StrEnum):
    """A processing unit an op runs on."""

    ANE = "neuralEngine"
    GPU = "gpu"
    CPU = "cpu"


class ThermalState(StrEnum):
    """ProcessInfo.thermalState as the runner reports it."""

    NOMINAL = "nominal"
    FAIR = "fair"
    SERIOUS = "serious"
    CRITICAL = "critical"


class ModelFormat(StrEnum):
    MLMODEL = "mlmodel"  # neural network (or pipeline), one protobuf file
    MLPACKAGE = "mlpackage"  # ML program directory, stored as a deterministic archive


class RunPurpose(StrEnum):
    USER = "user"
    PROBE = "probe"


class ModelRef(Message):
    """A model by content: agents fetch it by sha256 from ``location`` and verify it."""

    sha256: Sha256
    filename: Name
    format: ModelFormat
    size_bytes: int = Field(ge=1)
    location: str | None = Field(default=None, max_length=2048)


class RunSpec(Message):
    compute_units: list[ComputeUnits] = Field(min_length=1, max_length=4)
    iterations: int = Field(default=50, ge=1, le=10_000)
    warmup: int = Field(default=5, ge=0, le=1_000)
    timeout_s: float = Field(default=600.0, gt=0, le=86_400, allow_inf_nan=False)
    compute_plan: bool = True
    cold_load: Literal["process", "fresh_compile"] = "process"  # → RunnerManifest.cold_load
    # The logical night of a sweep run (set when a sweep dispatches a night; None for
    # ordinary jobs). Only the simulated farm reads it, to follow its timeline.
    night: date | None = None

    @model_validator(mode="after")
    def _unique_units(self) -> RunSpec:
        if len(set(self.compute_units)) != len(self.compute_units):
            raise ValueError("compute_units lists a setting twice")
        return self


class RunBatch(Message):
    """Coordinator → agent: one model on one device class, all its settings, one launch."""

    schema_version: Literal[1] = SCHEMA_VERSION
    run_id: UUID
    attempt: int = Field(ge=1, le=100)
    job_id: UUID
    model: ModelRef
    device_class: ProductType
    pinned_udid: Udid | None = None
    spec: RunSpec
    purpose: RunPurpose = RunPurpose.USER
    parent_run_id: UUID | None = None
    input_seed: int = Field(default=0, ge=0, le=2**31 - 1)
    created_at: datetime

    @property
    def batch_id(self) -> str:
        return f"{self.run_id}-a{self.attempt}"


class ManifestModel(Message):
    filename: Name
    sha256: Sha256
    format: ModelFormat


class RunnerManifest(Message):
    """Agent → runner: what to measure. Written as manifest.json into the runner's inbox."""

    schema_version: Literal[1] = SCHEMA_VERSION
    batch_id: BatchId
    model: ManifestModel
    compute_units: list[ComputeUnits] = Field(min_length=1, max_length=4)
    iterations: int = Field(ge=1, le=10_000)
    warmup: int = Field(ge=0, le=1_000)
    # Settings are interleaved in rounds so thermal drift spreads over all of them.
    rounds: int = Field(default=5, ge=1, le=100)
    time_budget_s: float = Field(gt=0, le=86_400, allow_inf_nan=False)
    input_seed: int = Field(default=0, ge=0, le=2**31 - 1)
    compute_plan: bool = True
    # "process": a setting's cold load is the first load of the cached compiled model in
    # this process (Core ML's device-specialised cache, keyed by path, may be warm from an
    # earlier launch). "fresh_compile": the runner compiles to a unique path before each
    # setting's cold load and deletes it afterwards, so every cold load is truly cold.
    cold_load: Literal["process", "fresh_compile"] = "process"


class LatencyStats(Message):
    count: int = Field(ge=1, le=MAX_SAMPLES)
    min: Millis
    max: Millis
    mean: Millis
    std: Millis
    p50: Millis
    p90: Millis
    p99: Millis

    @model_validator(mode="after")
    def _ordered(self) -> LatencyStats:
        chain = [self.min, self.p50, self.p90, self.p99, self.max]
        if any(a > b + 1e-9 for a, b in itertools.pairwise(chain)):
            raise ValueError("statistics out of order (need min ≤ p50 ≤ p90 ≤ p99 ≤ max)")
        if not self.min - 1e-9 <= self.mean <= self.max + 1e-9:
            raise ValueError("mean outside [min, max]")
        return self


class RunnerErrorKind(StrEnum):
    COMPILE = "compile"
    LOAD = "load"
    PREDICT = "predict"
    UNSUPPORTED = "unsupported"
    TIMEOUT = "timeout"
    MANIFEST = "manifest"
    INTERNAL = "internal"
    # The app left the foreground during a slot (or a prediction failed while it was not
    # active): the device, not the model, failed. On a setting it keeps the samples taken
    # before; on the result when no setting measured at all. Always infra: retried.
    INTERRUPTED = "interrupted"


class RunnerError(Message):
    kind: RunnerErrorKind
    message: ShortText


# What a cold load followed: a compile to a fresh path (truly cold), the first load of the
# cached compiled model in a fresh process (Core ML's on-disk cache may be warm), or a load
# of a model this process had already loaded. Cold loads compare only at equal provenance.
ColdLoadProvenance = Literal["fresh_compile", "fresh_process", "warm_cache"]


class SettingResult(Message):
    """Measurements under one compute-units setting. One failing setting loses no other."""

    compute_units: ComputeUnits
    cold_load_ms: Millis | None = None
    cold_load_provenance: ColdLoadProvenance | None = None
    warm_load_ms: Millis | None = None
    first_prediction_ms: Millis | None = None
    latencies_ms: list[Millis] = Field(default_factory=list, max_length=MAX_SAMPLES)
    stats: LatencyStats | None = None
    error: RunnerError | None = None

    @model_validator(mode="after")
    def _consistent(self) -> SettingResult:
        if (self.cold_load_ms is None) != (self.cold_load_provenance is None):
            raise ValueError(f"{self.compute_units}: cold_load_ms and its provenance go together")
        if self.error is None:
            if not self.latencies_ms or self.stats is None:
                raise ValueError(f"{self.compute_units}: no latency samples and no error")
            if self.stats.count != len(self.latencies_ms):
                raise ValueError(f"{self.compute_units}: stats.count != number of samples")
        return self


class OpPlan(Message):
    """MLComputePlan's anticipated placement of one op (ML program) or layer (NN)."""

    index: int = Field(ge=0)
    name: Annotated[str, StringConstraints(max_length=512)]
    op_type: Annotated[str, StringConstraints(max_length=128)]
    preferred: ComputeUnit | None = None
    supported: list[ComputeUnit] = Field(default_factory=list, max_length=3)
    cost: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)


class ComputePlan(Message):
    compute_units: ComputeUnits = ComputeUnits.ALL
    ops: list[OpPlan] = Field(max_length=MAX_PLAN_OPS)


class DeviceFacts(Message):
    """What the runner knows about where it ran."""

    product_type: ProductType
    os_version: Version
    os_build: Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z]{1,16}$")]


class RunnerResult(Message):
    """Runner → agent: result.json in the runner's outbox."""

    schema_version: Literal[1] = SCHEMA_VERSION
    batch_id: BatchId
    runner_version: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    simulated: bool
    device: DeviceFacts
    model_sha256: Sha256
    compile_ms: Millis | None = None
    compile_cached: bool = False
    thermal_before: ThermalState
    thermal_after: ThermalState
    cooldowns: int = Field(default=0, ge=0, le=10_000)
    settings: list[SettingResult] = Field(default_factory=list, max_length=4)
    compute_plan: ComputePlan | None = None
    partial: bool = False  # the time budget ran out before every sample was taken
    error: RunnerError | None = None  # the whole batch failed (compile, bad manifest, …)
    started_at: datetime
    finished_at: datetime

    @model_validator(mode="after")
    def _sane(self) -> RunnerResult:
        if self.finished_at < self.started_at:
            raise ValueError("finished_at is before started_at")
        if self.error is None and not self.settings:
            raise ValueError("a result with no settings must carry an error")
        units = [s.compute_units for s in self.settings]
        if len(set(units)) != len(units):
            raise ValueError("a compute-units setting appears twice")
        return self


class DeviceInfo(Message):
    """The device an agent ran a batch on."""

    udid: Udid
    product_type: ProductType
    os_version: Version
    os_build: str = Field(max_length=16)
    name: str = Field(default="", max_length=256)
    simulated: bool


class BatchOutcome(StrEnum):
    OK = "ok"
    MODEL_ERROR = "model_error"  # final: the model fails on this device; never retried
    INFRA_ERROR = "infra_error"  # retried on another device of the class


class FailureInfo(Message):
    kind: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    message: ShortText
    infra: bool
    diagnostics: list[ShortText] = Field(default_factory=list, max_length=500)


class RunBatchResult(Message):
    """Agent → coordinator, on the ``results`` queue."""

    schema_version: Literal[1] = SCHEMA_VERSION
    run_id: UUID
    attempt: int = Field(ge=1, le=100)
    job_id: UUID
    agent: Name
    device: DeviceInfo
    outcome: BatchOutcome
    runner_result: RunnerResult | None = None
    failure: FailureInfo | None = None
    started_at: datetime
    finished_at: datetime

    @model_validator(mode="after")
    def _outcome_matches(self) -> RunBatchResult:
        if self.outcome is BatchOutcome.OK and self.runner_result is None:
            raise ValueError("outcome ok needs a runner_result")
        if self.outcome is not BatchOutcome.OK and self.failure is None:
            raise ValueError(f"outcome {self.outcome} needs a failure")
        if self.runner_result is not None and (
            self.runner_result.simulated != self.device.simulated
        ):
            raise ValueError("runner_result.simulated disagrees with device.simulated")
        return self


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
