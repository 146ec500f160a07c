"""An alert's life after it is raised, over many nights with noise: an open alert is
updated while its change lasts and raised again only when it worsens (issue 18), and it
is closed as ``recovered`` once every member is back to SAME for ``recovery_nights``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from orchestrator.alerts import triage, views
from orchestrator.store import models as db
from orchestrator.store.engine import make_engine, session_factory, session_scope
from tests.alerts.nightfarm import CLASSES, Point, checks, make_sweep, summaries
from tests.services.databases import migrate_to_head

SLOW = CLASSES[1]
SEEDS = range(6)


@pytest.fixture
def sqlite_sessions(sqlite_url: str) -> Iterator[Any]:
    """SQLite only: the many-seed tests replay hundreds of nights (both backends run the
    same store code in test_night.py)."""
    migrate_to_head(sqlite_url)
    engine = make_engine(sqlite_url)
    yield session_factory(engine)
    engine.dispose()


def slowed(factor: float) -> Callable[[str, str], Point]:
    """Each night's point: ``SLOW`` at ``factor`` × 10 ms, the other class at 10 ms."""
    return lambda s, c: Point(median=10.0 * factor if c == SLOW else 10.0, within=0.03)


@pytest.mark.parametrize("seed", SEEDS)
def test_an_open_alert_is_updated_not_raised_again_while_it_lasts(sqlite_sessions, tmp_path, seed):
    """A 15 % slowdown of one class that stays for 14 nights (the trend window), at
    run-to-run σ 2 %: one summary, raised once, updated every night it is seen."""
    sweep = make_sweep(sqlite_sessions, tmp_path)
    sweep.rng = np.random.default_rng(seed)
    for _ in range(7):
        sweep.add_night(slowed(1.0), noise=0.02)
        sweep.analyse()
    for _ in range(14):
        sweep.add_night(slowed(1.15), noise=0.02)
        sweep.analyse()
    found = [(s.id, s.kind, s.cause, s.raised, s.nights) for s in summaries(sqlite_sessions)]
    slow = [f for f in found if SLOW in f[2] and f[1] == "regression"]
    assert len(slow) == 1, found
    assert all(raised == 1 for _, _, _, raised, _ in found), found
    assert slow[0][4] >= 12, found


@pytest.mark.parametrize("seed", SEEDS)
def test_an_alert_that_worsens_is_raised_again_once(sqlite_sessions, tmp_path, seed):
    """The same slowdown grown from 15 % to 40 % after a week: raised again once, then
    updated again."""
    sweep = make_sweep(sqlite_sessions, tmp_path)
    sweep.rng = np.random.default_rng(seed)
    for factor, nights in ((1.0, 7), (1.15, 7), (1.40, 5)):
        for _ in range(nights):
            sweep.add_night(slowed(factor), noise=0.02)
            sweep.analyse()
    slow = [s for s in summaries(sqlite_sessions) if SLOW in s.cause and s.kind == "regression"]
    assert [s.raised for s in slow] == [2], [(s.cause, s.raised) for s in slow]


def test_the_same_failure_named_with_its_night_is_not_raised_again(sessions, tmp_path):
    """A failure's message that names the night (a class absent from the farm) is the same
    failure every night: updated, not raised again; a different failure is raised again."""
    sweep = make_sweep(sessions, tmp_path)
    for _ in range(7):
        sweep.add_night(lambda s, c: Point())
        sweep.analyse()
    for night in ("2026-03-08", "2026-03-09", "2026-03-10"):
        sweep.add_night(lambda s, c, n=night: Point(
            failed=f"SIM {c} is not in the farm on {n} (SIMULATED timeline)" if c == SLOW
            else None))  # fmt: skip
        sweep.analyse()
    sweep.add_night(lambda s, c: Point(failed="compile failed: unsupported op" if c == SLOW
                                       else None))  # fmt: skip
    sweep.analyse()
    (failure,) = [s for s in summaries(sessions) if s.kind == "failure"]
    assert (failure.nights, failure.raised) == (4, 2)


def _all_same(sessions: Any, job: Any, members: set[tuple[str, str, str, str]]) -> bool:
    rows = {(r.series, r.device_class, r.compute_units, r.check): r.status
            for r in checks(sessions, job)}  # fmt: skip
    return all(rows.get(m) == "SAME" for m in members)


def test_an_alert_closes_as_recovered_once_every_series_is_back_to_same(sessions, tmp_path):
    sweep = make_sweep(sessions, tmp_path)
    for _ in range(7):
        sweep.add_night(slowed(1.0))
        sweep.analyse()
    for _ in range(3):
        sweep.add_night(slowed(1.15))
        sweep.analyse()
    (summary,) = summaries(sessions)
    with session_scope(sessions) as session:
        triage.move(session, summary.id, db.AlertStatus.ACKNOWLEDGED, by="ana", note=None,
                    now=datetime.now(UTC))  # fmt: skip
        members = {(m.series, m.device_class, m.compute_units, m.check) for m in
                   session.scalars(select(db.AlertFinding).where(
                       db.AlertFinding.summary_id == summary.id))}  # fmt: skip
    # Back to normal: closed on the first night that ends 3 SAME nights in a row, not before.
    same_run, closed_on = 0, None
    for n in range(11, 20):
        job = sweep.add_night(slowed(1.0))
        outcome = sweep.analyse()
        same_run = same_run + 1 if _all_same(sessions, job, members) else 0
        assert outcome.recovered == ([summary.id] if same_run == 3 else []), (n, same_run)
        if outcome.recovered:
            closed_on = f"2026-03-{n:02d}"
            break
    assert closed_on is not None, "never recovered within 9 nights"
    with sessions() as session:
        listed = views.list_alerts(session, sweep=None, statuses=["recovered"], limit=10)
        shown = views.show_alert(session, summary.id)
        still_open = views.list_alerts(session, sweep=None, statuses=["untriaged",
                                                                      "acknowledged"], limit=10)  # fmt: skip
    assert [(a["id"], a["status"], a["recovered_night"]) for a in listed] == [
        (summary.id, "recovered", closed_on)]  # fmt: skip
    assert shown["recovered_at"] and still_open == []
    assert shown["triage"][-1]["by"] == "anefarm"
    assert (shown["triage"][-1]["from"], shown["triage"][-1]["to"]) == ("acknowledged", "recovered")
    # The slowdown comes back: a new alert, not the recovered one raised again.
    sweep.add_night(slowed(1.15))
    sweep.analyse()
    sweep.add_night(slowed(1.15))
    sweep.analyse()
    again = summaries(sessions)
    assert [s.status for s in again] == [db.AlertStatus.RECOVERED, db.AlertStatus.UNTRIAGED]


def test_recovery_nights_is_a_setting_of_the_sweep(sessions, tmp_path):
    sweep = make_sweep(sessions, tmp_path, regress={"recovery_nights": 1})
    for factor, nights in ((1.0, 7), (1.15, 1)):
        for _ in range(nights):
            sweep.add_night(slowed(factor), noise=0.0)
            sweep.analyse()
    (summary,) = summaries(sessions)
    # Noise-free, the first normal night's 2- and 3-night windows still hold the slow
    # night (UNKNOWN), the next ones are SAME: with 1 night, closed on the first of them.
    recovered = []
    for _ in range(4):
        sweep.add_night(slowed(1.0), noise=0.0)
        recovered.append(sweep.analyse().recovered)
    assert [summary.id] in recovered and recovered.count([summary.id]) == 1
