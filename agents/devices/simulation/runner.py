"""The simulated runner: reads the same RunnerManifest the Swift runner reads and writes
the same RunnerResult (always ``simulated: true``), from the behaviour model."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from agents.devices.simulation.behaviour import place, prediction_ms
from orchestrator.modelkit.inventory import ModelInventory
from orchestrator.protocol import (
    ComputePlan,
    ComputeUnit,
    ComputeUnits,
    DeviceFacts,
    LatencyStats,
    OpPlan,
    RunnerError,
    RunnerErrorKind,
    RunnerManifest,
    RunnerResult,
    SettingResult,
    ThermalState,
)
from orchestrator.stats import summarize

RUNNER_VERSION = "sim-1"
NOISE_SIGMA = 0.03  # multiplicative log-normal spread of one prediction (assumption)
COMPILE_BASE_MS, COMPILE_PER_OP_MS, COMPILE_MBS = 60.0, 0.4, 150.0  # on-device compilation
LOAD_BASE_MS, LOAD_GBS = 4.0, 2.0
THERMAL_STEPS_S = ((120.0, ThermalState.SERIOUS), (40.0, ThermalState.FAIR))  # sustained load
THROTTLE = {ThermalState.NOMINAL: 1.0, ThermalState.FAIR: 1.03, ThermalState.SERIOUS: 1.15,
            ThermalState.CRITICAL: 1.4}  # fmt: skip
PLAN_MIN_OS = (17, 4)  # MLComputePlan exists from iOS 17.4


@dataclass
class Truth:
    """What really happened: the placement the simulator used, per setting (tests only)."""

    placement: dict[ComputeUnits, list[ComputeUnit]] = field(default_factory=dict)
    busy_s: float = 0.0


@dataclass
class DeviceState:
    compiled: set[tuple[str, str]] = field(default_factory=set)  # (model sha256, OS build)
    busy_s: float = 0.0  # recent sustained load, drives the thermal state


def _thermal(busy_s: float) -> ThermalState:
    return next(
        (state for limit, state in THERMAL_STEPS_S if busy_s >= limit), ThermalState.NOMINAL
    )


def simulate(
    manifest: RunnerManifest,
    model: ModelInventory,
    *,
    chip: str,
    facts: DeviceFacts,
    state: DeviceState,
    seed: int,
    compile_fails: bool = False,
) -> tuple[RunnerResult, Truth, float]:
    """Result, ground truth, and the seconds the batch would take on the device."""
    rng = random.Random(f"{seed}:{manifest.batch_id}:{manifest.input_seed}")
    started = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(10**7))
    truth = Truth()
    thermal_before = _thermal(state.busy_s)
    common = dict(batch_id=manifest.batch_id, runner_version=RUNNER_VERSION, simulated=True,
                  device=facts, model_sha256=manifest.model.sha256, thermal_before=thermal_before)  # fmt: skip
    if compile_fails or any(op.kind == "custom" for op in model.ops):
        error = RunnerError(
            kind=RunnerErrorKind.COMPILE, message="MLModel.compileModel failed: unsupported layer"
        )
        return RunnerResult(**common, thermal_after=thermal_before, error=error, started_at=started,
                            finished_at=started + timedelta(seconds=0.2)), truth, 0.2  # fmt: skip
    key = (manifest.model.sha256, facts.os_build)
    cached = key in state.compiled
    compile_ms = (
        0.0
        if cached
        else COMPILE_BASE_MS
        + COMPILE_PER_OP_MS * len(model.ops)
        + model.size_bytes / (COMPILE_MBS * 1e3)
    )
    state.compiled.add(key)
    weights = model.total_weight_bytes
    elapsed_ms = compile_ms
    settings = []
    budget_ms = manifest.time_budget_s * 1000
    partial = False
    for units in manifest.compute_units:
        placement = place(model.ops, chip, units)
        truth.placement[units] = placement
        base = prediction_ms(model.ops, placement, chip)
        samples: list[float] = []
        for _ in range(manifest.warmup + manifest.iterations):
            state.busy_s += base / 1000
            throttle = THROTTLE[_thermal(state.busy_s)]
            sample = base * throttle * rng.lognormvariate(0.0, NOISE_SIGMA)
            elapsed_ms += sample
            samples.append(round(sample, 6))
            if elapsed_ms > budget_ms:
                partial = True
                break
        timed = samples[manifest.warmup :]
        cold = LOAD_BASE_MS * 3 + weights / (LOAD_GBS * 1e6) + (compile_ms if not cached else 0.0)
        warm = LOAD_BASE_MS + weights / (LOAD_GBS * 1e6) * 0.2
        if not timed:
            settings.append(
                SettingResult(
                    compute_units=units,
                    error=RunnerError(
                        kind=RunnerErrorKind.TIMEOUT,
                        message="time budget ran out before any timed prediction",
                    ),
                )
            )
            continue
        settings.append(SettingResult(
            compute_units=units, cold_load_ms=round(cold, 3), warm_load_ms=round(warm, 3),
            first_prediction_ms=round(base * 2.5 + 0.5, 3), latencies_ms=timed,
            stats=LatencyStats(**summarize(timed)),
        ))  # fmt: skip
        if partial:
            break
    plan = None
    if (
        tuple(int(p) for p in facts.os_version.split(".")[:2]) >= PLAN_MIN_OS
        and manifest.compute_plan
    ):
        plan = _plan(model, chip)
    truth.busy_s = elapsed_ms / 1000
    result = RunnerResult(
        **common, compile_ms=round(compile_ms, 3), compile_cached=cached,
        thermal_after=_thermal(state.busy_s), settings=settings, compute_plan=plan, partial=partial,
        started_at=started, finished_at=started + timedelta(milliseconds=elapsed_ms),
    )  # fmt: skip
    return result, truth, elapsed_ms / 1000


def _plan(model: ModelInventory, chip: str) -> ComputePlan:
    from agents.devices.simulation.behaviour import chip_model, op_time_ms, supported_units

    placement = place(model.ops, chip, ComputeUnits.ALL)
    spec = chip_model(chip)
    times = [op_time_ms(op, unit, spec) for op, unit in zip(model.ops, placement, strict=True)]
    total = sum(times) or 1.0
    # Estimated cost is reported for ML program ops only, as MLComputePlan does.
    with_cost = model.model_type == "mlProgram"
    return ComputePlan(ops=[
        OpPlan(index=op.index, name=op.name[:512], op_type=op.type, preferred=unit,
               supported=supported_units(op, chip), cost=round(t / total, 6) if with_cost else None)
        for op, unit, t in zip(model.ops, placement, times, strict=True)
    ])  # fmt: skip
