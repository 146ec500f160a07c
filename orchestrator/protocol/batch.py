"""Coordinator → agent: a model by content (``ModelRef``), what to measure (``RunSpec``),
and the batch of one run or of a packed launch of probe runs (``RunBatch``)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import (
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from orchestrator.protocol.base import (
    MAX_PACKED,
    PACKED_SCHEMA_VERSION,
    SCHEMA_VERSION,
    ComputeUnits,
    Message,
    ModelFormat,
    Name,
    ProductType,
    RunPurpose,
    Sha256,
    Udid,
    _distinct,
    _omit_when_none,
    _packed_version,
)


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
        _distinct(self.compute_units, "compute_units lists a setting twice")
        return self


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


class RunAttempt(Message):
    """What a batch and its result both begin with: one attempt of one run of a job."""

    schema_version: Literal[1, 2] = SCHEMA_VERSION
    run_id: UUID
    attempt: int = Field(ge=1, le=100)
    job_id: UUID

    @property
    def batch_id(self) -> str:
        return f"{self.run_id}-a{self.attempt}"


class RunBatch(RunAttempt):
    """Coordinator → agent: one model on one device class, all its settings, one launch.

    Packed (version 2): ``packed`` lists more probe runs of the same parent, same device
    and spec, measured in the same runner launch; each still ends as its own result."""

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
        _distinct(runs, "a run appears twice in a packed batch")
        return self

    @model_serializer(mode="wrap")
    def _wire(self, handler: SerializerFunctionWrapHandler) -> Any:
        return _omit_when_none(handler(self), "packed")

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
