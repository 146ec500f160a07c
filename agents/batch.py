"""Run one RunBatch on one device and turn whatever happens into a RunBatchResult.

This is the worker's logic without Celery around it, so tests can drive it directly:
readiness → fetch → OS gate → run, and then what the outcome is (model or infra failure,
or ok: agents/outcome.py). Nothing raised on the way escapes: a batch always ends as a
reported attempt.

A packed batch (several probe runs of one parent, docs/bisection.md "Packed probes") is
one runner launch and one result per run (``execute_all``): each run's part of the
launch is classified as a batch of its own, a model that fails is that run's failure only,
and a launch the runner crashes is split in halves and launched again (at most log2(n)
times deep) so one bad probe cannot take the others down. A driver without packed launches
(``run_packed``) runs the probes one launch each.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from agents.devices.base import Device
from agents.outcome import device_diagnostics, failed_result, measured_result, unexpected_failure
from orchestrator.errors import AnefarmError, DeviceNotReady, ModelError, RunnerCrashed
from orchestrator.modelkit.targets import os_too_old, read_spec_version
from orchestrator.protocol import (
    PACKED_SCHEMA_VERSION,
    ManifestModel,
    ModelResult,
    RunBatch,
    RunBatchResult,
    RunnerManifest,
    RunnerResult,
)

# unexpected_failure is the worker's too, for what goes wrong around a batch.
__all__ = ["execute", "execute_all", "manifest_for", "os_gate", "unexpected_failure"]

log = logging.getLogger(__name__)

# Time the runner may use of the batch timeout; the rest covers launch, push and pull.
RUNNER_BUDGET_SHARE = 0.9


def manifest_for(batch: RunBatch) -> RunnerManifest:
    return RunnerManifest(
        batch_id=batch.batch_id,
        model=ManifestModel(
            filename=batch.model.filename, sha256=batch.model.sha256, format=batch.model.format
        ),
        compute_units=list(batch.spec.compute_units),
        iterations=batch.spec.iterations,
        warmup=batch.spec.warmup,
        time_budget_s=batch.spec.timeout_s * RUNNER_BUDGET_SHARE,
        input_seed=batch.input_seed,
        compute_plan=batch.spec.compute_plan,
        cold_load=batch.spec.cold_load,
    )


def execute(
    batch: RunBatch,
    device: Device,
    *,
    agent: str,
    fetch_model: Callable[[RunBatch], Path],
) -> RunBatchResult:
    """Readiness → fetch → OS gate → run → classify. Never raises (but for BaseException
    such as a worker shutdown): whatever goes wrong becomes a failed attempt."""
    started = datetime.now(UTC)
    try:
        return _execute(batch, device, agent=agent, fetch_model=fetch_model, started=started)
    except Exception as error:
        log.exception("batch %s: unexpected error in the agent", batch.batch_id)
        return unexpected_failure(batch, device, agent=agent, error=error, started=started)


def os_gate(model_path: Path, os_version: str) -> AnefarmError | None:
    """A model failure if the model's Core ML specification needs a newer iOS."""
    try:
        spec_version = read_spec_version(model_path)
    except ModelError as error:
        # The coordinator parsed this model at submit; if we cannot, the device decides.
        log.warning("iOS check skipped: %s", error.one_line())
        return None
    return os_too_old(spec_version, os_version)


def _execute(
    batch: RunBatch,
    device: Device,
    *,
    agent: str,
    fetch_model: Callable[[RunBatch], Path],
    started: datetime,
) -> RunBatchResult:
    # A SIMULATED farm follows its timeline to the batch's night (its OS, presence and
    # SIMULATED regressions: docs/simulation.md); real devices have no such method.
    at_night = getattr(device, "at_night", None)
    if callable(at_night):
        at_night(batch.spec.night)
    info = device.identity.to_info()

    def failure(error: AnefarmError, diagnostics: list[str]) -> RunBatchResult:
        return failed_result(batch, device, agent, started, error, diagnostics)

    readiness = device.readiness()
    if not readiness.ready:
        not_ready = DeviceNotReady(
            "device not ready: " + "; ".join(readiness.reasons),
            udid=info.udid,
            reasons=readiness.reasons,
        )
        return failure(not_ready, readiness.reasons)
    try:
        model_path = fetch_model(batch)
        too_old = os_gate(model_path, info.os_version)
        if too_old is not None:
            log.warning("batch %s on %s: %s", batch.batch_id, info.udid, too_old.one_line())
            return failure(too_old, [])
        result = device.run(manifest_for(batch), model_path, batch.spec.timeout_s)
    except AnefarmError as error:
        diagnostics = list(getattr(error, "diagnostics", []))
        if error.infra:
            diagnostics += device_diagnostics(device)
        log.warning("batch %s on %s failed: %s", batch.batch_id, info.udid, error.one_line())
        return failure(error, diagnostics)
    if result.simulated != info.simulated:
        crashed = RunnerCrashed("runner result disagrees about being simulated", udid=info.udid)
        return failure(crashed, [])
    return measured_result(batch, info, agent, started, result)


# Packed batches ----------------------------------------------------------------------
def execute_all(
    batch: RunBatch,
    device: Device,
    *,
    agent: str,
    fetch_model: Callable[[RunBatch], Path],
) -> list[RunBatchResult]:
    """Every run of ``batch``, one result each (a single-run batch: ``execute``). Never
    raises (but for BaseException)."""
    if batch.packed is None:
        return [execute(batch, device, agent=agent, fetch_model=fetch_model)]
    members = batch.members()
    if not callable(getattr(device, "run_packed", None)):
        return [execute(m, device, agent=agent, fetch_model=fetch_model) for m in members]
    started = datetime.now(UTC)
    try:
        return _execute_packed(members, device, agent=agent, fetch_model=fetch_model)
    except Exception as error:
        log.exception("packed batch %s: unexpected error in the agent", batch.batch_id)
        return _launched(
            [unexpected_failure(m, device, agent=agent, error=error, started=started)
             for m in members], members[0])  # fmt: skip


def packed_manifest_for(members: list[RunBatch]) -> RunnerManifest:
    """One manifest for the runs of a launch: the first run's settings, every model."""
    models = [ManifestModel(filename=m.model.filename, sha256=m.model.sha256,
                            format=m.model.format) for m in members]  # fmt: skip
    single = manifest_for(members[0])
    return RunnerManifest.model_validate(
        single.model_dump() | {"schema_version": PACKED_SCHEMA_VERSION, "models": models}
    )


def _launched(results: list[RunBatchResult], head: RunBatch) -> list[RunBatchResult]:
    """The results of one launch, each saying which launch it was part of."""
    return [
        r.model_copy(update={"schema_version": PACKED_SCHEMA_VERSION, "launch": head.batch_id})
        for r in results
    ]


def _execute_packed(
    members: list[RunBatch],
    device: Device,
    *,
    agent: str,
    fetch_model: Callable[[RunBatch], Path],
) -> list[RunBatchResult]:
    head = members[0]
    if len(members) == 1:  # what a split leaves: an ordinary launch
        return _launched([execute(head, device, agent=agent, fetch_model=fetch_model)], head)
    started = datetime.now(UTC)
    at_night = getattr(device, "at_night", None)
    if callable(at_night):
        at_night(head.spec.night)
    info = device.identity.to_info()

    def every_run(error: AnefarmError, diagnostics: list[str]) -> list[RunBatchResult]:
        return _launched(
            [failed_result(m, device, agent, started, error, diagnostics) for m in members], head
        )

    readiness = device.readiness()
    if not readiness.ready:
        reasons = readiness.reasons
        not_ready = DeviceNotReady("device not ready: " + "; ".join(reasons), udid=info.udid,
                                   reasons=reasons)  # fmt: skip
        return every_run(not_ready, reasons)
    done: list[RunBatchResult] = []
    runnable: list[tuple[RunBatch, Path]] = []
    for member in members:
        try:
            path = fetch_model(member)
        except AnefarmError as error:
            done.append(failed_result(member, device, agent, started, error, []))
            continue
        too_old = os_gate(path, info.os_version)
        if too_old is not None:
            done.append(failed_result(member, device, agent, started, too_old, []))
        else:
            runnable.append((member, path))
    if len(runnable) < 2:
        rest = [execute(m, device, agent=agent, fetch_model=fetch_model) for m, _ in runnable]
        return _launched(done + rest, head)
    launch = [m for m, _ in runnable]
    manifest = packed_manifest_for(launch)
    try:
        result = device.run_packed(  # type: ignore[attr-defined]
            manifest, [path for _, path in runnable], head.spec.timeout_s
        )
        if not isinstance(result, RunnerResult) or result.simulated != info.simulated:
            raise RunnerCrashed("runner result disagrees about being simulated", udid=info.udid)
    except RunnerCrashed as error:
        # One model may crash the runner: each half gets a launch of its own, so the
        # crash ends up with the one probe that causes it (log2(n) splits at most).
        log.warning("packed batch %s crashed (%s): split in two", head.batch_id,
                    error.one_line())  # fmt: skip
        half = len(launch) // 2
        split = [
            *_execute_packed(launch[:half], device, agent=agent, fetch_model=fetch_model),
            *_execute_packed(launch[half:], device, agent=agent, fetch_model=fetch_model),
        ]
        return _launched(done, head) + split
    except AnefarmError as error:
        diagnostics = list(getattr(error, "diagnostics", []))
        if error.infra:
            diagnostics += device_diagnostics(device)
        log.warning("packed batch %s on %s failed: %s", head.batch_id, info.udid,
                    error.one_line())  # fmt: skip
        return every_run(error, diagnostics)
    by_sha = {m.model_sha256: m for m in result.models or []}
    for member in launch:
        own = by_sha.get(member.model.sha256)
        if own is None and result.error is None:
            missing = RunnerCrashed(f"the runner reported no result for {member.model.filename}",
                                    udid=info.udid)  # fmt: skip
            done.append(failed_result(member, device, agent, started, missing, []))
            continue
        done.append(measured_result(member, info, agent, started, _single(result, member, own)))
    return _launched(done, head)


def _single(launch: RunnerResult, member: RunBatch, own: ModelResult | None) -> RunnerResult:
    """One run's part of a packed launch as the version 1 result ingest stores: its model's
    settings, plan and times (its own device time, not the launch's)."""
    if own is None:  # the launch failed as a whole: every run says so
        return launch.model_copy(update={"schema_version": 1, "models": None,
                                         "batch_id": member.batch_id,
                                         "model_sha256": member.model.sha256})  # fmt: skip
    return RunnerResult(
        batch_id=member.batch_id, runner_version=launch.runner_version,
        simulated=launch.simulated, device=launch.device, model_sha256=own.model_sha256,
        compile_ms=own.compile_ms, compile_cached=own.compile_cached,
        thermal_before=launch.thermal_before, thermal_after=launch.thermal_after,
        cooldowns=launch.cooldowns, settings=own.settings, compute_plan=own.compute_plan,
        partial=own.partial, error=own.error, started_at=own.started_at,
        finished_at=own.finished_at,
    )  # fmt: skip
