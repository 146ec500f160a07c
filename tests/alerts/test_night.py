"""The night analysis as wired: nights written as ingest leaves them, analysed by the real
regress core, stored as check results and alert summaries (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from orchestrator.alerts import triage
from orchestrator.store import models as db
from orchestrator.store.engine import session_scope
from tests.alerts.nightfarm import (
    CLASSES,
    SERIES,
    Live,
    Point,
    checks,
    make_sweep,
    summaries,
    udid,
)

SLOW = CLASSES[1]


def quiet(sweep, nights=7):
    for _ in range(nights):
        sweep.add_night(lambda s, c: Point())
        assert sweep.analyse().state == "analysed"


def slowed(s, c):
    """A night on which the second class is 15 % slower."""
    return Point(median=11.5 if c == SLOW else 10.0)


def slowed_alert(sessions, tmp_path):
    """Quiet nights, then one slowed night: its one summary (and the sweep)."""
    made = make_sweep(sessions, tmp_path)
    quiet(made)
    made.add_night(slowed)
    made.analyse()
    (summary,) = summaries(sessions)
    return made, summary


def test_quiet_nights_store_a_status_per_check_and_raise_nothing(sessions, tmp_path):
    sweep = make_sweep(sessions, tmp_path)
    quiet(sweep)
    rows = checks(sessions, sweep.nights[-1])
    per_check = {(r.series, r.device_class, r.check) for r in rows}
    assert {c for _, _, c in per_check} == {"latency", "trend", "placement", "verdict",
                                            "compile", "load", "run"}  # fmt: skip
    assert len({(s, c) for s, c, _ in per_check}) == len(SERIES) * len(CLASSES)
    assert {r.status for r in rows if r.check == "latency"} == {"SAME"}
    assert all(r.simulated for r in rows)
    assert summaries(sessions) == []
    with sessions() as session:
        state = session.get(db.NightAnalysis, sweep.nights[-1])
        assert state.state == "analysed" and state.error is None


def test_a_slowed_class_is_one_summary_updated_not_raised_again(sessions, tmp_path):
    sweep = make_sweep(sessions, tmp_path)
    quiet(sweep)
    sweep.add_night(slowed)
    first = sweep.analyse()
    sweep.add_night(slowed)
    second = sweep.analyse()
    (summary,) = summaries(sessions)
    assert [r.new for r in first.raised] == [True]
    assert [(r.new, r.reraised) for r in second.raised] == [(False, False)]
    assert summary.kind == "regression" and summary.nights == 2 and summary.raised == 1
    assert SLOW in summary.cause and "device/OS unchanged, model unchanged" in summary.cause
    assert "SIMULATED" in summary.cause
    with sessions() as session:
        members = session.scalars(select(db.AlertFinding).where(
            db.AlertFinding.summary_id == summary.id, db.AlertFinding.job_id == sweep.nights[-1],
            db.AlertFinding.check == "latency"))  # fmt: skip
        assert sorted(m.series for m in members) == sorted(SERIES)


def test_an_open_alert_that_worsens_is_raised_again(sessions, tmp_path):
    sweep, summary = slowed_alert(sessions, tmp_path)
    with session_scope(sessions) as session:
        triage.move(session, summary.id, db.AlertStatus.ACKNOWLEDGED, by="ana", note=None,
                    now=datetime.now(UTC))  # fmt: skip
    sweep.add_night(lambda s, c: Point(median=14.0 if c == SLOW else 10.0))
    outcome = sweep.analyse()
    (summary,) = summaries(sessions)
    assert [(r.new, r.reraised) for r in outcome.raised] == [(False, True)]
    assert summary.raised == 2 and summary.status == db.AlertStatus.UNTRIAGED


def test_accepting_resets_the_baseline_so_the_new_normal_is_quiet(sessions, tmp_path):
    sweep, summary = slowed_alert(sessions, tmp_path)
    with session_scope(sessions) as session:
        triage.move(session, summary.id, db.AlertStatus.ACCEPTED, by="ana", note="new SoC fw",
                    now=datetime.now(UTC))  # fmt: skip
    sweep.add_night(slowed)
    outcome = sweep.analyse()
    assert outcome.raised == []
    latency = [r for r in checks(sessions, sweep.nights[-1])
               if r.check == "latency" and r.device_class == SLOW]  # fmt: skip
    # Two nights since the reset: too few for a baseline, so no verdict either way.
    assert {r.status for r in latency} == {"INSUFFICIENT_DATA"}


def test_an_os_upgrade_moving_dilated_convs_is_one_placement_summary(sessions, tmp_path):
    sweep = make_sweep(sessions, tmp_path)
    quiet(sweep)
    sweep.add_night(lambda s, c: Point(os_version="18.2", os_build="22C152",
                                       dilated_unit="gpu"))  # fmt: skip
    outcome = sweep.analyse()
    placement = [s for s in summaries(sessions) if s.kind == "placement"]
    assert len(placement) == 1 and len(outcome.raised) == len(summaries(sessions))
    cause = placement[0].cause
    assert "conv dilated moved neuralEngine → gpu" in cause and "22C152" in cause
    assert f"{len(SERIES)} models × {len(CLASSES)} device classes" in cause


def test_a_model_that_stops_compiling_is_an_alert_of_its_own(sessions, tmp_path):
    sweep = make_sweep(sessions, tmp_path)
    quiet(sweep)
    sweep.add_night(lambda s, c: Point(failed="compile failed: unsupported op" if s == "tagger"
                                       else None))  # fmt: skip
    sweep.analyse()
    # Nothing else changed, so the cause is per device class (regress.grouping).
    found = summaries(sessions)
    assert len(found) == len(CLASSES)
    assert all(s.kind == "failure" and "compile failed" in s.cause for s in found)
    rows = [r for r in checks(sessions, sweep.nights[-1]) if r.series == "tagger"]
    assert {r.status for r in rows if r.check == "run"} == {"FAILED"}


def test_a_retrained_faster_model_is_an_improvement_attributed_to_the_model(sessions, tmp_path):
    sweep = make_sweep(sessions, tmp_path)
    quiet(sweep)
    sweep.add_night(lambda s, c: Point(median=8.0, sha="b") if s == "detector" else Point())
    sweep.analyse()
    (summary,) = summaries(sessions)
    assert summary.kind == "improvement"
    assert "model changed (sha256" in summary.cause and "detector" in summary.cause_key


def test_unknown_latency_gets_one_confirmation_run_before_any_alert(sessions, tmp_path):
    sweep = make_sweep(sessions, tmp_path)
    quiet(sweep)
    # A shift inside the UNKNOWN band (between same_fraction × gate and the 5 % gate).
    job = sweep.add_night(lambda s, c: Point(median=10.4 if (s, c) == ("detector", SLOW)
                                             else 10.0), noise=0.0)  # fmt: skip
    live = [Live(udid(SLOW, 0), SLOW), Live(udid(SLOW, 1), SLOW)]
    outcome = sweep.analyse(live=live, confirm=False)
    assert outcome.state == "confirming" and len(outcome.confirmations) == 1
    with sessions() as session:
        confirm = session.get(db.Run, outcome.confirmations[0])
        parent = session.get(db.Run, confirm.parent_run_id)
        assert (parent.series, parent.device_class) == ("detector", SLOW)
        assert confirm.pinned_udid == udid(SLOW, 1)  # another device of the class
        assert session.get(db.Job, job).status == db.JobStatus.RUNNING  # reopened
        assert session.get(db.NightAnalysis, job).state == "confirming"
        assert (
            session.scalars(select(db.CheckResult).where(db.CheckResult.job_id == job)).all() == []
        )
    # The confirmation run ends (as ingest would): the night is final and analysed again.
    sweep.finish_confirmations(job, outcome.confirmations)
    again = sweep.analyse(live=live, confirm=False)
    assert again.state == "analysed" and again.confirmations == []
    row = next(r for r in checks(sessions, job)
               if (r.series, r.device_class, r.check) == ("detector", SLOW, "latency"))  # fmt: skip
    assert row.detail["confirmed"] is True


def test_a_class_of_one_device_confirms_on_the_same_device(sessions, tmp_path):
    sweep = make_sweep(sessions, tmp_path)
    quiet(sweep)
    sweep.add_night(lambda s, c: Point(median=10.4 if (s, c) == ("detector", SLOW) else 10.0),
                    noise=0.0)  # fmt: skip
    outcome = sweep.analyse(live=[Live(udid(SLOW, 0), SLOW)], confirm=False)
    with sessions() as session:
        assert session.get(db.Run, outcome.confirmations[0]).pinned_udid == udid(SLOW, 0)


def test_a_failing_analysis_is_recorded_and_never_fails_the_night(sessions, tmp_path):
    sweep = make_sweep(sessions, tmp_path)
    job = sweep.add_night(lambda s, c: Point())
    with session_scope(sessions) as session:
        session.get(db.Sweep, sweep.sweep_id).definition = {"name": "broken"}
    outcome = sweep.analyse()
    assert outcome.state == "error" and "ValidationError" in (outcome.error or "")
    with sessions() as session:
        assert session.get(db.Job, job).status == db.JobStatus.DONE
        assert "validation error" in session.get(db.NightAnalysis, job).error


@pytest.mark.parametrize("status", ["queued", "running"])
def test_a_night_not_final_is_not_analysed(sessions, tmp_path, status):
    sweep = make_sweep(sessions, tmp_path)
    job = sweep.add_night(lambda s, c: Point())
    with session_scope(sessions) as session:
        session.get(db.Job, job).status = db.JobStatus(status)
    assert sweep.analyse().state == "not final"
    assert checks(sessions, job) == []


def test_a_sweeps_own_threshold_overrides_the_default(sessions, tmp_path):
    sweep = make_sweep(sessions, tmp_path, regress={"threshold": 0.25})
    quiet(sweep)
    sweep.add_night(slowed)
    assert sweep.analyse().raised == []  # 15 % is under this sweep's 25 %
    latency = [r for r in checks(sessions, sweep.nights[-1])
               if r.check == "latency" and r.device_class == SLOW]  # fmt: skip
    assert latency and all("gate ±25.0 %" in r.message for r in latency), [
        r.message for r in latency
    ]


def test_triage_moves_only_along_its_edges_and_keeps_each_move(sessions, tmp_path):
    from orchestrator.errors import UsageError

    _, summary = slowed_alert(sessions, tmp_path)
    now = datetime.now(UTC)
    with session_scope(sessions) as session:
        triage.move(session, summary.id, db.AlertStatus.WONTFIX, by="ana", note="known", now=now)
    for to, why in ((db.AlertStatus.ACCEPTED, "cannot go from wontfix to accepted"),
                    (db.AlertStatus.WONTFIX, "already wontfix"),
                    (db.AlertStatus.UNTRIAGED, "cannot go from wontfix to untriaged")):  # fmt: skip
        with pytest.raises(UsageError, match=why), session_scope(sessions) as session:
            triage.move(session, summary.id, to, by="bo", note=None, now=now)
    with session_scope(sessions) as session:
        triage.move(session, summary.id, db.AlertStatus.ACKNOWLEDGED, by="bo", note=None, now=now)
        triage.move(session, summary.id, db.AlertStatus.ACCEPTED, by="bo", note=None, now=now)
        history = [(t.from_status, t.to_status, t.by) for t in triage.history(session, summary.id)]
        resets = session.scalars(select(db.SweepBaseline)).all()
    assert history == [("untriaged", "wontfix", "ana"), ("wontfix", "acknowledged", "bo"),
                       ("acknowledged", "accepted", "bo")]  # fmt: skip
    assert {(r.kind, r.series, r.device_class) for r in resets} == {
        ("reset", s, SLOW) for s in SERIES}  # fmt: skip


def test_a_retrained_model_after_a_low_night_is_the_models_change(sessions, tmp_path):
    """Issue 18's flaky acceptance, pinned: a quiet but low night (−3.5 %, in the UNKNOWN
    band, confirmed) and then a faster retrained model. The two-night window [low night,
    retrained night] alerts at once; its onset ran the old model, yet the change is the
    model's: attribution reads every night of the window that first showed it."""
    sweep = make_sweep(sessions, tmp_path)
    for _ in range(7):
        sweep.add_night(lambda s, c: Point(), noise=0.0)
        sweep.analyse()
    low = sweep.add_night(lambda s, c: Point(median=9.65 if s == "detector" else 10.0),
                          noise=0.0)  # fmt: skip
    sweep.analyse()
    job = sweep.add_night(lambda s, c: Point(median=7.5, sha="b") if s == "detector" else Point(),
                          noise=0.0)  # fmt: skip
    sweep.analyse()
    low_rows = [r for r in checks(sessions, low) if (r.series, r.check) == ("detector", "latency")]
    assert {r.status for r in low_rows} == {"UNKNOWN"}  # the low night: confirmed, no alert
    rows = [r for r in checks(sessions, job) if (r.series, r.check) == ("detector", "latency")]
    assert {r.status for r in rows} == {"IMPROVEMENT"}
    assert {r.detail["onset"] for r in rows} == {"2026-03-08"}  # the window began on it
    assert all([c["name"] for c in r.detail["changes"]] == ["model sha256"] for r in rows), [
        r.detail["attribution"] for r in rows
    ]
    (summary,) = summaries(sessions)
    assert summary.kind == "improvement" and "model changed (sha256" in summary.cause
