"""How a batch ends: what the runner's result, or an exception on the way, makes of one
attempt (a ``RunBatchResult``; agents/batch.py runs the batch).

Classification (ARCHITECTURE "Infra failure ≠ model failure"):
- the runner reports the model failed to compile/load, or every setting failed that way
  → ``model_error``: final, recorded, never retried;
- the model needs a newer iOS than the device runs → ``model_error`` (``os_too_old``),
  decided before the run so every driver gets it, SIMULATED or real;
- the device is gone or not ready, the runner crashed or hung, the result is malformed,
  the model could not be fetched → ``infra_error``: the coordinator retries elsewhere;
- the runner app left the foreground while measuring (``interrupted``, on the batch or on
  any setting) → ``infra_error``: throttled or refused work says nothing about the model;
- anything else raised on the way (a bug, an exception no driver translated)
  → ``infra_error`` of kind ``agent_error``, its traceback in the diagnostics: a batch
  always ends as a reported attempt, never as a message acknowledged in silence;
- otherwise ``ok``, even when single settings failed (each keeps its own error).
"""

from __future__ import annotations

import logging
import traceback
from datetime import UTC, datetime

from agents.devices.base import Device
from orchestrator.errors import AnefarmError, mask
from orchestrator.protocol import (
    BatchOutcome,
    DeviceInfo,
    FailureInfo,
    RunBatch,
    RunBatchResult,
    RunnerErrorKind,
    RunnerResult,
)

log = logging.getLogger(__name__)

MODEL_ERROR_KINDS = {RunnerErrorKind.COMPILE, RunnerErrorKind.LOAD, RunnerErrorKind.UNSUPPORTED}
INTERRUPTED = RunnerErrorKind.INTERRUPTED
# FailureInfo keeps at most 500 diagnostics lines: the traceback's start and end matter.
TRACEBACK_HEAD, TRACEBACK_TAIL = 40, 300


class AgentError(AnefarmError):
    """An unexpected exception in the agent while it ran a batch: infra, retried elsewhere."""

    kind = "agent_error"
    infra = True


def classify(result: RunnerResult) -> tuple[BatchOutcome, FailureInfo | None]:
    # An interrupted setting is retried as a whole batch, like a runner crash: the settings
    # are compared with each other, so one measured in the background spoils the verdict.
    interrupted = [s.error for s in result.settings if s.error and s.error.kind == INTERRUPTED]
    if interrupted and (result.error is None or result.error.kind == INTERRUPTED):
        message = result.error.message if result.error else interrupted[0].message
        return BatchOutcome.INFRA_ERROR, FailureInfo(
            kind=str(INTERRUPTED),
            message=f"the runner app left the foreground: {message}",
            infra=True,
        )
    if result.error is not None:
        infra = result.error.kind not in MODEL_ERROR_KINDS
        return (
            BatchOutcome.INFRA_ERROR if infra else BatchOutcome.MODEL_ERROR,
            FailureInfo(kind=str(result.error.kind), message=result.error.message, infra=infra),
        )
    errors = [s.error for s in result.settings if s.error is not None]
    every_setting_failed = bool(result.settings) and len(errors) == len(result.settings)
    if every_setting_failed and all(e.kind in MODEL_ERROR_KINDS for e in errors):
        first = errors[0]
        message = f"every compute-units setting failed; first: {first.message}"
        return BatchOutcome.MODEL_ERROR, FailureInfo(
            kind=str(first.kind), message=message, infra=False
        )
    return BatchOutcome.OK, None


def failed_result(
    batch: RunBatch,
    device: Device,
    agent: str,
    started: datetime,
    error: AnefarmError,
    diagnostics: list[str],
) -> RunBatchResult:
    return RunBatchResult(
        run_id=batch.run_id,
        attempt=batch.attempt,
        job_id=batch.job_id,
        agent=agent,
        device=device.identity.to_info(),
        outcome=BatchOutcome.INFRA_ERROR if error.infra else BatchOutcome.MODEL_ERROR,
        failure=FailureInfo(
            kind=error.kind,
            message=error.one_line()[:4000],
            infra=error.infra,
            diagnostics=[d[:4000] for d in diagnostics[:500]],
        ),
        started_at=started,
        finished_at=datetime.now(UTC),
    )


def unexpected_failure(
    batch: RunBatch, device: Device, *, agent: str, error: Exception, started: datetime
) -> RunBatchResult:
    """An ``agent_error`` attempt for an exception nobody translated, traceback kept."""
    udid = device.identity.udid
    # An exception may quote a URL with its password: the database and logs must not.
    agent_error = AgentError(
        mask(f"unexpected {type(error).__name__} in the agent on {udid}: {error}"),
        hint="a bug in anefarm's agent; the traceback is in the attempt's diagnostics",
    )
    diagnostics = [mask(line) for line in traceback_lines(error)] + device_diagnostics(device)
    return failed_result(batch, device, agent, started, agent_error, diagnostics)


def traceback_lines(error: BaseException) -> list[str]:
    lines = "".join(traceback.format_exception(error)).splitlines()
    if len(lines) > TRACEBACK_HEAD + TRACEBACK_TAIL:
        left_out = len(lines) - TRACEBACK_HEAD - TRACEBACK_TAIL
        lines = [*lines[:TRACEBACK_HEAD], f"... {left_out} lines left out ...",
                 *lines[-TRACEBACK_TAIL:]]  # fmt: skip
    return lines


def device_diagnostics(device: Device) -> list[str]:
    try:
        return device.diagnostics().as_lines()
    except AnefarmError as error:  # a gone device cannot tell us more
        return [f"diagnostics unavailable: {error.one_line()}"]
    except Exception as error:
        log.exception("diagnostics of %s failed", device.identity.udid)
        return [f"diagnostics unavailable: {error!r}"]


def measured_result(
    batch: RunBatch, info: DeviceInfo, agent: str, started: datetime, result: RunnerResult
) -> RunBatchResult:
    """The result of a run the runner measured, single or one of a packed launch: its
    outcome is what ``classify`` reads in the runner's result."""
    outcome, failure_info = classify(result)
    return RunBatchResult(
        run_id=batch.run_id,
        attempt=batch.attempt,
        job_id=batch.job_id,
        agent=agent,
        device=info,
        outcome=outcome,
        runner_result=result,
        failure=failure_info,
        started_at=started,
        finished_at=datetime.now(UTC),
    )
