"""Nights of a sweep written straight into the database, as ingest would leave them (job
done, runs succeeded with their measurements, verdicts and compute-plan placements), so
the night analysis can be driven night by night without a farm. The acceptance test
(test_acceptance.py) runs the real pipeline instead."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import select

from orchestrator.alerts.night import NightOutcome, analyse_night
from orchestrator.settings import Settings, load_settings
from orchestrator.store import models as db
from orchestrator.store.engine import session_scope
from orchestrator.sweeps.definition import SweepDefinition

FIRST = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
CLASSES = ("iPhone13,2", "iPhone15,2")
SERIES = ("detector", "segmenter", "tagger")


def udid(cls: str, n: int) -> str:
    return f"SIM-{cls.replace(',', '-')}-{n}"


@dataclass(frozen=True)
class Live:
    """A live device as livestate.DeviceStatus reads for picking a confirmation device."""

    udid: str
    product_type: str
    state: str = "ready"
    os_version: str = "17.4"


@dataclass
class Point:
    """One (series, class) on one night."""

    median: float = 10.0
    sha: str = "a"
    os_version: str = "17.4"
    os_build: str = "21E219"
    udid: str | None = None
    dilated_unit: str = "neuralEngine"
    failed: str | None = None  # a model failure message
    within: float = 0.02


@dataclass
class Sweep:
    sessions: Any
    settings: Settings
    sweep_id: uuid.UUID
    name: str = "nightly"
    nights: list[uuid.UUID] = field(default_factory=list)
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(3))
    points: dict[uuid.UUID, Any] = field(default_factory=dict)

    def add_night(self, point: Callable[[str, str], Point], *, noise: float = 0.01) -> uuid.UUID:
        """A finished night: ``point(series, class)`` says what each run measured."""
        when = FIRST + timedelta(days=len(self.nights))
        now = datetime.now(UTC)
        with session_scope(self.sessions) as session:
            job = db.Job(
                id=uuid.uuid4(), created_at=now, status=db.JobStatus.DONE, selector="chip>=A14",
                spec={"compute_units": ["all"]}, sweep_id=self.sweep_id, scheduled_for=when,
                started_at=now,
            )  # fmt: skip
            session.add(job)
            session.flush()
            for series in SERIES:
                for cls in CLASSES:
                    p = point(series, cls)
                    sha = hashlib.sha256(f"{series}/{p.sha}".encode()).hexdigest()
                    self._model(session, sha)
                    median = p.median * float(self.rng.lognormal(0.0, noise))
                    add_run(session, job.id, series, cls, sha, p, median, self.rng)
            self.nights.append(job.id)
            self.points[job.id] = (point, noise)
            return job.id

    @staticmethod
    def _model(session: Any, sha: str) -> None:
        if session.get(db.Model, sha) is not None:
            return
        session.add(db.Model(sha256=sha, filename="m.mlpackage", format="mlpackage",
                             size_bytes=1, created_at=datetime.now(UTC)))  # fmt: skip
        session.flush()
        for index, (name, kind, params) in enumerate(
            (("conv_0", "conv", {"dilations": [1, 1]}), ("conv_1", "conv", {"dilations": [4, 4]}))
        ):
            session.add(db.ModelOp(model_sha256=sha, index=index, name=name, op_type="conv",
                                   kind=kind, params=params, input_shapes=[], output_shapes=[]))  # fmt: skip

    def analyse(
        self, job_id: uuid.UUID | None = None, live: Any = (), *, confirm: bool = True
    ) -> NightOutcome:
        """The coordinator's analysis of the night; with ``confirm``, confirmation runs it
        asks for end as ingest would end them (same point, fresh noise) and the night is
        analysed again, as after the real runs."""
        job_id = job_id or self.nights[-1]
        outcome = analyse_night(job_id, settings=self.settings, sessions=self.sessions,
                                live=live)  # fmt: skip
        while confirm and outcome.state == "confirming":
            self.finish_confirmations(job_id, outcome.confirmations)
            outcome = analyse_night(job_id, settings=self.settings, sessions=self.sessions,
                                    live=live)  # fmt: skip
        return outcome

    def finish_confirmations(self, job_id: uuid.UUID, run_ids: list[uuid.UUID]) -> None:
        point, noise = self.points[job_id]
        with session_scope(self.sessions) as session:
            for run_id in run_ids:
                run = session.get(db.Run, run_id)
                assert run is not None
                p = point(run.series, run.device_class)
                run.status = db.RunStatus.FAILED if p.failed else db.RunStatus.SUCCEEDED
                run.udid, run.simulated = run.pinned_udid or udid(run.device_class, 1), True
                run.os_version, run.os_build, run.runner_version = p.os_version, p.os_build, "1.0"
                median = p.median * float(self.rng.lognormal(0.0, noise))
                measure(session, run, p, median, self.rng)
            job = session.get(db.Job, job_id)
            assert job is not None
            job.status = db.JobStatus.DONE


def add_run(
    session: Any, job_id: uuid.UUID, series: str, cls: str, sha: str, p: Point, median: float,
    rng: np.random.Generator, *, parent: uuid.UUID | None = None,
) -> db.Run:  # fmt: skip
    now = datetime.now(UTC)
    run = db.Run(
        id=uuid.uuid4(), job_id=job_id, model_sha256=sha, device_class=cls,
        status=db.RunStatus.FAILED if p.failed else db.RunStatus.SUCCEEDED,
        error_kind="compile" if p.failed else None, error_message=p.failed,
        udid=p.udid or udid(cls, 0), agent="a", simulated=True, os_version=p.os_version,
        os_build=p.os_build, created_at=now, finished_at=now, purpose="user", series=series,
        runner_version="1.0", parent_run_id=parent,
    )  # fmt: skip
    session.add(run)
    session.flush()
    return measure(session, run, p, median, rng)


def measure(session: Any, run: db.Run, p: Point, median: float, rng: np.random.Generator) -> db.Run:
    """What ingest stores for a finished run: measurements, verdict, placements."""
    now = datetime.now(UTC)
    cls, sha = run.device_class, run.model_sha256
    if p.failed:
        return run
    draws = median * rng.lognormal(0.0, p.within, 30)
    draws *= median / float(np.median(draws))
    session.add(db.Measurement(run_id=run.id, compute_units="all", samples_ms=draws.tolist(),
                               count=30, p50=median, cold_load_ms=100.0, warm_load_ms=20.0))  # fmt: skip
    session.add(db.Verdict(run_id=run.id, model_sha256=sha, device_class=cls, chip="A",
                           os_version=p.os_version, simulated=True,
                           verdict="FULL" if p.dilated_unit == "neuralEngine" else "PARTIAL",
                           payload={}, created_at=now))  # fmt: skip
    for index, (name, unit) in enumerate((("conv_0", "neuralEngine"), ("conv_1", p.dilated_unit))):
        session.add(db.OpPlacement(run_id=run.id, source="plan", index=index, name=name,
                                   op_type="conv", preferred=unit, supported=[unit]))  # fmt: skip
    return run


def make_sweep(sessions: Any, tmp_path: Any, notify: list[dict[str, Any]] | None = None,
               name: str = "nightly", regress: dict[str, Any] | None = None) -> Sweep:  # fmt: skip
    definition = SweepDefinition.model_validate({
        "name": name, "schedule": "0 2 * * *", "models": [{"path": "models/*.mlpackage"}],
        "devices": "chip>=A14", "compute_units": ["all"], "notify": notify or [],
        **({"regress": regress} if regress else {}),
    })  # fmt: skip
    now = datetime.now(UTC)
    with session_scope(sessions) as session:
        row = db.Sweep(name=name, definition=definition.model_dump(mode="json"),
                       schedule=definition.schedule, timezone="UTC", created_at=now,
                       updated_at=now)  # fmt: skip
        session.add(row)
        session.flush()
        sweep_id = row.id
    settings = load_settings(home=tmp_path / "home", notify_backoff_s=0.01, notify_timeout_s=2.0)
    return Sweep(sessions, settings, sweep_id, name)


def alerted(sessions: Any, home: Any, *, slow_median: float) -> Sweep:
    """A sweep of 7 quiet nights, then one on which the second class runs at
    ``slow_median`` ms and the tagger stops compiling: a regression and a failure to
    triage (the CLI's and the HTTP API's alerts tests)."""
    sweep = make_sweep(sessions, home)
    for _ in range(7):
        sweep.add_night(lambda s, c: Point())
        sweep.analyse()
    sweep.add_night(lambda s, c: Point(median=slow_median) if c == CLASSES[1] else
                    Point(failed="compile failed" if s == "tagger" else None))  # fmt: skip
    assert sweep.analyse().state == "analysed"
    return sweep


def summaries(sessions: Any) -> list[db.AlertSummary]:
    with sessions() as session:
        return list(session.scalars(select(db.AlertSummary).order_by(db.AlertSummary.id)))


def checks(sessions: Any, job_id: uuid.UUID) -> list[db.CheckResult]:
    with sessions() as session:
        return list(session.scalars(select(db.CheckResult).where(db.CheckResult.job_id == job_id)))
