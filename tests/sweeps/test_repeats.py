"""Runs per night (a sweep's ``repeats:``): the definition field and its one-line error,
a night expanded into N runs per series on distinct devices of the class (SQLite and
PostgreSQL, batches to a StubPublisher), and a SIMULATED night end to end whose analysis
reads the N runs as one point."""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from orchestrator.alerts.inputs import histories, night_runs
from orchestrator.protocol import livestate
from orchestrator.protocol.transport import StubPublisher, device_class_queue, device_queue
from orchestrator.regress import PointStatus
from orchestrator.selection import FarmView
from orchestrator.settings import load_settings
from orchestrator.store import models as db
from orchestrator.store.engine import session_scope
from orchestrator.sweeps.definition import InvalidSweep, parse
from orchestrator.sweeps.nights import load_sweep, start_night
from orchestrator.sweeps.store import add_file
from tests.pipeline.farm import Farm
from tests.services.common import provides
from tests.sweeps.test_definition_cli import anefarm
from tests.sweeps.test_nights import IPHONE12, MODELS, NIGHT1, XR, write_sweep

BASE = {"name": "s", "schedule": "0 2 * * *", "models": [{"path": "m.mlpackage"}],
        "devices": "A12"}  # fmt: skip


def device(udid: str, product_type: str, state: str = "ready") -> livestate.DeviceStatus:
    return livestate.DeviceStatus(udid=udid, product_type=product_type, chip="A14",
                                  os_version="17.5", os_build="21F79", name=udid,
                                  simulated=True, agent="agent-1", state=state)  # fmt: skip


def test_repeats_is_a_definition_field_with_the_farms_default():
    assert parse({**BASE, "repeats": 3}).runs_per_night(1) == 3
    assert parse(BASE).repeats is None
    assert parse(BASE).runs_per_night(4) == 4  # ANEFARM_SWEEP_REPEATS when the file sets none
    assert load_settings(database_url="sqlite://", broker_url=None).sweep_repeats == 1


@pytest.mark.parametrize(
    ("value", "says"),
    [(0, "repeats: runs per night must be 1–20, got 0 (e.g. 3;"),
     (21, "repeats: runs per night must be 1–20, got 21"),
     ("three", "repeats: runs per night must be a whole number, got 'three' (e.g. 3)"),
     (True, "repeats: runs per night must be a whole number, got True")],
)  # fmt: skip
def test_a_bad_repeats_is_one_line(value, says):
    with pytest.raises(InvalidSweep) as raised:
        parse({**BASE, "repeats": value}, source="vision.yaml")
    line = raised.value.one_line()
    assert "\n" not in line and line.startswith("vision.yaml: ") and says in line


def test_a_bad_repeats_through_the_cli_is_exit_2_and_one_line(tmp_path, samples):
    path = write_sweep(tmp_path / "sweep", samples, repeats="0")
    out = anefarm(tmp_path / "home", "sweep", "add", str(path))
    assert out.returncode == 2, out.stderr
    assert out.stderr.splitlines() == [
        f"anefarm: error: {path}: repeats: runs per night must be 1–20, got 0 "
        "(e.g. 3; each run is one more runner launch per series)"
    ]


@pytest.fixture
def repeat_env(tmp_path: Path, sessions: Any, samples: dict[str, Path]) -> dict[str, Any]:
    settings = load_settings(home=tmp_path / "home", database_url="sqlite://", broker_url=None)
    path = write_sweep(tmp_path / "sweep", samples, repeats="3")
    with session_scope(sessions) as session:
        add_file(session, path)
    return {"settings": settings, "sessions": sessions}


def start(env: dict[str, Any], devices: list[Any], farm: FarmView) -> tuple[Any, StubPublisher]:
    publisher = StubPublisher()
    job = start_night(settings=env["settings"], sessions=env["sessions"], app=None,
                      sweep_name="vision-nightly", scheduled_for=NIGHT1, publisher=publisher,
                      farm=farm, devices=devices)  # fmt: skip
    return job, publisher


def test_a_night_has_n_runs_per_series_on_distinct_devices(repeat_env):
    # The iPhone 12 class has three ready devices (and a quarantined one), the XR one.
    devices = [device(f"i12-{i}", IPHONE12) for i in range(3)]
    devices += [device("i12-bad", IPHONE12, "quarantined"), device("xr-1", XR)]
    job_id, publisher = start(repeat_env, devices, FarmView.of({XR, IPHONE12}))
    with repeat_env["sessions"]() as session:
        runs = session.scalars(select(db.Run).where(db.Run.job_id == job_id)).all()
    assert len(runs) == 3 * len(MODELS) * 2 and len(publisher.sent) == len(runs)
    by_series: dict[tuple[str, str], list[db.Run]] = {}
    for run in runs:
        by_series.setdefault((run.series or "", run.device_class), []).append(run)
    assert len(by_series) == len(MODELS) * 2
    sent = {s.batch.run_id: s for s in publisher.sent}
    used = []
    for (_, device_class), group in by_series.items():
        group.sort(key=lambda r: r.probe_repeat if r.probe_repeat is not None else -1)
        nightly, *copies = group
        assert [r.probe_repeat for r in group] == [0, 1, 2]  # labelled with the repeat index
        assert nightly.parent_run_id is None and nightly.bisect_state is None
        assert all(c.parent_run_id == nightly.id and c.bisect_state == "skipped" for c in copies)
        assert {r.model_sha256 for r in group} == {nightly.model_sha256}
        if device_class == IPHONE12:
            pins = [r.pinned_udid for r in group]
            assert len(set(pins)) == 3 and set(pins) <= {"i12-0", "i12-1", "i12-2"}
            assert [sent[r.id].queue for r in group] == [device_queue(p) for p in pins]
            used.append(pins[0])
        else:  # alone in its class: the class queue (its one device takes all three)
            assert {r.pinned_udid for r in group} == {None}
            assert {sent[r.id].queue for r in group} == {device_class_queue(XR)}
    assert len(set(used)) == 3  # the nightly runs of the class are spread over its devices
    # Every batch is the night's: same spec, the repeats right after their nightly run.
    order = [s.batch.run_id for s in publisher.sent]
    for group in by_series.values():
        first = order.index(group[0].id)
        assert order[first : first + 3] == [r.id for r in group]
    assert {s.batch.spec.night for s in publisher.sent} == {NIGHT1.date()}


def test_without_live_devices_the_repeats_go_to_the_class_queue(repeat_env):
    _, publisher = start(repeat_env, [], FarmView.of({XR, IPHONE12}))
    assert len(publisher.sent) == 3 * len(MODELS) * 2
    assert {s.batch.pinned_udid for s in publisher.sent} == {None}


# End to end: a SIMULATED farm, the CLI, the night's analysis input -------------------------


@pytest.fixture
@provides("celery")
def farm(tmp_path: Path, redis_url: str) -> Iterator[Farm]:
    farm = Farm.at(tmp_path, redis_url)
    farm.start_coordinator()
    farm.start_agent(f"{IPHONE12}=3,{XR}@17.5=1", wait_for=4)
    yield farm
    farm.kill()  # a teardown: nothing is asserted about the shutdown


@pytest.mark.slow
def test_a_simulated_night_with_three_runs_per_series(farm, samples, tmp_path):
    folder = tmp_path / "sweeps"
    (folder / "models").mkdir(parents=True)
    shutil.copytree(samples["conv10x10.mlpackage"], folder / "models" / "conv10x10.mlpackage")
    path = folder / "vision.yaml"
    path.write_text(
        'name: vision-nightly\nschedule: "0 2 * * *"\nmodels:\n  - path: models/*.mlpackage\n'
        f'devices: "{IPHONE12},{XR}"\ncompute_units: [all]\niterations: 5\nrepeats: 3\n',
        encoding="utf-8",
    )
    farm.cli("sweep", "add", str(path))
    out = farm.cli("sweep", "run", "vision-nightly", "--at", "2026-11-24T02:00", "--wait",
                   "--json", timeout=240, check=False)  # fmt: skip
    assert out.returncode == 0, out.stderr
    job = uuid.UUID(json.loads(out.stdout)["job"])
    with farm.sessions()() as session:
        runs = session.scalars(
            select(db.Run).where(db.Run.job_id == job, db.Run.purpose == "user")
        ).all()
        assert len(runs) == 2 * 3 and all(r.status == "succeeded" for r in runs), [
            (r.device_class, r.status, r.error_message) for r in runs
        ]
        on = {c: sorted(r.udid or "" for r in runs if r.device_class == c) for c in (IPHONE12, XR)}
        assert len(set(on[IPHONE12])) == 3  # three devices of the class, one run each
        assert len(set(on[XR])) == 1  # alone in its class: the same device three times
        tonight = night_runs(session, job)
        assert {k: len(v) for k, v in tonight.repeats.items()} == {
            ("conv10x10", IPHONE12): 2,
            ("conv10x10", XR): 2,
        }
        assert tonight.confirmations == {}
        sweep = load_sweep(session, "vision-nightly")
        series, _, night = histories(session, sweep, datetime(2026, 11, 25, tzinfo=UTC))
    assert night is not None and len(series) == 2
    for h in series:
        (point,) = h.points
        assert len(point.runs) == 3  # the night's three runs are one point of the series
        assert all(len(run.samples_ms) == 5 for run in point.runs)
        assert h.key.simulated is True


def test_the_analysis_reads_a_nights_runs_as_one_point(repeat_env):
    """As ingest leaves a night: a failed repeat leaves the others' point, a series whose
    runs all failed is FAILED, a confirmation run (no repeat index) joins the point and is
    told apart from the repeats."""
    devices = [device(f"i12-{i}", IPHONE12) for i in range(3)] + [device("xr-1", XR)]
    job_id, _ = start(repeat_env, devices, FarmView.of({XR, IPHONE12}))
    rng = np.random.default_rng(0)
    one_failed, all_failed, confirmed = ("conv10x10", IPHONE12), ("conv10x10", XR), (
        "mobilenetv2_block", IPHONE12)  # fmt: skip
    with session_scope(repeat_env["sessions"]) as session:
        runs = session.scalars(select(db.Run).where(db.Run.job_id == job_id)).all()
        for run in runs:
            pair = (run.series, run.device_class)
            fails = pair == all_failed or (pair == one_failed and run.probe_repeat == 1)
            finish(session, run, None if fails else 10.0 * (1 + 0.01 * (run.probe_repeat or 0)),
                   rng)  # fmt: skip
            if pair == confirmed and run.probe_repeat == 0:
                extra = db.Run(
                    id=uuid.uuid4(), job_id=job_id, model_sha256=run.model_sha256,
                    device_class=run.device_class, created_at=run.created_at, purpose="user",
                    parent_run_id=run.id, series=run.series, bisect_state="skipped",
                )  # fmt: skip
                session.add(extra)
                session.flush()
                finish(session, extra, 10.5, rng)
        session.get(db.Job, job_id).status = db.JobStatus.DONE
    with repeat_env["sessions"]() as session:
        tonight = night_runs(session, job_id)
        sweep = load_sweep(session, "vision-nightly")
        series, _, night = histories(session, sweep, NIGHT1)
    assert {k: len(v) for k, v in tonight.confirmations.items()} == {confirmed: 1}
    assert all(len(v) == 2 for v in tonight.repeats.values()) and len(tonight.repeats) == 6
    points = {(h.key.series, h.key.device_class, h.key.compute_units): h.points[-1]
              for h in series}  # fmt: skip
    assert night == NIGHT1.date()
    assert len(points[(*one_failed, "all")].runs) == 2  # the two repeats that measured
    assert points[(*one_failed, "all")].status is PointStatus.OK
    assert points[(*all_failed, "all")].status is PointStatus.FAILED
    assert "E5RT" in points[(*all_failed, "all")].reason
    assert len(points[(*confirmed, "all")].runs) == 4  # three repeats and a confirmation
    assert len(points[("conv10x10_dilated4", XR, "all")].runs) == 3


def finish(session: Any, run: db.Run, median: float | None, rng: np.random.Generator) -> None:
    """What ingest leaves for a run: its status, device, and a measurement per setting."""
    run.udid, run.simulated, run.os_version, run.os_build = (
        run.pinned_udid or f"{run.device_class}-0", True, "17.5", "21F79")  # fmt: skip
    if median is None:
        run.status, run.error_kind, run.error_message = db.RunStatus.FAILED, "compile", "E5RT"
        return
    run.status = db.RunStatus.SUCCEEDED
    for units in ("all", "cpuOnly"):
        draws = median * rng.lognormal(0.0, 0.03, 20)
        session.add(db.Measurement(run_id=run.id, compute_units=units, samples_ms=draws.tolist(),
                                   count=20, p50=float(np.median(draws))))  # fmt: skip
