"""History points from stored nights (SQLite and PostgreSQL, no farm): a measured run is
`ok` with its median and conditions, a failed run `failed` with its error, an unfinished
one `pending`, a missing record `missing` with its kind and reason; filters; the previous
night's medians for the report, never across simulated and real."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select

from orchestrator.protocol.transport import StubPublisher
from orchestrator.selection import FarmView
from orchestrator.store import models as db
from orchestrator.store.engine import session_scope
from orchestrator.sweeps.history import points, previous_medians
from orchestrator.sweeps.nights import load_sweep, start_night
from tests.sweeps.test_nights import NIGHT1, XR, night_env

__all__ = ["night_env"]  # the fixture of a stored sweep, used by name

SHA = "a" * 64


def night(env: dict[str, Any], when: datetime) -> Any:
    return start_night(settings=env["settings"], sessions=env["sessions"], app=None,
                       sweep_name="vision-nightly", scheduled_for=when,
                       publisher=StubPublisher(), farm=FarmView.of({XR}))  # fmt: skip


def measure(session: Any, run: db.Run, p50s: dict[str, float], *, simulated: bool = True) -> None:
    run.status = db.RunStatus.SUCCEEDED
    run.simulated, run.os_version, run.os_build = simulated, "16.7.8", "20H1"
    run.runner_version, run.udid = "1.0", "sim-xr-1"
    for units, p50 in p50s.items():
        session.add(db.Measurement(run_id=run.id, compute_units=units, samples_ms=[p50] * 5,
                                   count=5, p50=p50))  # fmt: skip
    session.add(db.Verdict(run_id=run.id, model_sha256=run.model_sha256, device_class=XR,
                           chip="A12", os_version="16.7.8", simulated=simulated, verdict="FULL",
                           ane_share=1.0, payload={}, created_at=NOW))  # fmt: skip


NOW = datetime(2026, 11, 26, tzinfo=UTC)


def runs_of(session: Any, job: Any) -> dict[str, db.Run]:
    return {r.series: r for r in session.scalars(select(db.Run).where(db.Run.job_id == job))}


def test_points_say_what_each_series_did(night_env):
    job = night(night_env, NIGHT1)
    with session_scope(night_env["sessions"]) as session:
        runs = runs_of(session, job)
        measure(session, runs["conv10x10"], {"all": 1.5, "cpuOnly": 9.0})
        failed = runs["conv10x10_dilated4"]
        failed.status, failed.error_kind, failed.error_message = (
            db.RunStatus.FAILED,
            "compile",
            "the model does not compile",
        )
        session.add(db.SweepMissing(job_id=job, series="detector", device_class=XR,
                                    kind=db.MissingKind.MODEL_MISSING,
                                    reason="no such file '/srv/detector.mlpackage'",
                                    created_at=NOW))  # fmt: skip
    with night_env["sessions"]() as session:
        found = points(session, load_sweep(session, "vision-nightly"))
    by = {(p.series, p.compute_units): p for p in found}
    assert len(found) == 4 * 2  # 3 runs and 1 missing record, 2 compute-units settings each
    ok = by[("conv10x10", "all")]
    assert (ok.status, ok.median_ms, ok.samples, ok.verdict) == ("ok", 1.5, 5, "FULL")
    assert (ok.os_build, ok.runner_version, ok.udid, ok.simulated) == (
        "20H1",
        "1.0",
        "sim-xr-1",
        True,
    )
    assert ok.night == date(2026, 11, 25) and ok.chip == "A12" and len(ok.model_sha256 or "") == 64
    bad = by[("conv10x10_dilated4", "cpuOnly")]
    assert (
        bad.status == "failed" and bad.reason == "run failed: compile: the model does not compile"
    )
    assert by[("mobilenetv2_block", "all")].status == "pending"
    hole = by[("detector", "cpuOnly")]
    assert hole.status == "missing" and hole.simulated is None
    assert hole.reason == "model_missing: no such file '/srv/detector.mlpackage'"
    with night_env["sessions"]() as session:
        sweep = load_sweep(session, "vision-nightly")
        assert {p.series for p in points(session, sweep, series="detector")} == {"detector"}
        assert points(session, sweep, device_class="iPhone13,2") == []
        assert points(session, sweep, since=date(2026, 11, 26)) == []
        assert len(points(session, sweep, simulated=True)) == 2


def test_previous_medians_come_from_the_last_night_that_measured_like_with_like(night_env):
    first, second, third = (night(night_env, NIGHT1 + timedelta(days=d)) for d in range(3))
    with session_scope(night_env["sessions"]) as session:
        measure(session, runs_of(session, first)["conv10x10"], {"all": 1.5, "cpuOnly": 9.0})
        # Night 2: the same series measured on a REAL device: never compared with simulated.
        measure(session, runs_of(session, second)["conv10x10"], {"all": 7.0}, simulated=False)
        measure(session, runs_of(session, third)["conv10x10"], {"all": 1.6})
    with night_env["sessions"]() as session:
        before = previous_medians(session, session.get(db.Job, third))
        assert before[("conv10x10", XR, "all", True)] == (date(2026, 11, 25), 1.5)
        assert before[("conv10x10", XR, "all", False)] == (date(2026, 11, 26), 7.0)
        assert previous_medians(session, session.get(db.Job, first)) == {}
