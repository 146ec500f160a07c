"""Agent ↔ runner: the manifest the runner reads (``RunnerManifest``) and the result it
writes (``RunnerResult``: latency statistics per setting, loads, compute plan, device
facts; one entry per model of a packed launch)."""

from __future__ import annotations

import itertools
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    SerializerFunctionWrapHandler,
    StringConstraints,
    model_serializer,
    model_validator,
)

from orchestrator.protocol.base import (
    MAX_PACKED,
    MAX_PLAN_OPS,
    MAX_SAMPLES,
    SCHEMA_VERSION,
    BatchId,
    ComputeUnit,
    ComputeUnits,
    Message,
    Millis,
    ModelFormat,
    Name,
    ProductType,
    Sha256,
    ShortText,
    ThermalState,
    Version,
    _distinct,
    _in_order,
    _omit_when_none,
    _packed_version,
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
            _distinct((m.sha256 for m in self.models), "a model appears twice in models")
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
        _in_order(self.started_at, self.finished_at)
        _measured(self.settings, self.error, "a model result")
        return self


def _measured(settings: list[SettingResult], error: RunnerError | None, what: str) -> None:
    """A model's settings as one result (version 1) or one model of a packed one states
    them: some, or an error that says why there are none; each compute-units setting once."""
    if error is None and not settings:
        raise ValueError(f"{what} with no settings must carry an error")
    _distinct((s.compute_units for s in settings), "a compute-units setting appears twice")


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
        _in_order(self.started_at, self.finished_at)
        _packed_version(self.schema_version, self.models, "a result with models")
        if self.models is not None:
            if self.settings or self.compute_plan is not None:
                raise ValueError("a packed result keeps settings and plans in models")
            if self.error is None and not self.models:
                raise ValueError("a packed result with no models must carry an error")
            _distinct((m.model_sha256 for m in self.models), "a model appears twice in models")
            return self
        _measured(self.settings, self.error, "a result")
        return self
