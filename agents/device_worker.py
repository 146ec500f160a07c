"""A device worker's work, shared by its two processes.

The Celery parent (``agents/worker.py``) publishes the device's state and checks its
readiness from a heartbeat thread; the pool child (``agents/batch_task.py``) runs the
batches. On macOS the child is *spawned*: a fresh interpreter that inherits nothing but
the environment, so everything it needs is rebuilt from a :class:`WorkerSpec` passed there.
Only the child opens tunnels and developer services (one owner per device connection).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from celery import Celery

from agents.batch import execute_all, unexpected_failure
from agents.device_lock import device_lock
from agents.devices.base import Device
from agents.fetch import ArtifactFetcher, Prefetcher
from orchestrator.errors import AnefarmError, ProtocolError
from orchestrator.modelkit.materialize import materialize
from orchestrator.protocol import BatchOutcome, ModelRef, RunBatch, RunBatchResult, livestate
from orchestrator.protocol.transport import (
    INGEST_LAUNCH_TASK,
    INGEST_RESULT_TASK,
    RESULTS_QUEUE,
    device_class_queue,
    device_queue,
    next_batches,
    publish_batch,
)
from orchestrator.settings import Settings, load_settings

SPEC_ENV = "ANEFARM_WORKER_SPEC"


@dataclass(frozen=True)
class WorkerSpec:
    """Which device a worker drives, as its command line said (and its child must know)."""

    udid: str
    agent: str
    farm: str | None = None
    seed: int = 0
    time_mode: str = "instant"
    speed: float = 1.0

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> WorkerSpec | None:
        raw = os.environ.get(SPEC_ENV)
        return cls(**json.loads(raw)) if raw else None


def open_device(spec: WorkerSpec, settings: Settings | None = None) -> Device:
    if spec.farm:
        from agents.devices.simulated import build_farm

        farm = build_farm(spec.farm, seed=spec.seed, time_mode=spec.time_mode, speed=spec.speed,
                          agent=spec.agent)  # fmt: skip
        for candidate in farm:
            if candidate.identity.udid == spec.udid:
                return candidate
        raise AnefarmError(f"device {spec.udid} is not in the simulated farm {spec.farm!r}")
    from agents.devices.ios import IOSDevice

    return IOSDevice.from_settings(spec.udid, settings or load_settings())


log = logging.getLogger("anefarm.worker")
# Failures a restart may cure. Not: a detached device (nothing to restart), not ready
# (a person must act), artifact or service trouble (not the device's).
REBOOT_KINDS = frozenset({"runner_crash", "runner_timeout", "protocol", "device"})


class DeviceWorker:
    """Glue between Celery, live state in Redis and one Device."""

    def __init__(self, settings: Settings, device: Device, *, agent: str, broker_url: str):
        self.settings = settings
        self.device = device
        self.agent = agent
        self.identity = device.identity
        self.broker_url = broker_url
        self._redis: Any = None
        self._redis_pid = 0
        self.fetcher = ArtifactFetcher(
            settings.resolved_agent_cache_dir / "blobs",
            base_url=settings.artifact_url,
            token=settings.artifact_token,
        )
        self.models_dir = settings.resolved_agent_cache_dir / "models"
        self.prefetcher = Prefetcher()  # the next batches' models, while one runs
        self.state = livestate.DeviceState.READY
        self.reasons: list[str] = []
        self.current_run: str | None = None
        self.lock = device_lock(settings.resolved_agent_cache_dir, device.identity.udid)
        self.infra_in_row = 0  # device-side infra failures in a row (this process)
        self._stop = threading.Event()

    @property
    def redis(self) -> Any:
        # One client per process: the batch runs in a forked pool child, which must not
        # share the parent's sockets.
        if self._redis is None or self._redis_pid != os.getpid():
            self._redis, self._redis_pid = livestate.connect(self.broker_url), os.getpid()
        return self._redis

    # live state -----------------------------------------------------------------
    def publish_state(self) -> None:
        # The heartbeat starts with the device's identity, field for field (flat JSON).
        status = livestate.DeviceStatus(
            **asdict(self.identity),
            agent=self.agent,
            state=self.state,
            reasons=self.reasons,
            current_run=self.current_run,
            pid=os.getpid(),
        )
        livestate.put_device(self.redis, status, ttl_s=self.settings.heartbeat_ttl_s)

    def heartbeat_forever(self) -> None:
        interval = max(1.0, self.settings.heartbeat_ttl_s / 3)
        while not self._stop.wait(interval):
            try:
                if livestate.is_quarantined(self.redis, self.identity.udid):
                    # Quarantined by the coordinator: stop consuming (warm shutdown);
                    # the supervisor will not restart us until a person releases it.
                    self.state = livestate.DeviceState.QUARANTINED
                    self.publish_state()
                    os.kill(os.getpid(), signal.SIGTERM)
                    return
                self.check_readiness()
                self.publish_state()
            except Exception:
                log.exception("heartbeat failed")

    def check_readiness(self) -> None:
        """The heartbeat's look at the device: lockdown-level only (pairing, Developer Mode,
        runner version, battery), never a tunnel or an install, and never while the batch
        process holds the device; a busy device keeps its last answer."""
        if self.state is livestate.DeviceState.QUARANTINED:
            return
        with self.lock.try_hold() as free:
            if not free:
                return
            readiness = self.device.readiness(deep=False)
        self.reasons = readiness.reasons
        self.state = (
            livestate.DeviceState.READY if readiness.ready else livestate.DeviceState.NOT_READY
        )

    # the task ----------------------------------------------------------------------
    def handle(self, app: Celery, payload: dict[str, Any]) -> None:
        try:
            batch = RunBatch.model_validate(payload)
        except ValueError as error:
            # Nothing to retry: report loudly and drop (the coordinator never sent this).
            log.error("%s", ProtocolError(f"invalid RunBatch dropped: {error}").one_line())
            return
        udid = self.identity.udid
        ttl = int(batch.spec.timeout_s) + 60
        # Cancelled, quarantined, superseded: one round trip for all of it.
        gate = livestate.batch_gate(
            self.redis, job_id=str(batch.job_id), udid=udid,
            runs=[(str(m.run_id), m.attempt) for m in batch.members()],
        )  # fmt: skip
        if gate.cancelled:
            log.info("run %s skipped: job cancelled", batch.run_id)
            return
        if gate.quarantined:
            # Hand the work back to the class and stop consuming: a quarantined
            # device takes no more work until a person releases it. Same priority (a probe
            # stays behind user work), same task id (the reaper sees it is not lost).
            publish_batch(app, batch, to_class=True)
            # The batch runs in the pool child: stop the parent, which stops consuming.
            os.kill(os.getppid(), signal.SIGTERM)
            return
        if batch.packed is not None:
            # A packed batch runs the runs of it that still need a result (the others were
            # re-published alone, or finished, meanwhile).
            members = [m for m in batch.members()
                       if (str(m.run_id), m.attempt) not in gate.superseded]  # fmt: skip
            if not members:
                log.info("packed batch %s skipped: every run superseded", batch.batch_id)
                return
            batch = RunBatch.pack(members)
        elif gate.superseded:
            # The coordinator gave this attempt up (its worker died) and retried the run:
            # this is the old delivery, handed out again by Redis after its timeout.
            log.info("run %s attempt %d skipped: superseded", batch.run_id, batch.attempt)
            return
        packed = [(str(m.run_id), m.attempt) for m in batch.members()[1:]]
        livestate.set_busy(self.redis, udid, run_id=str(batch.run_id), pid=os.getpid(),
                           ttl_s=ttl, attempt=batch.attempt, worker_pid=os.getppid(),
                           packed=packed)  # fmt: skip
        if not self.has_model(batch.model):
            # New models are coming: fetch the next batches' while this one runs. (With
            # every model cached the read of the queues would cost CPU for nothing.)
            self.prefetcher.start(self.prefetch_next)
        with self.lock.hold():  # the heartbeat leaves the device alone meanwhile
            started = datetime.now(UTC)
            try:
                results = execute_all(
                    batch, self.device, agent=self.agent, fetch_model=self.fetch_model
                )
            except Exception as error:  # execute reports everything; this is the last resort
                log.exception("batch %s: execute raised", batch.batch_id)
                results = [unexpected_failure(m, self.device, agent=self.agent, error=error,
                                              started=started) for m in batch.members()]  # fmt: skip
            finally:
                self._clear_busy()
            # Whatever happened, the coordinator hears of it: an attempt that ends without a
            # result would leave its run queued for ever once Celery acknowledges the message.
            if len(results) == 1:
                app.send_task(
                    INGEST_RESULT_TASK,
                    args=[results[0].model_dump(mode="json")],
                    queue=RESULTS_QUEUE,
                )
            else:  # a packed launch: one message, one result per run (lifts then pack)
                launch = {"results": [r.model_dump(mode="json") for r in results]}
                app.send_task(INGEST_LAUNCH_TASK, args=[launch], queue=RESULTS_QUEUE)
            # A launch counts once towards a restart (its first run speaks for it).
            if self.after_batch(results[0]):
                # Still inside the task: this device takes no work until the restart is over.
                livestate.set_busy(self.redis, udid, run_id="reboot", pid=os.getpid(), ttl_s=ttl)
                try:
                    self.reboot()
                finally:
                    self._clear_busy()

    def _clear_busy(self) -> None:
        try:
            livestate.clear_busy(self.redis, self.identity.udid)
        except Exception:
            # The mark expires with its TTL; losing the result over it would be worse.
            log.exception("%s: cannot clear the busy mark", self.identity.udid)

    def after_batch(self, result: RunBatchResult) -> bool:
        """Count device-side infra failures in a row; True when the device needs a restart."""
        failure = result.failure
        if result.outcome is BatchOutcome.INFRA_ERROR and failure and failure.kind in REBOOT_KINDS:
            self.infra_in_row += 1
        elif result.outcome is not BatchOutcome.INFRA_ERROR:
            self.infra_in_row = 0
        if self.settings.reboot_after and self.infra_in_row >= self.settings.reboot_after:
            self.infra_in_row = 0
            return True
        return False

    def reboot(self) -> None:
        udid = self.identity.udid
        log.warning("%s: restarting after repeated infra failures", udid)
        try:
            self.device.reboot()
        except AnefarmError as error:
            # The coordinator quarantines the device if it keeps failing.
            log.warning("%s: restart failed: %s", udid, error.one_line())
        except Exception:
            log.exception("%s: restart failed unexpectedly", udid)

    def has_model(self, ref: ModelRef) -> bool:
        return (self.models_dir / ref.sha256 / ref.filename).exists()

    def prefetch_next(self) -> None:
        """Fetch and materialise the models of the batches this device's queues hand out
        next (run in the background while a batch runs: the read of the queues too)."""
        queues = [device_queue(self.identity.udid),
                  device_class_queue(self.identity.product_type)]  # fmt: skip
        for batch in next_batches(self.redis, queues):
            if not self.has_model(batch.model):
                self.fetch_model(batch)

    def fetch_model(self, batch: RunBatch) -> Path:
        blob = self.fetcher.fetch(batch.model)
        return materialize(blob, batch.model, self.models_dir)

    def stop(self) -> None:
        self._stop.set()
