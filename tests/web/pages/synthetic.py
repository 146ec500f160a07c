"""Rows written straight into the database for what a simulated job cannot make cheaply:
a sweep with many nights (its runs, medians, the night's latency checks, an alert raised on
a regression night), and a job of 200 models × 12 device classes. Every row is marked
SIMULATED unless asked otherwise. The page tests use small ones, ``bench/dashboard.py``
big ones."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from orchestrator.store import models as db

CLASSES = ("iPhone11,8", "iPhone11,2", "iPad8,1", "iPhone12,1", "iPhone13,2", "iPhone14,2",
           "iPhone14,5", "iPhone15,2", "iPhone15,4", "iPhone16,1", "iPhone17,1", "iPad13,4")  # fmt: skip
START = datetime(2026, 1, 1, 2, 0, tzinfo=UTC)
VERDICTS = ("FULL", "FULL", "PARTIAL", "NONE", "FULL", "INCONCLUSIVE")


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def model(session: Session, name: str) -> str:
    digest = sha(name)
    if session.get(db.Model, digest) is None:
        session.add(db.Model(sha256=digest, filename=name, format="mlpackage", size_bytes=1000,
                             created_at=START))  # fmt: skip
    return digest


def _verdict(run: db.Run, kind: str, share: float | None) -> db.Verdict:
    return db.Verdict(
        run_id=run.id, model_sha256=run.model_sha256, device_class=run.device_class,
        chip="A12", os_version=run.os_version or "17.5", simulated=bool(run.simulated),
        verdict=kind, ane_share=share,
        payload={"verdict": kind, "ane_share": share, "reasons": [f"synthetic {kind}"],
                 "ops_off_ane": [] if kind == "FULL" else [
                     {"name": "conv_1", "type": "conv", "unit": "gpu", "reason": "dilated",
                      "fix": "undilate", "source": "plan"}]},
        created_at=START,
    )  # fmt: skip


def big_job(session: Session, models: int = 200, classes: int = 12) -> uuid.UUID:
    """A finished job: ``models`` × ``classes`` succeeded runs, each with a verdict."""
    job = db.Job(id=uuid.uuid4(), created_at=START, status=db.JobStatus.DONE, selector="all",
                 spec={"compute_units": ["all"]})  # fmt: skip
    session.add(job)
    session.flush()
    for m in range(models):
        digest = model(session, f"model_{m:03d}.mlpackage")
        for c, device_class in enumerate(CLASSES[:classes]):
            run = db.Run(id=uuid.uuid4(), job_id=job.id, model_sha256=digest,
                         device_class=device_class, status=db.RunStatus.SUCCEEDED,
                         simulated=True, os_version="17.5", created_at=START, purpose="user")  # fmt: skip
            session.add(run)
            session.flush()
            kind = VERDICTS[(m + c) % len(VERDICTS)]
            session.add(_verdict(run, kind, 0.6 if kind == "PARTIAL" else None))
    session.commit()
    return job.id


@dataclass
class SweepRows:
    sweep: db.Sweep
    nights: list[uuid.UUID]
    alert_id: int | None


def sweep(
    session: Session,
    name: str = "nightly",
    *,
    nights: int = 10,
    series: tuple[str, ...] = ("conv", "lstm"),
    classes: tuple[str, ...] = ("iPhone11,8", "iPhone16,1"),
    simulated: bool = True,
    regression_from: int | None = 7,
    os_upgrade_at: int | None = 7,
    start: datetime = START,
) -> SweepRows:
    """A sweep with one night per day: every series on every class measured under `all`,
    each night's latency check against a 1.0 ms baseline, and from ``regression_from`` on
    the first series 40 % slower, raised as one untriaged alert (the iOS upgrade at
    ``os_upgrade_at`` is what changed)."""
    definition = {"name": name, "schedule": "0 2 * * *", "timezone": "UTC",
                  "models": [{"path": f"{s}.mlpackage", "name": s} for s in series],
                  "devices": ",".join(classes), "compute_units": ["all"]}  # fmt: skip
    row = db.Sweep(id=uuid.uuid4(), name=name, definition=definition, schedule="0 2 * * *",
                   timezone="UTC", created_at=start, updated_at=start)  # fmt: skip
    session.add(row)
    session.flush()  # rows have no relationships: write parents before their children
    job_ids: list[uuid.UUID] = []
    alert: db.AlertSummary | None = None
    for night in range(nights):
        when = start + timedelta(days=night)
        job = db.Job(id=uuid.uuid4(), created_at=when, status=db.JobStatus.DONE, selector="sweep",
                     spec={"compute_units": ["all"]}, sweep_id=row.id, scheduled_for=when,
                     started_at=when, trigger=db.NightTrigger.SCHEDULE)  # fmt: skip
        session.add(job)
        session.flush()
        job_ids.append(job.id)
        upgraded = os_upgrade_at is not None and night >= os_upgrade_at
        for s_index, name_of in enumerate(series):
            digest = model(session, f"{name_of}.mlpackage")
            for device_class in classes:
                slow = regression_from is not None and night >= regression_from and s_index == 0
                p50 = (1.4 if slow else 1.0) * (1 + 0.01 * ((night * 7 + s_index) % 5))
                run = db.Run(id=uuid.uuid4(), job_id=job.id, model_sha256=digest,
                             device_class=device_class, status=db.RunStatus.SUCCEEDED,
                             simulated=simulated, os_version="18.2" if upgraded else "18.1",
                             os_build="22C152sim" if upgraded else "22B83sim",
                             runner_version="sim-1", udid=f"SIM-{device_class}-0",
                             created_at=when, finished_at=when, purpose="user", series=name_of)  # fmt: skip
                session.add(run)
                session.flush()
                session.add(db.Measurement(run_id=run.id, compute_units="all", count=3, p50=p50,
                                           p90=p50 * 1.1, samples_ms=[p50, p50, p50 * 1.1]))  # fmt: skip
                session.add(_verdict(run, "FULL" if not slow else "PARTIAL", 0.7 if slow else None))
                status = "REGRESSION" if slow else "SAME"
                session.add(db.CheckResult(
                    sweep_id=row.id, job_id=job.id, series=name_of, device_class=device_class,
                    compute_units="all", simulated=simulated, check="latency", status=status,
                    message=f"p50 {p50:.2f} ms vs 1.00 ms", created_at=when,
                    detail={"value": p50, "baseline": 1.0, "gate": 0.1, "change": p50 - 1.0},
                ))  # fmt: skip
                if slow and night == regression_from:
                    if alert is None:
                        alert = db.AlertSummary(
                            sweep_id=row.id, job_id=job.id, last_job_id=job.id,
                            cause_key=f"os:{name_of}", cause=f"iOS 18.2 (22C152sim): {name_of} 40 % slower",
                            kind="regression", status=db.AlertStatus.UNTRIAGED, simulated=simulated,
                            worst=0.4, created_at=when, updated_at=when,
                        )  # fmt: skip
                        session.add(alert)
                        session.flush()
                    session.add(db.AlertFinding(
                        summary_id=alert.id, job_id=job.id, series=name_of,
                        device_class=device_class, compute_units="all", simulated=simulated,
                        check="latency", status="REGRESSION", magnitude=0.4,
                        message=f"{name_of} p50 +40 %", created_at=when,
                    ))  # fmt: skip
    session.commit()
    return SweepRows(row, job_ids, alert.id if alert else None)
