"""The state machine of a run and of its job, and the policy that drives it.

Every change of ``runs.status`` and ``jobs.status`` goes through here (see the package
docstring for the drawing): ingest, the reaper, redelivery and cancel decide *when*; this
module decides *what* — which transitions exist, retry-or-fail, when a device is
quarantined, what a job's status is. Nothing here talks to Redis or a broker: callers pass
what the farm looks like (live devices, a cancelled job) and get back :class:`Effects` to
apply once their transaction has committed (:mod:`orchestrator.runs.effects`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.protocol import (
    ModelFormat,
    ModelRef,
    RunBatch,
    RunnerResult,
    RunPurpose,
    RunSpec,
    livestate,
)
from orchestrator.settings import Settings
from orchestrator.store import models as db

log = logging.getLogger(__name__)

RunStatus, JobStatus = db.RunStatus, db.JobStatus
FINAL = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED})
TRANSITIONS: dict[db.RunStatus, frozenset[db.RunStatus]] = {
    RunStatus.WAITING: frozenset({RunStatus.QUEUED, RunStatus.FAILED, RunStatus.CANCELLED}),
    # queued → queued: a retry (next attempt) or a re-published copy (same attempt).
    RunStatus.QUEUED: frozenset({RunStatus.QUEUED, RunStatus.RUNNING}) | FINAL,
    RunStatus.RUNNING: frozenset({RunStatus.QUEUED}) | FINAL,
    RunStatus.SUCCEEDED: frozenset(),
    RunStatus.FAILED: frozenset(),
    RunStatus.CANCELLED: frozenset(),
}
JOB_TRANSITIONS: dict[db.JobStatus, frozenset[db.JobStatus]] = {
    JobStatus.QUEUED: frozenset(
        {JobStatus.RUNNING, JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED}
    ),
    JobStatus.RUNNING: frozenset({JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED}),
    # A bisection's probe run may reopen a finished job (its status is read again).
    JobStatus.DONE: frozenset({JobStatus.RUNNING, JobStatus.CANCELLED}),
    JobStatus.FAILED: frozenset({JobStatus.RUNNING, JobStatus.CANCELLED}),
    JobStatus.CANCELLED: frozenset(),
}


class IllegalTransition(RuntimeError):
    """A status change the state machine does not have: a bug in the caller."""


def move(run: db.Run, to: db.RunStatus) -> None:
    """Change a run's status along an edge of :data:`TRANSITIONS`."""
    if to not in TRANSITIONS[db.RunStatus(run.status)]:
        raise IllegalTransition(f"run {run.id}: {run.status} → {to} is not a transition")
    run.status = to


def move_job(job: db.Job, to: db.JobStatus) -> None:
    if to != job.status and to not in JOB_TRANSITIONS[db.JobStatus(job.status)]:
        raise IllegalTransition(f"job {job.id}: {job.status} → {to} is not a transition")
    job.status = to


@dataclass
class Effects:
    """What a transaction decided that Redis and the broker must hear once it commits."""

    sends: list[tuple[RunBatch, float | None]] = field(default_factory=list)
    quarantine: tuple[str, str] | None = None
    finished: list[str] = field(default_factory=list)  # runs made final: workers skip them
    # Sweep nights whose job became final: analysed after the commit (orchestrator/alerts).
    nights: list[UUID] = field(default_factory=list)

    def send(self, batch: RunBatch, countdown: float | None = None) -> None:
        self.sends.append((batch, countdown))

    def send_all(self, batches: Iterable[RunBatch]) -> None:
        for batch in batches:
            self.send(batch)


class LiveDevice(Protocol):  # livestate.DeviceStatus, as far as retries care (read only)
    @property
    def udid(self) -> str: ...
    @property
    def product_type(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def os_version(self) -> str: ...


@dataclass(frozen=True)
class Bisection:
    """How probe runs differ (orchestrator.bisect, wired in by ingest: the lifecycle sits
    below bisection): their spec, and what a final probe run feeds."""

    spec: Callable[[dict[str, Any]], RunSpec]
    on_final: Callable[..., list[RunBatch]]


class Lifecycle:
    def __init__(self, settings: Settings, *, bisection: Bisection | None = None) -> None:
        self.settings = settings
        self.bisection = bisection

    # -- ending a run -------------------------------------------------------------------
    def finish(
        self,
        session: Session,
        run: db.Run,
        status: db.RunStatus,
        kind: str | None,
        message: str | None,
        *,
        infra: bool,
        effects: Effects,
        runner: RunnerResult | None = None,
        probe_note: str | None = None,
    ) -> None:
        """Make the run final; a probe run then feeds its bisection (which may queue a
        lifted probe); the job's status follows."""
        move(run, status)
        effects.finished.append(str(run.id))
        run.error_kind, run.error_message = kind, message
        run.infra_failure = infra
        run.finished_at = datetime.now(UTC)
        session.flush()
        job_status(session, run.job_id)
        night_ended(session, run.job_id, effects)
        if run.purpose != RunPurpose.PROBE or self.bisection is None:
            return
        failure = None if status == RunStatus.SUCCEEDED else (probe_note or message)
        effects.send_all(
            self.bisection.on_final(session, run, runner, failure, settings=self.settings)
        )
        session.flush()
        job_status(session, run.job_id)
        night_ended(session, run.job_id, effects)

    def retry_or_fail(
        self,
        session: Session,
        run: db.Run,
        kind: str,
        message: str,
        *,
        avoid: str,
        live: Iterable[LiveDevice],
        effects: Effects,
        cancelled: bool = False,
        backoff: bool = True,
    ) -> bool:
        """An infra failure of the run's current attempt: the next attempt (on another live
        device of the class when there is one, after a backoff), or — past the attempt
        budget, or for a cancelled job — the run fails. True when it was retried."""
        if run.attempts < run.max_attempts and not cancelled:
            run.attempts += 1
            move(run, RunStatus.QUEUED)
            run.error_kind, run.error_message = kind, message
            # A repeat of a sweep's series prefers a device its siblings are not on.
            siblings = series_devices(session, run)
            batch = self.batch_for(session, run, pinned_udid=pick_device(run, live, avoid=avoid,
                                                                         used=siblings))  # fmt: skip
            run.pinned_udid = batch.pinned_udid
            countdown = self.backoff_s(run.attempts) if backoff else None
            run.queued_at = datetime.now(UTC) + timedelta(seconds=countdown or 0.0)
            effects.send(batch, countdown)
            return True
        failure = f"gave up after {run.attempts} attempt(s): {message}"
        run.pinned_udid = None  # a final run waits in no device's queue
        self.finish(session, run, RunStatus.FAILED, kind, failure, infra=True, effects=effects)
        return False

    def backoff_s(self, attempt: int) -> float:
        return float(self.settings.retry_backoff_s * 2 ** (attempt - 2))

    def count_infra(self, device: db.Device, kind: str) -> str | None:
        """One more infra failure in a row on ``device``; the quarantine reason once it
        reaches ``quarantine_after`` (the device is then marked quarantined)."""
        device.infra_failures_in_row += 1
        if device.infra_failures_in_row < self.settings.quarantine_after:
            return None
        reason = f"{device.infra_failures_in_row} infra failures in a row (last: {kind})"
        device.state, device.reasons = livestate.DeviceState.QUARANTINED, [reason]
        return reason

    @staticmethod
    def count_ok(device: db.Device) -> None:
        device.infra_failures_in_row = 0

    # -- (re)publishing --------------------------------------------------------------
    def release(self, session: Session, run: db.Run, effects: Effects) -> None:
        """A waiting run whose class has a live device now: queued and published."""
        move(run, RunStatus.QUEUED)
        run.queued_at = datetime.now(UTC)
        effects.send(self.batch_for(session, run, pinned_udid=None))

    def republish(self, session: Session, run: db.Run, effects: Effects) -> None:
        """A queued run whose batch is lost: the same attempt, published again."""
        move(run, RunStatus.QUEUED)
        run.queued_at = datetime.now(UTC)
        effects.send(self.batch_for(session, run, pinned_udid=run.pinned_udid))

    def batch_for(self, session: Session, run: db.Run, *, pinned_udid: str | None) -> RunBatch:
        """The batch of the run's current attempt (a retry, or a re-published copy)."""
        job = session.get(db.Job, run.job_id)
        model = session.get(db.Model, run.model_sha256)
        assert job is not None and model is not None
        if run.purpose == RunPurpose.PROBE:
            # A probe's spec is its own (every compute-units setting, the plan asked for).
            assert self.bisection is not None, "probe runs need the bisection wired in"
            spec = self.bisection.spec(job.spec)
        else:
            spec = RunSpec.model_validate(job.spec)
        return RunBatch(
            run_id=run.id,
            attempt=run.attempts,
            job_id=run.job_id,
            model=model_ref(model, self.settings.resolved_artifact_url),
            device_class=run.device_class,
            pinned_udid=pinned_udid,
            spec=spec,
            purpose=RunPurpose(run.purpose),
            created_at=datetime.now(UTC),
        )


def series_devices(session: Session, run: db.Run) -> set[str]:
    """The devices the other runs of ``run``'s series in its job are on or pinned to: a
    sweep night's repeats (sweeps/repeats.py) and confirmation. Empty outside a series."""
    if run.series is None:
        return set()
    rows = session.execute(
        select(db.Run.udid, db.Run.pinned_udid).where(
            db.Run.job_id == run.job_id, db.Run.series == run.series,
            db.Run.device_class == run.device_class, db.Run.id != run.id,
        )
    )  # fmt: skip
    return {udid for row in rows for udid in row if udid}


def pick_device(
    run: db.Run, live: Iterable[LiveDevice], *, avoid: str, used: Iterable[str] = ()
) -> str | None:
    """Another live, usable device of the run's class (for a probe: on the OS it
    measures), the first by udid not in ``used`` if there is one, else the first by udid;
    None for the class queue."""
    os_version = (run.bisection or {}).get("key", {}).get("os_version")
    others = [
        d.udid
        for d in live
        if d.product_type == run.device_class
        and d.udid != avoid
        and d.state not in (livestate.DeviceState.QUARANTINED, livestate.DeviceState.NOT_READY)
        and (os_version is None or d.os_version == os_version)
    ]
    fresh = sorted(set(others) - set(used))
    return fresh[0] if fresh else (sorted(others)[0] if others else None)


def job_status(session: Session, job_id: UUID) -> None:
    """A job is running once one of its runs left the queue, done when all are final and
    one succeeded, failed when all are final and none did; cancelled stays cancelled."""
    job = session.get(db.Job, job_id)
    if job is None or job.status == JobStatus.CANCELLED:
        return
    # The distinct statuses, not every run's: this runs once per ingested result, and a
    # job may have thousands of runs.
    statuses = set(session.scalars(select(db.Run.status).where(db.Run.job_id == job_id).distinct()))
    if statuses and all(s in FINAL for s in statuses):
        ok = any(s == RunStatus.SUCCEEDED for s in statuses)
        move_job(job, JobStatus.DONE if ok else JobStatus.FAILED)
    elif any(s not in (RunStatus.QUEUED, RunStatus.WAITING) for s in statuses):
        move_job(job, JobStatus.RUNNING)


def night_ended(session: Session, job_id: UUID, effects: Effects) -> None:
    """A sweep's night whose job is final now is analysed once the transaction commits
    (issue 18: the caller's ``Ingestor.apply`` runs orchestrator.alerts)."""
    job = session.get(db.Job, job_id)
    if job is None or job.sweep_id is None or job_id in effects.nights:
        return
    if job.status in (JobStatus.DONE, JobStatus.FAILED):
        effects.nights.append(job_id)


def cancel_job(session: Session, job: db.Job) -> list[str]:
    """Every unfinished run of the job cancelled (pending bisections with it); the ids.

    A job with nothing left to do keeps its status: relabelling a finished job "cancelled"
    would change what its report says (and its exit code) although nothing stopped."""
    cancelled = []
    stopped = False
    now = datetime.now(UTC)
    for run in session.scalars(select(db.Run).where(db.Run.job_id == job.id)):
        if run.status not in FINAL:
            move(run, RunStatus.CANCELLED)
            run.finished_at = now
            cancelled.append(str(run.id))
        if run.bisect_state == "pending":  # its probe runs are cancelled with the job
            run.bisect_state = "cancelled"
            stopped = True
    if cancelled or stopped or job.status not in (JobStatus.DONE, JobStatus.FAILED):
        move_job(job, JobStatus.CANCELLED)
    return cancelled


def model_ref(stored: Any, location: str) -> ModelRef:
    """The message form of a stored model (a StoredArtifact or a models row)."""
    return ModelRef(
        sha256=stored.sha256,
        filename=stored.filename,
        format=ModelFormat(stored.format),
        size_bytes=stored.size_bytes,
        location=location,
    )
