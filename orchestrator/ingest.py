"""Ingest: results queue → database, idempotently, then verdicts and retries.

One transaction per batch result. At-least-once delivery means a result may arrive
twice (a redelivered task, a duplicated message): the (run, attempt) pair is unique and
a run that is already final takes no second result, so the database holds exactly one
result per run. A payload that does not validate is kept raw for diagnosis and its run
is marked failed with a protocol error.

Failure policy (ARCHITECTURE "Infra failure ≠ model failure"):
- model failure → the run fails, final, one attempt;
- infra failure → retried, with backoff, on another live device of the class when there
  is one, up to ``max_attempts``; a device with ``quarantine_after`` infra failures in
  a row is quarantined (its worker stops consuming).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID

import redis
from celery import Celery
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from orchestrator import catalog, failpoints, livestate
from orchestrator.bisect.finish import on_probe_final, on_verdict
from orchestrator.bisect.plan import probe_spec, stored_lint
from orchestrator.dispatch import model_ref, publish
from orchestrator.errors import ServiceError
from orchestrator.protocol import (
    BatchOutcome,
    RunBatch,
    RunBatchResult,
    RunPurpose,
    RunSpec,
    Verdict,
)
from orchestrator.settings import Settings
from orchestrator.store import models as db
from orchestrator.store.engine import session_scope
from orchestrator.verdict import decide

log = logging.getLogger(__name__)

FINAL = {db.RunStatus.SUCCEEDED, db.RunStatus.FAILED, db.RunStatus.CANCELLED}


class IngestOutcome(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"
    RETRY = "retry"
    FAILED = "failed"
    INVALID = "invalid"
    UNKNOWN_RUN = "unknown_run"


@dataclass
class AfterCommit:
    """Side effects that must wait until the transaction has committed."""

    retry: RunBatch | None = None
    countdown: float = 0.0
    quarantine: tuple[str, str] | None = None
    batches: list[RunBatch] = field(default_factory=list)  # probe runs (bisection)
    notes: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)  # runs made final: workers skip them


class Ingestor:
    def __init__(
        self,
        settings: Settings,
        *,
        sessions: sessionmaker[Session],
        app: Celery,
        client: redis.Redis,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.app = app
        self.redis = client

    def ingest(self, payload: Any) -> IngestOutcome:
        try:
            result = RunBatchResult.model_validate(payload)
        except ValidationError as error:
            return self._keep_invalid(payload, error)
        after = AfterCommit()
        try:
            with session_scope(self.sessions) as session:
                outcome = self._apply(session, result, after)
        except IntegrityError:
            # A concurrent duplicate won the race on the unique (run, attempt) key.
            return IngestOutcome.DUPLICATE
        failpoints.hit(failpoints.INGEST_AFTER_COMMIT)
        self.apply(after)
        return outcome

    def apply(self, after: AfterCommit) -> None:
        """The side effects of a committed transaction, in Redis. A broker that fails here
        loses nothing: the runs are queued in the database, and the sweep re-publishes a
        queued run whose message Redis does not hold (orchestrator/sweep.py)."""
        try:
            if after.quarantine:
                udid, reason = after.quarantine
                livestate.quarantine(self.redis, udid, reason)
                log.warning("device %s quarantined: %s", udid, reason)
            livestate.mark_final(self.redis, after.finished, ttl_s=self.final_mark_ttl_s)
            if after.retry is not None:
                publish(self.app, after.retry, countdown=after.countdown)
            for batch in after.batches:
                publish(self.app, batch)
        except (ServiceError, redis.RedisError) as error:
            message = error.one_line() if isinstance(error, ServiceError) else str(error)
            log.warning("after commit: %s; the sweep re-publishes what is missing", message)

    @property
    def final_mark_ttl_s(self) -> int:
        # As long as Redis may hand out an old delivery again (the visibility timeout).
        return int(2 * self.settings.run_timeout_s + 3600)

    # ------------------------------------------------------------------------------
    def _keep_invalid(self, payload: Any, error: ValidationError) -> IngestOutcome:
        text = payload if isinstance(payload, str) else json.dumps(payload, default=str)
        run_id, attempt = _ids_of(payload)
        message = f"invalid result: {error.error_count()} problem(s): " + "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()[:5]
        )
        with session_scope(self.sessions) as session:
            session.add(
                db.RawResult(
                    run_id=run_id if run_id and session.get(db.Run, run_id) else None,
                    attempt=attempt,
                    received_at=datetime.now(UTC),
                    payload=text[:10_000_000],
                    error=message,
                )
            )
            run = session.get(db.Run, run_id) if run_id else None
            after = AfterCommit()
            if run is not None and run.status not in FINAL:
                self.finish(session, run, db.RunStatus.FAILED, "protocol", message,
                            infra=True, after=after)  # fmt: skip
                self.probe_final(session, run, None, message, after)
        self.apply(after)
        log.error("%s", message)
        return IngestOutcome.INVALID

    def _apply(self, session: Session, result: RunBatchResult, after: AfterCommit) -> IngestOutcome:
        run = session.get(db.Run, result.run_id, with_for_update=True)
        if run is None:
            session.add(
                db.RawResult(
                    run_id=None,
                    attempt=result.attempt,
                    received_at=datetime.now(UTC),
                    payload=result.model_dump_json(),
                    error=f"result for unknown run {result.run_id}",
                )
            )
            return IngestOutcome.UNKNOWN_RUN
        duplicate = (
            session.query(db.RunAttempt)
            .filter_by(run_id=run.id, attempt=result.attempt)
            .one_or_none()
        )
        if duplicate is not None or run.status in FINAL:
            return IngestOutcome.DUPLICATE
        failure = result.failure
        session.add(
            db.RunAttempt(
                run_id=run.id,
                attempt=result.attempt,
                udid=result.device.udid,
                agent=result.agent,
                outcome=result.outcome,
                failure_kind=failure.kind if failure else None,
                failure_message=failure.message if failure else None,
                diagnostics=failure.diagnostics if failure else [],
                started_at=result.started_at,
                finished_at=result.finished_at,
            )
        )
        session.flush()  # the unique (run, attempt) key speaks now, not at commit
        device = self._touch_device(session, result)
        run.udid, run.agent = result.device.udid, result.agent
        run.simulated = result.device.simulated
        run.os_version, run.os_build = result.device.os_version, result.device.os_build
        run.started_at = run.started_at or result.started_at
        if result.runner_result is not None:
            run.runner_version = result.runner_result.runner_version
            self._store_measurements(session, run, result)
        if result.outcome is BatchOutcome.OK:
            device.infra_failures_in_row = 0
            verdict = self._store_verdict(session, run, result)
            if run.purpose == RunPurpose.USER:
                after.batches += on_verdict(session, run, verdict, settings=self.settings)
            self.finish(session, run, db.RunStatus.SUCCEEDED, None, None, infra=False, after=after)
            self.probe_final(session, run, result.runner_result, None, after)
            return IngestOutcome.STORED
        assert failure is not None  # guaranteed by RunBatchResult's validator
        if result.outcome is BatchOutcome.MODEL_ERROR:
            device.infra_failures_in_row = 0
            self.finish(session, run, db.RunStatus.FAILED, failure.kind, failure.message,
                        infra=False, after=after)  # fmt: skip
            self.probe_final(session, run, None, f"{failure.kind}: {failure.message}", after)
            return IngestOutcome.FAILED
        # Infra failure: count it against the device, then retry or give up.
        device.infra_failures_in_row += 1
        if device.infra_failures_in_row >= self.settings.quarantine_after:
            device.state = livestate.DeviceState.QUARANTINED
            reason = (
                f"{device.infra_failures_in_row} infra failures in a row (last: {failure.kind})"
            )
            device.reasons = [reason]
            after.quarantine = (device.udid, reason)
        if run.attempts < run.max_attempts and not livestate.is_cancelled(
            self.redis, str(run.job_id)
        ):
            run.attempts += 1
            run.status = db.RunStatus.QUEUED
            run.error_kind, run.error_message = failure.kind, failure.message
            after.retry = self.retry_batch(session, run, avoid=result.device.udid)
            run.pinned_udid = after.retry.pinned_udid
            after.countdown = self.settings.retry_backoff_s * 2 ** (run.attempts - 2)
            run.queued_at = datetime.now(UTC) + timedelta(seconds=after.countdown)
            return IngestOutcome.RETRY
        message = f"gave up after {run.attempts} attempt(s): {failure.message}"
        self.finish(session, run, db.RunStatus.FAILED, failure.kind, message, infra=True,
                    after=after)  # fmt: skip
        self.probe_final(session, run, None, message, after)
        return IngestOutcome.FAILED

    def probe_final(
        self, session: Session, run: Any, runner: Any, failure: str | None, after: AfterCommit
    ) -> None:
        """A final probe run feeds the compatibility matrix and its parent's bisection,
        which may queue a lifted probe: the job's status is read again afterwards."""
        if run.purpose != RunPurpose.PROBE:
            return
        after.batches += on_probe_final(session, run, runner, failure, settings=self.settings)
        session.flush()
        update_job_status(session, run.job_id)

    def _touch_device(self, session: Session, result: RunBatchResult) -> Any:
        info = result.device
        device = session.get(db.Device, info.udid, with_for_update=True)
        if device is None:
            device = db.Device(
                udid=info.udid,
                product_type=info.product_type,
                chip=_chip_of(info.product_type),
                state=livestate.DeviceState.READY,
                reasons=[],
                infra_failures_in_row=0,
            )
            session.add(device)
        device.os_version, device.os_build, device.name = info.os_version, info.os_build, info.name
        device.simulated, device.agent = info.simulated, result.agent
        device.last_seen = datetime.now(UTC)
        return device

    def _store_measurements(self, session: Session, run: Any, result: RunBatchResult) -> None:
        runner = result.runner_result
        assert runner is not None
        # A model failure may come after earlier infra attempts stored nothing; a run
        # only ever keeps the measurements of the attempt that finished it.
        session.query(db.Measurement).filter_by(run_id=run.id).delete()
        session.query(db.OpPlacement).filter_by(run_id=run.id, source="plan").delete()
        for setting in runner.settings:
            stats = setting.stats
            session.add(
                db.Measurement(
                    run_id=run.id,
                    compute_units=setting.compute_units,
                    cold_load_ms=setting.cold_load_ms,
                    cold_load_provenance=setting.cold_load_provenance,
                    warm_load_ms=setting.warm_load_ms,
                    first_prediction_ms=setting.first_prediction_ms,
                    samples_ms=list(setting.latencies_ms),
                    count=stats.count if stats else 0,
                    min=stats.min if stats else None,
                    max=stats.max if stats else None,
                    mean=stats.mean if stats else None,
                    std=stats.std if stats else None,
                    p50=stats.p50 if stats else None,
                    p90=stats.p90 if stats else None,
                    p99=stats.p99 if stats else None,
                    error_kind=setting.error.kind if setting.error else None,
                    error_message=setting.error.message if setting.error else None,
                )
            )
        if runner.compute_plan is not None:
            for op in runner.compute_plan.ops:
                session.add(
                    db.OpPlacement(
                        run_id=run.id,
                        source="plan",
                        index=op.index,
                        name=op.name,
                        op_type=op.op_type,
                        preferred=op.preferred,
                        supported=[str(u) for u in op.supported],
                        cost=op.cost,
                    )
                )

    def _store_verdict(self, session: Session, run: Any, result: RunBatchResult) -> Verdict:
        runner = result.runner_result
        assert runner is not None
        chip = _chip_of(run.device_class)
        findings = stored_lint(session.get(db.Model, run.model_sha256), chip)
        verdict = decide(
            runner,
            device_class=run.device_class,
            chip=chip,
            simulated=result.device.simulated,
            lint=findings,
        )
        session.query(db.Verdict).filter_by(run_id=run.id).delete()
        session.add(
            db.Verdict(
                run_id=run.id,
                model_sha256=run.model_sha256,
                device_class=run.device_class,
                chip=chip,
                os_version=verdict.os_version,
                simulated=verdict.simulated,
                verdict=verdict.verdict,
                ane_share=verdict.ane_share,
                payload=verdict.model_dump(mode="json"),
                created_at=datetime.now(UTC),
            )
        )
        return verdict

    def retry_batch(self, session: Session, run: Any, *, avoid: str) -> RunBatch:
        """The run's next attempt, on another live device of the class when there is one
        (a probe: one on the same OS, since it measures one OS build), else on the class."""
        os_version = (run.bisection or {}).get("key", {}).get("os_version")
        others = [
            d.udid
            for d in livestate.live_devices(self.redis)
            if d.product_type == run.device_class
            and d.udid != avoid
            and d.state not in (livestate.DeviceState.QUARANTINED, livestate.DeviceState.NOT_READY)
            and (os_version is None or d.os_version == os_version)
        ]
        return self.batch_for(session, run, pinned_udid=sorted(others)[0] if others else None)

    def batch_for(self, session: Session, run: Any, *, pinned_udid: str | None) -> RunBatch:
        """The batch of the run's current attempt (a retry, or a re-published copy)."""
        job = session.get(db.Job, run.job_id)
        model = session.get(db.Model, run.model_sha256)
        assert job is not None and model is not None
        return RunBatch(
            run_id=run.id,
            attempt=run.attempts,
            job_id=run.job_id,
            model=model_ref(model, self.settings.resolved_artifact_url),
            device_class=run.device_class,
            pinned_udid=pinned_udid,
            # A probe's spec is its own (every compute-units setting, the plan asked for).
            spec=probe_spec(job.spec)
            if run.purpose == RunPurpose.PROBE
            else RunSpec.model_validate(job.spec),
            purpose=run.purpose,
            created_at=datetime.now(UTC),
        )

    def finish(
        self,
        session: Session,
        run: Any,
        status: Any,
        kind: str | None,
        message: str | None,
        *,
        infra: bool,
        after: AfterCommit,
    ) -> None:
        after.finished.append(str(run.id))
        run.status = status
        run.error_kind, run.error_message = kind, message
        run.infra_failure = infra
        run.finished_at = datetime.now(UTC)
        session.flush()
        update_job_status(session, run.job_id)


def update_job_status(session: Session, job_id: UUID) -> None:
    job = session.get(db.Job, job_id)
    if job is None or job.status == db.JobStatus.CANCELLED:
        return
    statuses = [r.status for r in session.query(db.Run).filter_by(job_id=job_id)]
    if statuses and all(s in FINAL for s in statuses):
        ok = any(s == db.RunStatus.SUCCEEDED for s in statuses)
        job.status = db.JobStatus.DONE if ok else db.JobStatus.FAILED
    elif any(s not in (db.RunStatus.QUEUED, db.RunStatus.WAITING) for s in statuses):
        job.status = db.JobStatus.RUNNING


def _chip_of(product_type: str) -> str:
    model = catalog.DEVICES.get(product_type)
    return model.chip if model else "unknown"


def _ids_of(payload: Any) -> tuple[UUID | None, int | None]:
    if not isinstance(payload, dict):
        return None, None
    try:
        run_id = UUID(str(payload.get("run_id")))
    except ValueError:
        return None, None
    attempt = payload.get("attempt")
    return run_id, attempt if isinstance(attempt, int) else None
