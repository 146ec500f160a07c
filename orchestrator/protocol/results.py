"""Agent → coordinator: the outcome of a batch on one device (``RunBatchResult``), the
device it ran on, and why it failed."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    Field,
    SerializerFunctionWrapHandler,
    StringConstraints,
    model_serializer,
    model_validator,
)

from orchestrator.protocol.base import (
    BatchId,
    Message,
    Name,
    ProductType,
    ShortText,
    ThermalState,
    Udid,
    Version,
    _omit_when_none,
    _packed_version,
)
from orchestrator.protocol.batch import RunAttempt
from orchestrator.protocol.runner import (
    RunnerResult,
)


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


# Coolest first: ProcessInfo.ThermalState's own order (serious and critical throttle).
THERMAL_ORDER = (ThermalState.NOMINAL, ThermalState.FAIR, ThermalState.SERIOUS,
                 ThermalState.CRITICAL)  # fmt: skip


class FailureInfo(Message):
    kind: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    message: ShortText
    infra: bool
    diagnostics: list[ShortText] = Field(default_factory=list, max_length=500)


class RunBatchResult(RunAttempt):
    """Agent → coordinator, on the ``results`` queue: one per run, packed or not."""

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
    def thermal_state(self) -> ThermalState | None:
        """The hottest state the runner reported for this run (the worse of before and
        after: a batch that began throttled was throttled for its first samples), None
        without a runner result. What ingest stores per run and attribution compares."""
        runner = self.runner_result
        if runner is None:
            return None
        return max(runner.thermal_before, runner.thermal_after, key=THERMAL_ORDER.index)

    @property
    def counts_against_device(self) -> bool:
        """Whether an infra failure of this result is the device's (once per launch)."""
        return self.launch is None or self.launch == self.batch_id

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
