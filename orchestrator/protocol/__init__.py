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
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StringConstraints,
    model_serializer,
    model_validator,
)

SCHEMA_VERSION: Literal[1] = 1
# Packed probes (docs/bisection.md, "Packed probes"): a RunBatch, RunnerManifest and
# RunnerResult that carry several models say version 2, so a peer that only speaks 1 refuses
# them by their version instead of misreading them. A message of one model stays version 1
# and byte for byte what it was (the fields of version 2 are left out of it).
PACKED_SCHEMA_VERSION: Literal[2] = 2
MAX_PACKED = 64  # models in one runner launch

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


def _packed_version(version: int, packed: object, what: str) -> None:
    """Version 2 exactly when the message carries several models (PACKED_SCHEMA_VERSION)."""
    if (version == PACKED_SCHEMA_VERSION) != (packed is not None):
        raise ValueError(f"{what} needs schema_version {PACKED_SCHEMA_VERSION}, and only it does")


def _omit_when_none(data: Any, *keys: str) -> Any:
    """A version 1 message is serialised without version 2's fields (unchanged on the wire)."""
    if isinstance(data, dict):
        for key in keys:
            if data.get(key, 0) is None:
                del data[key]
    return data


class PackedRun(Message):
    """Another probe run of the same parent riding in a packed RunBatch: its own run,
    attempt, model and inputs; everything else is the batch's."""

    run_id: UUID
    attempt: int = Field(ge=1, le=100)
    model: ModelRef
    input_seed: int = Field(default=0, ge=0, le=2**31 - 1)

    @property
    def batch_id(self) -> str:
        return f"{self.run_id}-a{self.attempt}"


class RunBatch(Message):
    """Coordinator → agent: one model on one device class, all its settings, one launch.

    Packed (version 2): ``packed`` lists more probe runs of the same parent, same device
    and spec, measured in the same runner launch; each still ends as its own result."""

    schema_version: Literal[1, 2] = SCHEMA_VERSION
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
    packed: list[PackedRun] | None = Field(default=None, min_length=1, max_length=MAX_PACKED - 1)

    @model_validator(mode="after")
    def _one_launch(self) -> RunBatch:
        _packed_version(self.schema_version, self.packed, "a packed batch")
        runs = [self.run_id, *(p.run_id for p in self.packed or [])]
        if len(set(runs)) != len(runs):
            raise ValueError("a run appears twice in a packed batch")
        return self

    @model_serializer(mode="wrap")
    def _wire(self, handler: SerializerFunctionWrapHandler) -> Any:
        return _omit_when_none(handler(self), "packed")

    @property
    def batch_id(self) -> str:
        return f"{self.run_id}-a{self.attempt}"

    def members(self) -> list[RunBatch]:
        """The single-run batches this one carries, its own run first (itself if unpacked):
        what each run's result and retry are made from."""
        if self.packed is None:
            return [self]
        head = self.model_copy(update={"packed": None, "schema_version": SCHEMA_VERSION})
        fields = ("run_id", "attempt", "model", "input_seed")
        return [head] + [
            head.model_copy(update={name: getattr(p, name) for name in fields}) for p in self.packed
        ]

    @classmethod
    def pack(cls, batches: list[RunBatch]) -> RunBatch:
        """One launch for single-run batches that differ only in run, attempt, model and
        inputs (probe runs of one parent); one batch comes back as it is."""
        head, *rest = batches
        if not rest:
            return head
        packed = [PackedRun(run_id=b.run_id, attempt=b.attempt, model=b.model,
                            input_seed=b.input_seed) for b in rest]  # fmt: skip
        return cls.model_validate(
            head.model_dump() | {"schema_version": PACKED_SCHEMA_VERSION, "packed": packed}
        )


class ManifestModel(Message):
    filename: Name
    sha256: Sha256
    format: ModelFormat


class RunnerManifest(Message):
    """Agent → runner: what to measure. Written as manifest.json into the runner's inbox.

    Packed (version 2): ``models`` lists every model of the launch in order (``model`` is
    the first of them); each is measured with these settings, warmed up on its own, and
    reported in ``RunnerResult.models``."""

    schema_version: Literal[1, 2] = SCHEMA_VERSION
    batch_id: BatchId
    model: ManifestModel
    models: list[ManifestModel] | None = Field(default=None, min_length=1, max_length=MAX_PACKED)
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

    @model_validator(mode="after")
    def _models(self) -> RunnerManifest:
        _packed_version(self.schema_version, self.models, "a manifest with models")
        if self.models is not None:
            if self.models[0] != self.model:
                raise ValueError("model must be the first of models")
            shas = [m.sha256 for m in self.models]
            if len(set(shas)) != len(shas):
                raise ValueError("a model appears twice in models")
        return self

    @model_serializer(mode="wrap")
    def _wire(self, handler: SerializerFunctionWrapHandler) -> Any:
        return _omit_when_none(handler(self), "models")

    @property
    def all_models(self) -> list[ManifestModel]:
        return list(self.models) if self.models is not None else [self.model]


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


class ModelResult(Message):
    """One model of a packed launch (RunnerResult.models): what a version 1 result says
    about its one model, and when this model's own work began and ended."""

    model_sha256: Sha256
    compile_ms: Millis | None = None
    compile_cached: bool = False
    settings: list[SettingResult] = Field(default_factory=list, max_length=4)
    compute_plan: ComputePlan | None = None
    partial: bool = False
    error: RunnerError | None = None  # this model failed as a whole (compile, …)
    started_at: datetime
    finished_at: datetime

    @model_validator(mode="after")
    def _sane(self) -> ModelResult:
        if self.finished_at < self.started_at:
            raise ValueError("finished_at is before started_at")
        if self.error is None and not self.settings:
            raise ValueError("a model result with no settings must carry an error")
        units = [s.compute_units for s in self.settings]
        if len(set(units)) != len(units):
            raise ValueError("a compute-units setting appears twice")
        return self


class RunnerResult(Message):
    """Runner → agent: result.json in the runner's outbox.

    Packed (version 2): ``models`` has one result per model of the manifest, in its order;
    the launch's own fields (device, thermal, times, ``error`` for a launch that failed as a
    whole) stay here, ``model_sha256`` is the first model's and ``settings`` is empty."""

    schema_version: Literal[1, 2] = SCHEMA_VERSION
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
    models: list[ModelResult] | None = Field(default=None, max_length=MAX_PACKED)

    @model_serializer(mode="wrap")
    def _wire(self, handler: SerializerFunctionWrapHandler) -> Any:
        return _omit_when_none(handler(self), "models")

    @model_validator(mode="after")
    def _sane(self) -> RunnerResult:
        if self.finished_at < self.started_at:
            raise ValueError("finished_at is before started_at")
        _packed_version(self.schema_version, self.models, "a result with models")
        if self.models is not None:
            if self.settings or self.compute_plan is not None:
                raise ValueError("a packed result keeps settings and plans in models")
            if self.error is None and not self.models:
                raise ValueError("a packed result with no models must carry an error")
            shas = [m.model_sha256 for m in self.models]
            if len(set(shas)) != len(shas):
                raise ValueError("a model appears twice in models")
            return self
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


# FailureInfo.kind of a device that is not in the farm on the batch's night (the SIMULATED
# farm's timeline removed its class). Not the device's fault, and no other device of the
# class is there either: the run ends at once (no retry, nothing counted against the
# device), and a sweep's history shows the series as missing, class absent.
ABSENT_FROM_FARM = "absent"


class FailureInfo(Message):
    kind: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    message: ShortText
    infra: bool
    diagnostics: list[ShortText] = Field(default_factory=list, max_length=500)


class RunBatchResult(Message):
    """Agent → coordinator, on the ``results`` queue: one per run, packed or not."""

    schema_version: Literal[1, 2] = SCHEMA_VERSION
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
    # The run was measured in a packed launch (version 2): the batch id of that launch.
    # A launch that failed as a whole fails each of its runs; the device is counted one
    # infra failure for it (on the launch's own run), not one per run it carried.
    launch: BatchId | None = None

    @model_serializer(mode="wrap")
    def _wire(self, handler: SerializerFunctionWrapHandler) -> Any:
        return _omit_when_none(handler(self), "launch")

    @property
    def counts_against_device(self) -> bool:
        """Whether an infra failure of this result is the device's (once per launch)."""
        return self.launch is None or self.launch == f"{self.run_id}-a{self.attempt}"

    @model_validator(mode="after")
    def _outcome_matches(self) -> RunBatchResult:
        _packed_version(self.schema_version, self.launch, "a result of a packed launch")
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
    # Context search (orchestrator/bisect/context.py), without a compute plan: "cause" —
    # the ANE cannot run the op; "carried" — it can, but Core ML moves it with the op named
    # in ``carried_by``. None: not searched (a plan, lint or timing named the op).
    role: Literal["cause", "carried"] | None = None
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
