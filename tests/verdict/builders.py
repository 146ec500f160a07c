"""Synthetic runner results for verdict tests: seeded latency samples, plans, lint findings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from orchestrator.protocol import (
    ComputePlan,
    ComputeUnit,
    ComputeUnits,
    DeviceFacts,
    LatencyStats,
    OpPlan,
    RunnerError,
    RunnerErrorKind,
    RunnerResult,
    SettingResult,
    ThermalState,
)
from orchestrator.stats import summarize

ALL, NE, GPU, CPU = (
    ComputeUnits.ALL,
    ComputeUnits.CPU_AND_NE,
    ComputeUnits.CPU_AND_GPU,
    ComputeUnits.CPU_ONLY,
)
ANE_UNIT, GPU_UNIT, CPU_UNIT = ComputeUnit.ANE, ComputeUnit.GPU, ComputeUnit.CPU
SHA = "ab" * 32
XR = "iPhone11,8"

# Medians (ms) of the classic signatures; "ane" = the ANE does the work under `all`.
ANE_USED = {ALL: 2.0, NE: 2.0, GPU: 5.0, CPU: 20.0}
ANE_UNUSED = {ALL: 5.0, NE: 20.0, GPU: 5.0, CPU: 20.0}
GPU_UNDER_ALL = {ALL: 5.0, NE: 2.0, GPU: 5.0, CPU: 20.0}
ANE_AND_GPU = {ALL: 3.0, NE: 4.5, GPU: 6.0, CPU: 20.0}  # GPU beats the CPU fallback


def samples(median: float, n: int = 100, *, spread: float = 0.03, seed: int = 0) -> list[float]:
    """Log-normal latencies around ``median`` with a relative spread."""
    rng = np.random.default_rng(seed)
    return [float(x) for x in median * rng.lognormal(0.0, spread, size=n)]


def setting(units: ComputeUnits, latencies: Sequence[float]) -> SettingResult:
    return SettingResult(
        compute_units=units,
        latencies_ms=list(latencies),
        stats=LatencyStats.model_validate(summarize(latencies)),
    )


def failed(units: ComputeUnits, message: str = "model failed to load") -> SettingResult:
    return SettingResult(
        compute_units=units, error=RunnerError(kind=RunnerErrorKind.LOAD, message=message)
    )


def signature(
    medians: Mapping[ComputeUnits, float], *, n: int = 100, spread: float = 0.03, seed: int = 0
) -> list[SettingResult]:
    return [
        setting(units, samples(m, n, spread=spread, seed=seed + i))
        for i, (units, m) in enumerate(medians.items())
    ]


def ane_gpu_paths(under_all: float, *, spread: float) -> RunnerResult:
    """A window or prefix measured with `all` at ``under_all`` ms beside an ANE path of
    4 ms (`cpuAndNeuralEngine`), a GPU path of 1 ms and a CPU path of 8 ms: which path
    `all` took is what context search reads."""
    medians = {ComputeUnits.ALL: under_all, ComputeUnits.CPU_AND_NE: 4.0,
               ComputeUnits.CPU_AND_GPU: 1.0, ComputeUnits.CPU_ONLY: 8.0}  # fmt: skip
    return result(signature(medians, n=50, spread=spread))


def op(
    index: int,
    op_type: str,
    unit: ComputeUnit | None,
    cost: float | None = None,
    *,
    name: str | None = None,
    supported: Sequence[ComputeUnit] | None = None,
) -> OpPlan:
    return OpPlan(
        index=index,
        name=name or f"{op_type}_{index}",
        op_type=op_type,
        preferred=unit,
        supported=list(supported if supported is not None else ([unit] if unit else [])),
        cost=cost,
    )


def plan(*ops: OpPlan, units: ComputeUnits = ALL) -> ComputePlan:
    return ComputePlan(compute_units=units, ops=list(ops))


def result(
    settings: Sequence[SettingResult] = (),
    *,
    compute_plan: ComputePlan | None = None,
    os_version: str = "17.5",
    error: RunnerError | None = None,
    partial: bool = False,
    thermal: ThermalState = ThermalState.NOMINAL,
) -> RunnerResult:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    return RunnerResult(
        batch_id="batch-1",
        runner_version="test",
        simulated=True,
        device=DeviceFacts(product_type=XR, os_version=os_version, os_build="22A1"),
        model_sha256=SHA,
        thermal_before=ThermalState.NOMINAL,
        thermal_after=thermal,
        settings=list(settings),
        compute_plan=compute_plan,
        partial=partial,
        error=error,
        started_at=now,
        finished_at=now,
    )


@dataclass(frozen=True)
class Finding:
    """A lint finding shaped like modelkit's (frozen, read-only attributes)."""

    op_index: int | None
    op_name: str
    op_type: str
    rule_id: str = "dilated-conv"
    chip: str = "A12"
    reason: str = "dilated (atrous) convolution is not taken by the A12-generation ANE"
    fix: str = "replace with stacked non-dilated convolutions"
    expected_unit: str = "gpu"
