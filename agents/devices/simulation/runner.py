"""The simulated runner: reads the RunnerManifest the Swift runner reads and writes the same
RunnerResult (always ``simulated: true``), timed by the behaviour model.

It measures like the Swift runner: compile once (or hit the compiled-model cache), then per
setting a cold and a warm load, the first prediction and the warm-up, then the timed
iterations interleaved over ``rounds`` so thermal drift spreads over every setting. Cold
loads carry the provenance the Swift harness gives them: ``fresh_compile`` after a compile
(every setting with ``cold_load: fresh_compile``, which also pays a compile per setting),
``fresh_process`` for the first setting of a launch from the cache, then ``warm_cache``.

A packed manifest (several models, docs/bisection.md "Packed probes") is one launch: each
model is pushed and compiled (or found in the cache) and measured in turn with its own
loads, first prediction and warm-up, in the time the launch has left (``simulate_packed``);
the launch itself is paid once, by the device (simulated.py). The Swift harness interleaves
the models round by round; here, where only heat links them, they run one after another.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from agents.devices.simulation import latency
from agents.devices.simulation.chips import ANE, GPU
from agents.devices.simulation.plan import compute_plan, plan_available
from agents.devices.simulation.profile import ModelProfile, Placement
from agents.devices.simulation.thermal import Heat
from orchestrator.modelkit.inventory import ModelInventory
from orchestrator.modelkit.targets import os_too_old
from orchestrator.protocol import (
    PACKED_SCHEMA_VERSION,
    SCHEMA_VERSION,
    ColdLoadProvenance,
    ComputePlan,
    ComputeUnits,
    DeviceFacts,
    LatencyStats,
    ModelResult,
    RunnerError,
    RunnerErrorKind,
    RunnerManifest,
    RunnerResult,
    SettingResult,
)
from orchestrator.stats import summarize

RUNNER_VERSION = "sim-1"
NOISE_SIGMA = 0.03  # log-normal spread of one prediction (assumption)
SPECIALIZE_PER_OP_MS = 0.3  # first load of a configuration compiles ANE/GPU programs


@dataclass
class DeviceState:
    """What survives between batches on one device."""

    compiled: set[tuple[str, str]] = field(default_factory=set)  # (model sha256, OS build)
    heat: Heat = field(default_factory=Heat)
    plans: dict[str, ComputePlan] = field(default_factory=dict)  # by model sha256


@dataclass
class Truth:
    """What really happened (tests only; the pipeline sees the RunnerResult)."""

    placements: dict[ComputeUnits, Placement] = field(default_factory=dict)
    model_fault: RunnerErrorKind | None = None
    compile_cached: bool = False
    noise_sigma: float = NOISE_SIGMA
    device_s: float = 0.0  # time the batch kept the device, launch and push included
    faults: set[str] = field(default_factory=set)
    # Op positions of unknown FLOPs, charged a stand-in cost (latency.stand_in_flops).
    estimated_ops: list[int] = field(default_factory=list)


@dataclass
class _Clock:
    budget_ms: float
    elapsed_ms: float = 0.0

    def spend(self, ms: float) -> bool:
        """Add time; False once the budget is exhausted."""
        self.elapsed_ms += ms
        return self.elapsed_ms <= self.budget_ms


def _spread(iterations: int, rounds: int) -> list[int]:
    rounds = max(1, min(rounds, iterations))
    return [iterations // rounds + (1 if r < iterations % rounds else 0) for r in range(rounds)]


def simulate(
    manifest: RunnerManifest,
    model: ModelInventory,
    prof: ModelProfile,
    *,
    facts: DeviceFacts,
    state: DeviceState,
    noise_seed: str,
    started_at: datetime | None = None,
    model_fault: RunnerErrorKind | None = None,
) -> tuple[RunnerResult, Truth]:
    """One batch on one simulated device. ``model_fault`` forces a compile or load error."""
    rng = random.Random(f"{noise_seed}:{manifest.batch_id}:{manifest.input_seed}")
    started = started_at or datetime.now(UTC)
    heat = state.heat
    truth = Truth()
    common = {"batch_id": manifest.batch_id, "runner_version": RUNNER_VERSION, "simulated": True,
              "device": facts, "model_sha256": manifest.model.sha256,
              "thermal_before": heat.state, "started_at": started}  # fmt: skip
    clock = _Clock(manifest.time_budget_s * 1000)
    key = (manifest.model.sha256, facts.os_build)
    cached = key in state.compiled
    compile_ms = 0.0 if cached else latency.compile_ms(len(model.ops), model.size_bytes)
    clock.spend(compile_ms)
    heat.busy(compile_ms / 1000)
    # Core ML refuses a specification newer than its own, as a compile error. The agent
    # checks this before a run (agents.batch.os_gate); the device is as strict anyway.
    too_new = os_too_old(model.spec_version, facts.os_version)
    if prof.uncompilable or model_fault is RunnerErrorKind.COMPILE or too_new:
        truth.model_fault = RunnerErrorKind.COMPILE
        what = (
            f"unsupported layer {model.ops[prof.uncompilable[0]].type!r}"
            if prof.uncompilable
            else "the model failed on-device compilation"
            if model_fault is RunnerErrorKind.COMPILE
            else f"specification version {model.spec_version} is newer than Core ML on"
            f" iOS {facts.os_version} supports"
        )
        error = RunnerError(kind=RunnerErrorKind.COMPILE, message=f"MLModel.compileModel: {what}")
        return RunnerResult(**common, compile_ms=round(compile_ms, 3), thermal_after=heat.state,
                            error=error, finished_at=started + timedelta(milliseconds=clock.elapsed_ms)), truth  # fmt: skip
    state.compiled.add(key)
    truth.compile_cached = cached

    loads: dict[ComputeUnits, tuple[float, float, float]] = {}
    provenance: dict[ComputeUnits, ColdLoadProvenance] = {}
    fresh_compile = manifest.cold_load == "fresh_compile"
    failed: dict[ComputeUnits, RunnerError] = {}
    samples: dict[ComputeUnits, list[float]] = {u: [] for u in manifest.compute_units}
    in_budget = True
    truth.placements = {units: prof.placements[units] for units in manifest.compute_units}
    truth.estimated_ops = list(prof.estimated)
    weight_bytes = model.total_weight_bytes
    for units in manifest.compute_units:
        placement = prof.placements[units]
        if model_fault is RunnerErrorKind.LOAD:
            truth.model_fault = RunnerErrorKind.LOAD
            failed[units] = RunnerError(
                kind=RunnerErrorKind.LOAD,
                message=f"MLModel(contentsOf:) failed for {units}: model could not be loaded",
            )
            continue
        accelerated = sum(1 for u in placement.units if u in (ANE, GPU))
        if fresh_compile:  # a compile to a fresh path before the cold load (untimed)
            clock.spend(latency.compile_ms(len(model.ops), model.size_bytes))
            provenance[units] = "fresh_compile"
        else:
            first_load = not provenance
            provenance[units] = (
                ("fresh_process" if cached else "fresh_compile") if first_load else "warm_cache"
            )
        cold = latency.load_ms(weight_bytes, cold=True)
        cold += 0.0 if cached else SPECIALIZE_PER_OP_MS * accelerated
        warm = latency.load_ms(weight_bytes, cold=False)
        first = latency.first_prediction_ms(placement.steady_ms) * heat.throttle
        first *= rng.lognormvariate(0.0, NOISE_SIGMA)
        loads[units] = (cold, warm, first)
        in_budget = clock.spend(cold + warm + first)
        for _ in range(manifest.warmup):
            if not in_budget:
                break
            in_budget = clock.spend(_sample(placement.steady_ms, heat, rng))
        if not in_budget:
            break

    for share in _spread(manifest.iterations, manifest.rounds):
        for units in manifest.compute_units:
            if units in failed or not in_budget:
                continue
            taken = samples[units]
            for _ in range(share):
                value = _sample(prof.placements[units].steady_ms, heat, rng)
                taken.append(round(value, 6))
                in_budget = clock.spend(value)
                if not in_budget:
                    break

    settings = []
    for units in manifest.compute_units:
        if units in failed:
            settings.append(SettingResult(compute_units=units, error=failed[units]))
        elif not samples[units]:
            message = "the time budget ran out before any timed prediction"
            settings.append(SettingResult(compute_units=units,
                                          error=RunnerError(kind=RunnerErrorKind.TIMEOUT, message=message)))  # fmt: skip
        else:
            cold, warm, first = loads[units]
            timed = samples[units]
            settings.append(SettingResult(
                compute_units=units, cold_load_ms=round(cold, 3),
                cold_load_provenance=provenance[units], warm_load_ms=round(warm, 3),
                first_prediction_ms=round(first, 3), latencies_ms=timed,
                stats=LatencyStats.model_validate(summarize(timed)),
            ))  # fmt: skip
    plan = None
    if manifest.compute_plan and plan_available(facts.os_version) and not failed:
        plan = state.plans.get(model.sha256)
        if plan is None:  # the same for every batch of this model: build the 200 k-op list once
            plan = compute_plan(model.ops, prof, ml_program=model.model_type == "mlProgram")
            state.plans[model.sha256] = plan
    result = RunnerResult(
        **common, compile_ms=round(compile_ms, 3), compile_cached=cached,
        thermal_after=heat.state, settings=settings, compute_plan=plan, partial=not in_budget,
        finished_at=started + timedelta(milliseconds=clock.elapsed_ms),
    )  # fmt: skip
    truth.device_s = clock.elapsed_ms / 1000
    return result, truth


def _sample(steady_ms: float, heat: Heat, rng: random.Random) -> float:
    """One prediction: steady latency × throttling × seeded noise; it also heats the chip."""
    value = steady_ms * heat.throttle * rng.lognormvariate(0.0, NOISE_SIGMA)
    heat.busy(value / 1000)
    return value


@dataclass(frozen=True)
class PackedModel:
    """One model of a packed launch as the simulator needs it."""

    inventory: ModelInventory
    prof: ModelProfile
    model_fault: RunnerErrorKind | None = None


def simulate_packed(
    manifest: RunnerManifest,
    models: list[PackedModel],
    *,
    facts: DeviceFacts,
    state: DeviceState,
    noise_seed: str,
    started_at: datetime | None = None,
) -> tuple[RunnerResult, list[Truth]]:
    """One launch of several models (a version 2 manifest): each model measured as a batch
    of its own would be, in the budget the launch has left; a model that fails (compile,
    load) is that model's failure and the others still run. ``Truth.device_s`` of each is
    its own time, without the launch and push (the device adds those once)."""
    started = started_at or datetime.now(UTC)
    budget_ms = manifest.time_budget_s * 1000
    elapsed_ms = 0.0
    results: list[ModelResult] = []
    truths: list[Truth] = []
    thermal_before = state.heat.state
    for entry, packed in zip(manifest.all_models, models, strict=True):
        at = started + timedelta(milliseconds=elapsed_ms)
        left_ms = budget_ms - elapsed_ms
        if left_ms <= 0:
            message = "the launch's time budget ran out before this model"
            results.append(ModelResult(model_sha256=entry.sha256, partial=True, started_at=at,
                                       finished_at=at, error=RunnerError(kind=RunnerErrorKind.TIMEOUT, message=message)))  # fmt: skip
            truths.append(Truth())
            continue
        single = manifest.model_copy(update={"schema_version": SCHEMA_VERSION, "model": entry,
                                             "models": None, "time_budget_s": left_ms / 1000})  # fmt: skip
        # Each model draws its own noise: its timing does not depend on its neighbours.
        result, truth = simulate(single, packed.inventory, packed.prof, facts=facts, state=state,
                                 noise_seed=f"{noise_seed}:{entry.sha256}", started_at=at,
                                 model_fault=packed.model_fault)  # fmt: skip
        own_ms = (result.finished_at - result.started_at).total_seconds() * 1000
        truth.device_s = own_ms / 1000
        elapsed_ms += own_ms
        results.append(ModelResult(
            model_sha256=entry.sha256, compile_ms=result.compile_ms,
            compile_cached=result.compile_cached, settings=result.settings,
            compute_plan=result.compute_plan, partial=result.partial, error=result.error,
            started_at=result.started_at, finished_at=result.finished_at,
        ))  # fmt: skip
        truths.append(truth)
    launch = RunnerResult(
        schema_version=PACKED_SCHEMA_VERSION, batch_id=manifest.batch_id,
        runner_version=RUNNER_VERSION, simulated=True, device=facts,
        model_sha256=manifest.model.sha256, thermal_before=thermal_before,
        thermal_after=state.heat.state, models=results,
        partial=any(r.partial for r in results), started_at=started,
        finished_at=started + timedelta(milliseconds=elapsed_ms),
    )  # fmt: skip
    return launch, truths
