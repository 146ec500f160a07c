"""Ingest: results queue → database, idempotently, then verdicts and retries.

One transaction per batch result. At-least-once delivery means a result may arrive
twice (a redelivered task, a duplicated message): the (run, attempt) pair is unique and
a run that is already final takes no second result, so the database holds exactly one
result per run. A payload that does not validate is kept raw for diagnosis and its run
is marked failed with a protocol error.

Failure policy (ARCHITECTURE "Infra failure ≠ model failure"), decided by the run
lifecycle (``orchestrator.runs``):
- model failure → the run fails, final, one attempt;
- infra failure → retried, with backoff, on another live device of the class when there
  is one, up to ``max_attempts``; a device with ``quarantine_after`` infra failures in
  a row is quarantined (its worker stops consuming).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

import redis
from celery import Celery, current_task
from pydantic import ValidationError
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from orchestrator import failpoints, runs
from orchestrator.bisect.finish import on_probe_final, on_verdict
from orchestrator.bisect.plan import chip_of, probe_spec, stored_lint
from orchestrator.db_outage import is_connection_error
from orchestrator.delivery import screening
from orchestrator.delivery.drain import ResultDrain, Taken
from orchestrator.errors import ServiceError, mask
from orchestrator.protocol import (
    ABSENT_FROM_FARM,
    BatchOutcome,
    RunBatch,
    RunBatchResult,
    RunPurpose,
    Verdict,
    livestate,
)
from orchestrator.protocol.transport import (
    INGEST_RESULT_TASK,
    CeleryPublisher,
    Publisher,
    StubPublisher,
)
from orchestrator.runs import FINAL, Effects, record
from orchestrator.settings import Settings
from orchestrator.store import models as db
from orchestrator.store.engine import session_scope
from orchestrator.verdict import decide

log = logging.getLogger(__name__)


__all__ = ["FINAL", "IngestOutcome", "Ingestor"]  # FINAL: orchestrator.runs's, for old callers
# Probe runs are bisection's: their spec, and what their end feeds (wired in here because
# the lifecycle sits below bisection).
BISECTION = runs.Bisection(spec=probe_spec, on_final=on_probe_final)


class IngestOutcome(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"
    RETRY = "retry"
    FAILED = "failed"
    INVALID = "invalid"
    UNKNOWN_RUN = "unknown_run"


class Ingestor:
    def __init__(
        self,
        settings: Settings,
        *,
        sessions: sessionmaker[Session],
        app: Celery,
        client: redis.Redis,
        publisher: Publisher | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.app = app
        self.redis = client
        self.publisher = publisher or CeleryPublisher(app)
        self.lifecycle = runs.Lifecycle(settings, bisection=BISECTION)
        # Refused results by reason ("invalid", "oversize"); on_rejected(reason) is told of
        # each as well (the coordinator's /metrics counts them).
        self.rejected: Counter[str] = Counter()
        self.on_rejected: Callable[[str], None] | None = None
        # on_ingested(outcome, seconds) after each result (orchestrator/ops/metrics.py).
        self.on_ingested: Callable[[IngestOutcome, float], None] | None = None
        # Results taken from the queue along with the one handed over (None: never).
        self.drain = ResultDrain(app, client, limit=settings.ingest_batch) if client else None

    def ingest(self, payload: Any) -> IngestOutcome:
        """Store one result. As the coordinator's ``ingest_result`` task, the results
        waiting behind it on the queue are taken along into the same transaction
        (``ANEFARM_INGEST_BATCH``, orchestrator/delivery/drain.py)."""
        started = time.perf_counter()
        taken = self._waiting()
        if taken:
            return self._ingest_with(payload, taken, started)
        outcome = self._ingest(payload)
        self._count(outcome, time.perf_counter() - started)
        return outcome

    def _count(self, outcome: IngestOutcome, seconds: float) -> None:
        if self.on_ingested is not None:
            self.on_ingested(outcome, seconds)

    def _waiting(self) -> list[Taken]:
        # current_task is a proxy: None outside a task, and then it has no name.
        if self.drain is None or getattr(current_task, "name", None) != INGEST_RESULT_TASK:
            return []  # a packed launch, a test, the in-process farm: one at a time
        try:
            return self.drain.take()
        except Exception as error:  # noqa: BLE001 - the broker's trouble: just this one
            log.warning("results waiting on the queue not taken: %s", error)
            return []

    def _ingest_with(self, first: Any, taken: list[Taken], started: float) -> IngestOutcome:
        """``first`` and the ``taken`` results in one transaction. A taken result that does
        not validate, and all of them when anything fails, go back to the queue (Celery
        delivers each again, alone); a database outage then raises for the retry, anything
        else stores ``first`` alone."""
        assert self.drain is not None
        results = [screening.valid(p) for p in [first, *(t.payload for t in taken)]]
        self.drain.give_back([t for t, r in zip(taken, results[1:], strict=True) if r is None])
        together = [t for t, r in zip(taken, results[1:], strict=True) if r is not None]
        valid = [r for r in results if r is not None]
        afters = [Effects() for _ in valid]
        try:
            if results[0] is None:
                raise ValueError("the result handed over does not validate")
            with session_scope(self.sessions) as session:
                loaded = record.Loaded.read(session, valid)
                outcomes = [
                    self._apply(session, r, e, loaded) for r, e in zip(valid, afters, strict=True)
                ]
        except Exception as error:
            self.drain.give_back(together)
            if is_connection_error(error):
                raise
            outcome = self._ingest(first)
            self._count(outcome, time.perf_counter() - started)
            return outcome
        failpoints.hit(failpoints.INGEST_AFTER_COMMIT)
        for after in _merged(afters):  # one Redis round trip for the final marks of all
            self.apply(after)
        self.drain.ack(together)
        for outcome in outcomes:
            self._count(outcome, (time.perf_counter() - started) / len(outcomes))
        return outcomes[0]

    def _ingest(self, payload: Any) -> IngestOutcome:
        text, problem = screening.measured(payload)
        if problem is not None:
            return self._keep_invalid(payload, text, problem, reason="oversize")
        try:
            result = RunBatchResult.model_validate(payload)
        except ValidationError as error:
            return self._keep_invalid(payload, text, screening.problems(error), reason="invalid")
        after = Effects()
        try:
            with session_scope(self.sessions) as session:
                outcome = self._apply(session, result, after, record.Loaded.read(session, [result]))
        except IntegrityError:
            # A concurrent duplicate won the race on the unique (run, attempt) key.
            return IngestOutcome.DUPLICATE
        failpoints.hit(failpoints.INGEST_AFTER_COMMIT)
        self.apply(after)
        return outcome

    def ingest_launch(self, payloads: list[Any]) -> list[IngestOutcome]:
        """The results of one packed launch, one per run, each ingested and stored on its
        own (idempotent per (run, attempt)); the probe batches they plan (lifts, as each
        single-op probe comes back) are published after the last, packed into shared
        launches (orchestrator/bisect/packing.py)."""
        from orchestrator.bisect.packing import repack

        held = StubPublisher()
        real, self.publisher = self.publisher, held
        try:
            outcomes = [self.ingest(payload) for payload in payloads]
        finally:
            self.publisher = real
        try:
            for batch, countdown in repack(held.sent, settings=self.settings):
                real.batch(batch, countdown=countdown)
        except ServiceError as error:  # the runs are queued: the reaper publishes them
            log.warning("after a packed launch: %s; the reaper re-publishes", error.one_line())
        return outcomes

    def apply(self, effects: Effects) -> None:
        """The side effects of a committed transaction, in Redis and the broker."""
        runs.apply(effects, publisher=self.publisher, client=self.redis,
                   final_ttl_s=runs.final_mark_ttl_s(self.settings.run_timeout_s))  # fmt: skip
        if effects.nights:  # sweep nights that ended: analysed, alerted (never raises)
            self.analyse_nights(effects.nights)

    def analyse_nights(self, job_ids: list[UUID], *, background: bool = True) -> None:
        from orchestrator.alerts.night import analyse_nights

        try:
            live = livestate.live_devices(self.redis)
        except redis.RedisError as error:  # confirmation runs then go to the class queue
            log.warning("live devices unknown (%s): confirmation runs are not pinned", error)
            live = []
        analyse_nights(job_ids, settings=self.settings, sessions=self.sessions, live=live,
                       publish=self._publish, background=background)  # fmt: skip

    def _publish(self, batches: list[RunBatch]) -> None:
        for batch in batches:
            self.publisher.batch(batch)

    # ------------------------------------------------------------------------------
    def _keep_invalid(self, payload: Any, text: str, problem: str, *, reason: str) -> IngestOutcome:
        """Refuse a result: nothing of it reaches the result tables; its first bytes are
        kept in ``raw_results`` for diagnosis, its run fails (a protocol error, infra), and
        the refusal is counted (``rejected``, the metrics) and logged once."""
        run_id, attempt = screening.ids_of(payload)
        message = mask(f"{reason} result: {problem}".replace("\n", " "))
        with session_scope(self.sessions) as session:
            session.add(
                db.RawResult(
                    run_id=run_id if run_id and session.get(db.Run, run_id) else None,
                    attempt=attempt,
                    received_at=datetime.now(UTC),
                    payload=text[: screening.RAW_KEPT_BYTES],
                    error=message,
                )
            )
            run = session.get(db.Run, run_id) if run_id else None
            after = Effects()
            if run is not None and run.status not in FINAL:
                self.lifecycle.finish(session, run, db.RunStatus.FAILED, "protocol", message,
                                      infra=True, effects=after)  # fmt: skip
        self.apply(after)
        self.rejected[reason] += 1
        if self.on_rejected is not None:
            self.on_rejected(reason)
        log.error("%s (run %s, attempt %s)", message, run_id, attempt)
        return IngestOutcome.INVALID

    def _apply(
        self, session: Session, result: RunBatchResult, after: Effects, loaded: record.Loaded
    ) -> IngestOutcome:
        run = loaded.runs.get(result.run_id)  # locked by Loaded.read
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
        key = (run.id, result.attempt)
        if key in loaded.attempts or run.status in FINAL:
            return IngestOutcome.DUPLICATE
        failure = result.failure
        # A Core INSERT (no ORM object, no autoflush): executed now, so the unique
        # (run, attempt) key speaks here, not at commit.
        session.execute(
            record.core_insert(db.RunAttempt),
            {
                "run_id": run.id,
                "attempt": result.attempt,
                "udid": result.device.udid,
                "agent": result.agent,
                "outcome": result.outcome,
                "failure_kind": failure.kind if failure else None,
                "failure_message": failure.message if failure else None,
                "diagnostics": failure.diagnostics if failure else [],
                "started_at": result.started_at,
                "finished_at": result.finished_at,
            },
        )
        loaded.attempts.add(key)
        device = record.touch_device(session, result, loaded)
        run.udid, run.agent = result.device.udid, result.agent
        run.simulated = result.device.simulated
        run.os_version, run.os_build = result.device.os_version, result.device.os_build
        run.started_at = run.started_at or result.started_at
        if result.runner_result is not None:
            run.runner_version = result.runner_result.runner_version
            run.thermal_state = result.thermal_state  # the hotter of before/after (0011)
            record.store_measurements(session, run, result.runner_result)
        lifecycle = self.lifecycle
        if result.outcome is BatchOutcome.OK:
            lifecycle.count_ok(device)
            verdict = self._store_verdict(session, run, result, loaded)
            if run.purpose == RunPurpose.USER:
                after.send_all(on_verdict(session, run, verdict, settings=self.settings))
            lifecycle.finish(session, run, db.RunStatus.SUCCEEDED, None, None, infra=False,
                             effects=after, runner=result.runner_result)  # fmt: skip
            return IngestOutcome.STORED
        assert failure is not None  # guaranteed by RunBatchResult's validator
        if result.outcome is BatchOutcome.MODEL_ERROR:
            lifecycle.count_ok(device)
            lifecycle.finish(session, run, db.RunStatus.FAILED, failure.kind, failure.message,
                             infra=False, effects=after,
                             probe_note=f"{failure.kind}: {failure.message}")  # fmt: skip
            return IngestOutcome.FAILED
        if failure.kind == ABSENT_FROM_FARM:  # not the device's fault; no retry can help
            lifecycle.finish(session, run, db.RunStatus.FAILED, failure.kind, failure.message,
                             infra=True, effects=after)  # fmt: skip
            return IngestOutcome.FAILED
        # Infra failure: count it against the device (once per packed launch), then retry
        # or give up.
        reason = (
            lifecycle.count_infra(device, failure.kind) if result.counts_against_device else None
        )
        if reason is not None:
            after.quarantine = (device.udid, reason)
        retried = lifecycle.retry_or_fail(
            session, run, failure.kind, failure.message, avoid=result.device.udid,
            live=livestate.live_devices(self.redis), effects=after,
            cancelled=livestate.is_cancelled(self.redis, str(run.job_id)),
        )  # fmt: skip
        return IngestOutcome.RETRY if retried else IngestOutcome.FAILED

    def _store_verdict(
        self, session: Session, run: db.Run, result: RunBatchResult, loaded: record.Loaded
    ) -> Verdict:
        runner = result.runner_result
        assert runner is not None
        chip = chip_of(run.device_class)
        lint_key = (run.model_sha256, chip)
        if lint_key not in loaded.lint:  # parsed once per model and chip per transaction
            loaded.lint[lint_key] = stored_lint(session.get(db.Model, run.model_sha256), chip)
        findings = loaded.lint[lint_key]
        verdict = decide(
            runner,
            device_class=run.device_class,
            chip=chip,
            simulated=result.device.simulated,
            lint=findings,
        )
        if record.earlier_attempts(run):
            session.execute(delete(db.Verdict).where(db.Verdict.run_id == run.id))
        session.execute(
            record.core_insert(db.Verdict),
            {
                "run_id": run.id,
                "model_sha256": run.model_sha256,
                "device_class": run.device_class,
                "chip": chip,
                "os_version": verdict.os_version,
                "simulated": verdict.simulated,
                "verdict": verdict.verdict,
                "ane_share": verdict.ane_share,
                "payload": verdict.model_dump(mode="json"),
                "created_at": datetime.now(UTC),
            },
        )
        return verdict


def _merged(afters: list[Effects]) -> list[Effects]:
    """The effects of results stored in one transaction, as few as can be applied together:
    one Effects for all (one Redis pipeline of final marks), but a quarantine — one device
    per Effects — apart. Sweep nights are analysed once each."""
    merged, apart, nights = Effects(), [], set()
    for after in afters:
        after.nights = [night for night in after.nights if night not in nights]
        nights.update(after.nights)
        if after.quarantine is not None:
            apart.append(after)
            continue
        merged.sends += after.sends
        merged.finished += after.finished
        merged.nights += after.nights
    return [merged, *apart]
