"""A real simulated job for the page tests, cheaply and in this process: the real
``dispatch`` writes the job and runs, a stub publisher keeps the batches, each batch runs
on a real simulated device through the agent's real ``execute_all`` (fetch, OS gate,
run, classify; a packed batch of probes is one launch), and the result goes through the real ``Ingestor`` (verdicts, retries,
bisection probes) against a real Redis. No Celery worker, no subprocess: one batch
finishes when the test says so, which is what the live job page test needs.
bench/packed_probes.py's ``PackedFarm`` extends it to count launches and device-seconds."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from sqlalchemy.orm import Session, sessionmaker

from agents.batch import execute_all
from agents.devices.simulated import SimulatedDevice, build_farm
from orchestrator.artifacts.store import ArtifactStore
from orchestrator.dispatch import SubmitOptions, prepare, submit
from orchestrator.ingest import Ingestor
from orchestrator.modelkit.materialize import materialize
from orchestrator.protocol import RunBatch, livestate
from orchestrator.protocol.transport import StubPublisher, create_app
from orchestrator.selection import FarmView
from orchestrator.settings import Settings, load_settings
from orchestrator.store.engine import make_engine, session_factory
from orchestrator.store.migrate import upgrade

# An XR on iOS 16 (no compute plan: non-FULL verdicts are bisected by probes), whose first
# device crashes on its first run (an infra failure retried on the second XR, with a crash
# report in the attempt's diagnostics), and an iPhone 15 Pro on its newest iOS (a plan).
FARM = "iPhone11,8@16.7.8=1!crash@1,iPhone11,8@16.7.8=1,iPhone16,1=1"
CLASSES = "iPhone11,8,iPhone16,1"


@dataclass
class InProcessFarm:
    """SIMULATED devices, dispatch and the Ingestor in this process (module docstring)."""

    settings: Settings
    sessions: sessionmaker[Session]
    ingestor: Ingestor
    publisher: StubPublisher
    devices: list[SimulatedDevice]
    job_id: uuid.UUID | None = None
    done: int = 0  # batches of publisher.sent already run
    engine: Any = None
    outcomes: list[str] = field(default_factory=list)

    @classmethod
    def start(cls, home: Path, redis_url: str, *, farm: str = FARM, **overrides: Any) -> Self:
        """``overrides``: settings (``load_settings`` keywords) on top of no retry backoff."""
        settings = load_settings(home=home, broker_url=redis_url, retry_backoff_s=0.0,
                                 **overrides)  # fmt: skip
        upgrade(settings.resolved_database_url)
        engine = make_engine(settings.resolved_database_url)
        sessions = session_factory(engine)
        publisher = StubPublisher()
        ingestor = Ingestor(settings, sessions=sessions, app=create_app(settings),
                            client=livestate.connect(redis_url), publisher=publisher)  # fmt: skip
        devices = build_farm(farm, seed=7)
        return cls(settings, sessions, ingestor, publisher, devices, engine=engine)

    def submit_job(self, models: list[Path], *, selector: str, iterations: int,
                   bisect: str = "auto") -> str:  # fmt: skip
        """Submit ``models`` to the devices of ``selector`` (the farm's classes), as the CLI
        does; the job's id."""
        classes = {d.identity.product_type for d in self.devices}
        options = SubmitOptions(selector=selector, iterations=iterations, warmup=2, bisect=bisect)
        prepared = prepare(models, options, FarmView.of(classes))
        outcome = submit(prepared, settings=self.settings, sessions=self.sessions,
                         app=self.ingestor.app, publisher=self.publisher)  # fmt: skip
        self.job_id = outcome.job_id
        return str(outcome.job_id)

    def pending(self) -> int:
        return len(self.publisher.sent) - self.done

    def next_batch(self) -> RunBatch | None:
        """The next published batch not run yet (user, retry or probe), now counted as run."""
        if self.done >= len(self.publisher.sent):
            return None
        self.done += 1
        return self.publisher.sent[self.done - 1].batch

    def _device_for(self, batch: RunBatch) -> SimulatedDevice:
        mine = [d for d in self.devices if d.identity.product_type == batch.device_class]
        if batch.pinned_udid:
            mine = [d for d in mine if d.identity.udid == batch.pinned_udid] or mine
        # The first device of the class that has not run this run's earlier attempt.
        return mine[(batch.attempt - 1) % len(mine)]

    def _fetch(self, batch: RunBatch) -> Path:
        store = ArtifactStore(self.settings.resolved_artifact_dir, self.settings.max_model_bytes)
        return materialize(store.path_of(batch.model.sha256), batch.model,
                           self.settings.home / "models")  # fmt: skip

    def close(self) -> None:
        self.ingestor.redis.close()
        for device in self.devices:
            device.close()
        if self.engine is not None:
            self.engine.dispose()


@dataclass
class SimulatedJob(InProcessFarm):
    """A job of the page tests, finished one batch at a time when the test says so."""

    def submit(self, models: list[Path], selector: str = CLASSES, iterations: int = 20) -> str:
        return self.submit_job(models, selector=selector, iterations=iterations)

    def finish_one(self) -> bool:
        """Run the next published batch and ingest its result."""
        batch = self.next_batch()
        if batch is None:
            return False
        # A packed batch (several probe runs of one parent) is one launch, one result per run.
        results = execute_all(batch, self._device_for(batch), agent="sim-agent",
                              fetch_model=self._fetch)  # fmt: skip
        for result in results:
            self.outcomes.append(str(self.ingestor.ingest(result.model_dump(mode="json"))))
        return True

    def finish_all(self, limit: int = 500) -> None:
        for _ in range(limit):
            if not self.finish_one():
                return
        raise AssertionError(f"still batches after {limit}: a retry loop?")
