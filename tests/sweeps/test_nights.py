"""A sweep's night as a job, on SQLite and PostgreSQL with no broker (the batches go to a
StubPublisher): the job's night columns, runs with their series, one night per scheduled
time, missing records with reasons, and each sha256 inspected once."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from orchestrator.protocol.transport import StubPublisher
from orchestrator.selection import FarmView
from orchestrator.settings import load_settings
from orchestrator.store import models as db
from orchestrator.store.engine import session_scope
from orchestrator.sweeps import nights as nights_module
from orchestrator.sweeps.nights import NightExists, start_night
from orchestrator.sweeps.store import add_file

XR, IPHONE12, IPHONE15PRO = "iPhone11,8", "iPhone13,2", "iPhone16,1"
OLD_PHONE = "iPhone10,1"  # an A11 phone: below the ANE generations anefarm profiles
NIGHT1 = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)  # 02:00 in Berlin
MODELS = ("conv10x10.mlpackage", "conv10x10_dilated4.mlpackage", "mobilenetv2_block.mlpackage")


def write_sweep(folder: Path, samples: dict[str, Path], **extra: str) -> Path:
    (folder / "models").mkdir(parents=True, exist_ok=True)
    for name in MODELS:
        shutil.copytree(samples[name], folder / "models" / name)
    path = folder / "sweep.yaml"
    lines = {
        "name": "vision-nightly",
        "schedule": '"0 2 * * *"',
        "timezone": "Europe/Berlin",
        "devices": '"chip>=A12"',  # the classes of those chips the farm has
        "compute_units": "[all, cpuOnly]",
        "iterations": "5",
        **extra,
    }
    body = "\n".join(f"{k}: {v}" for k, v in lines.items())
    path.write_text(body + "\nmodels:\n  - path: models/*.mlpackage\n", encoding="utf-8")
    return path


@pytest.fixture
def night_env(tmp_path: Path, sessions: Any, samples: dict[str, Path]) -> dict[str, Any]:
    settings = load_settings(home=tmp_path / "home", database_url="sqlite://", broker_url=None)
    path = write_sweep(tmp_path / "sweep", samples)
    with session_scope(sessions) as session:
        add_file(session, path)
    return {"settings": settings, "sessions": sessions, "path": path}


def _start(env: dict[str, Any], when: datetime, farm: FarmView, **kw: Any) -> Any:
    publisher = StubPublisher()
    job = start_night(settings=env["settings"], sessions=env["sessions"], app=None,
                      sweep_name="vision-nightly", scheduled_for=when, publisher=publisher,
                      farm=farm, **kw)  # fmt: skip
    return job, publisher


def test_a_night_is_a_job_with_its_runs_series_and_batches(night_env):
    farm = FarmView.of({XR, IPHONE12})
    job_id, publisher = _start(night_env, NIGHT1, farm, trigger="schedule", late=True)
    with night_env["sessions"]() as session:
        job = session.get(db.Job, job_id)
        assert job.sweep_id is not None and job.trigger is db.NightTrigger.SCHEDULE
        assert job.late is True and job.started_at is not None
        assert job.scheduled_for.replace(tzinfo=UTC) == NIGHT1
        runs = session.scalars(select(db.Run).where(db.Run.job_id == job_id)).all()
        missing = session.scalars(select(db.SweepMissing)).all()
    assert sorted((r.series, r.device_class) for r in runs) == sorted(
        (m.removesuffix(".mlpackage"), c) for m in MODELS for c in (XR, IPHONE12)
    )
    assert missing == []
    assert len(publisher.sent) == 6
    # The simulated farm follows its timeline by the night's date in the sweep's timezone.
    assert {s.batch.spec.night for s in publisher.sent} == {date(2026, 11, 25)}
    assert {tuple(s.batch.spec.compute_units) for s in publisher.sent} == {("all", "cpuOnly")}


def test_one_night_per_scheduled_time(night_env):
    farm = FarmView.of({XR, IPHONE12})
    first, _ = _start(night_env, NIGHT1, farm)
    with pytest.raises(NightExists) as raised:
        _start(night_env, NIGHT1, farm)
    assert raised.value.job_id == first
    with night_env["sessions"]() as session:
        assert len(session.scalars(select(db.Job)).all()) == 1


def test_the_unique_key_is_the_last_guard(night_env, monkeypatch):
    # Two coordinators both pass the check before either commits: the index refuses one.
    farm = FarmView.of({XR, IPHONE12})
    _start(night_env, NIGHT1, farm)
    monkeypatch.setattr(nights_module, "existing_night", _none_first(nights_module.existing_night))
    with pytest.raises(NightExists):
        _start(night_env, NIGHT1, farm)
    with night_env["sessions"]() as session:
        assert len(session.scalars(select(db.Job)).all()) == 1
        assert len(session.scalars(select(db.Run)).all()) == 6


def _none_first(real: Any) -> Any:
    calls = {"n": 0}

    def lookup(*args: Any) -> Any:
        calls["n"] += 1
        return None if calls["n"] == 1 else real(*args)

    return lookup


def test_missing_series_and_classes_are_records_with_reasons(night_env):
    _start(night_env, NIGHT1, FarmView.of({XR, IPHONE12}))
    # Night 2: a model file is gone and the farm has no live iPhone 12 any more.
    shutil.rmtree(night_env["path"].parent / "models" / "conv10x10.mlpackage")
    job2, publisher = _start(night_env, NIGHT1 + timedelta(days=1), FarmView.of({XR}))
    with night_env["sessions"]() as session:
        runs = session.scalars(select(db.Run).where(db.Run.job_id == job2)).all()
        records = session.scalars(select(db.SweepMissing).where(db.SweepMissing.job_id == job2))
        missing = {(m.series, m.device_class): (m.kind, m.reason) for m in records}
    assert sorted((r.series, r.device_class) for r in runs) == [
        ("conv10x10_dilated4", XR), ("mobilenetv2_block", XR),
    ]  # fmt: skip
    assert len(publisher.sent) == 2
    assert set(missing) == {
        ("conv10x10", XR), ("conv10x10", IPHONE12),
        ("conv10x10_dilated4", IPHONE12), ("mobilenetv2_block", IPHONE12),
    }  # fmt: skip
    kind, reason = missing[("conv10x10", XR)]
    assert kind is db.MissingKind.MODEL_MISSING and "conv10x10" in reason
    kind, reason = missing[("mobilenetv2_block", IPHONE12)]
    assert kind is db.MissingKind.DEVICE_CLASS_ABSENT and IPHONE12 in reason


def test_a_night_with_nothing_to_run_is_done_at_once_with_its_reasons(night_env):
    job, publisher = _start(night_env, NIGHT1, FarmView.of({OLD_PHONE}))
    with night_env["sessions"]() as session:
        assert session.get(db.Job, job).status is db.JobStatus.DONE
        records = session.scalars(select(db.SweepMissing)).all()
    assert publisher.sent == []
    assert {r.series for r in records} == {m.removesuffix(".mlpackage") for m in MODELS}
    assert all(r.kind is db.MissingKind.DEVICE_CLASS_ABSENT for r in records)
    assert all("no device of the farm matches" in r.reason for r in records)


def test_a_known_sha256_is_not_inspected_again(night_env, monkeypatch):
    from orchestrator import modelkit

    farm = FarmView.of({XR, IPHONE12})
    _start(night_env, NIGHT1, farm)
    calls: list[Path] = []
    real = modelkit.inspect_model
    monkeypatch.setattr(modelkit, "inspect_model", lambda p: calls.append(p) or real(p))
    _start(night_env, NIGHT1 + timedelta(days=1), farm)
    assert calls == []
    # A chip not linted before is linted from the stored inventory, still not inspected.
    _start(
        night_env,
        NIGHT1 + timedelta(days=2),
        FarmView.of({XR, IPHONE12, IPHONE15PRO}),
    )
    assert calls == []
    with night_env["sessions"]() as session:
        chips = {tuple(m.inspect_json["linted_chips"]) for m in session.scalars(select(db.Model))}
    assert chips == {("A12", "A14", "A17 Pro")}


def test_a_gone_series_is_a_hole_for_the_recent_nights_then_ends(night_env, monkeypatch):
    from orchestrator.sweeps import missing

    monkeypatch.setattr(missing, "RECENT_NIGHTS", 2)
    farm = FarmView.of({XR})
    _start(night_env, NIGHT1, farm)
    shutil.rmtree(night_env["path"].parent / "models" / "conv10x10.mlpackage")
    holes = []
    for day in (1, 2, 3):
        job, _ = _start(night_env, NIGHT1 + timedelta(days=day), farm)
        with night_env["sessions"]() as session:
            query = select(db.SweepMissing.series).where(db.SweepMissing.job_id == job)
            holes.append(sorted(session.scalars(query)))
    # It ran on night 1: a hole on the next two nights (within RECENT_NIGHTS), then it ends.
    assert holes == [["conv10x10"], ["conv10x10"], []]
