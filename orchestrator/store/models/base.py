"""What every table shares: the declarative base, the timestamp type, and the status
enums stored as their string values (``_enum_of``)."""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

from sqlalchemy import (
    DateTime,
    Enum,
    String,
)
from sqlalchemy.orm import DeclarativeBase

from orchestrator.protocol import BatchOutcome


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class RunStatus(StrEnum):
    # No device of the class is known to the farm yet: the batch is not published until
    # one comes up (the coordinator's reaper), or the run fails after ANEFARM_DEVICE_WAIT_S.
    WAITING = "waiting"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class BisectMode(StrEnum):
    """A job's bisection: when the verdict needs it, always (`submit --bisect`), never."""

    AUTO = "auto"
    ALWAYS = "always"
    NEVER = "never"


class BisectState(StrEnum):
    """A user run's bisection (None: not considered yet)."""

    PENDING = "pending"
    DONE = "done"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"  # its job was cancelled while probes were on their way


# One delivery of a batch ends as the agent said (protocol.BatchOutcome).
AttemptOutcome = BatchOutcome

E = TypeVar("E", bound=StrEnum)


def _enum(length: int = 32) -> String:
    return String(length)


def _enum_of(kind: type[E], length: int) -> Enum:
    """A StrEnum column stored as VARCHAR(length) holding the members' values.

    No CHECK constraint (``create_constraint=False``): adding one to an existing SQLite
    table means rebuilding it, which with foreign keys on would cascade deletes (see
    migration 0006); the ORM refuses other values instead (``validate_strings``).
    """
    return Enum(
        kind,
        native_enum=False,
        create_constraint=False,
        validate_strings=True,
        values_callable=lambda members: [m.value for m in members],
        length=length,
    )


class Base(DeclarativeBase):
    pass


TS = DateTime(timezone=True)
