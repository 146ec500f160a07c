"""What every message shares: the schema versions, the constrained field types, the
``Message`` base (frozen, unknown fields refused) and the enums of compute units, thermal
states, model formats and run purposes."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
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


def _packed_version(version: int, packed: object, what: str) -> None:
    """Version 2 exactly when the message carries several models (PACKED_SCHEMA_VERSION)."""
    if (version == PACKED_SCHEMA_VERSION) != (packed is not None):
        raise ValueError(f"{what} needs schema_version {PACKED_SCHEMA_VERSION}, and only it does")


def _distinct(values: Iterable[Hashable], message: str) -> None:
    """Refuse a list that names one thing twice (a run, a model, a setting)."""
    seen = list(values)
    if len(set(seen)) != len(seen):
        raise ValueError(message)


def _in_order(started_at: datetime, finished_at: datetime) -> None:
    if finished_at < started_at:
        raise ValueError("finished_at is before started_at")


def _omit_when_none(data: Any, *keys: str) -> Any:
    """A version 1 message is serialised without version 2's fields (unchanged on the wire)."""
    if isinstance(data, dict):
        for key in keys:
            if data.get(key, 0) is None:
                del data[key]
    return data
