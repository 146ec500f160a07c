"""RunBatch messages for tests that hand batches to an agent, a publisher or the packer:
a valid batch of one model (job 1, attempt 1, created now) with only what a test varies
spelled out at its call."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from orchestrator.protocol import ComputeUnits, ModelFormat, ModelRef, RunBatch, RunPurpose, RunSpec


def run_batch(
    sha: str,
    *,
    filename: str = "m.mlmodel",
    size_bytes: int = 10,
    location: str | None = None,
    units: Sequence[ComputeUnits] = (ComputeUnits.ALL,),
    iterations: int = 50,
    warmup: int = 5,
    timeout_s: float = 600.0,
    purpose: RunPurpose = RunPurpose.USER,
    device_class: str = "iPhone11,8",
    pinned_udid: str | None = None,
) -> RunBatch:
    """The model's format follows its file name (``.mlpackage`` or else ``.mlmodel``)."""
    fmt = ModelFormat.MLPACKAGE if filename.endswith(".mlpackage") else ModelFormat.MLMODEL
    model = ModelRef(sha256=sha, filename=filename, format=fmt, size_bytes=size_bytes,
                     location=location)  # fmt: skip
    spec = RunSpec(compute_units=list(units), iterations=iterations, warmup=warmup,
                   timeout_s=timeout_s)  # fmt: skip
    return RunBatch(run_id=uuid.uuid4(), attempt=1, job_id=uuid.UUID(int=1), model=model,
                    device_class=device_class, pinned_udid=pinned_udid, spec=spec,
                    purpose=purpose, created_at=datetime.now(UTC))  # fmt: skip
