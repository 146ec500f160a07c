"""The night a summary recovered is a column of its triage entry (migration 0012), not
read back from the note's words: a recovery whose note says anything still lists its
night, and entries from before 0012 get theirs from their note, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import sqlalchemy as sa

from orchestrator.alerts import views
from orchestrator.store import models as db
from orchestrator.store.engine import make_engine, session_factory, session_scope
from orchestrator.store.migrate import upgrade
from tests.alerts.nightfarm import CLASSES, Point, make_sweep, summaries
from tests.store.rows_of_before import insert_model_and_job

NOW = datetime(2026, 3, 20, 3, 0, tzinfo=UTC)


def test_a_recovery_keeps_its_night_whatever_its_note_says(db_url: str, tmp_path) -> None:
    upgrade(db_url)
    engine = make_engine(db_url)
    sessions = session_factory(engine)
    sweep = make_sweep(sessions, tmp_path, regress={"recovery_nights": 1})
    for factor in [1.0] * 7 + [1.15]:
        sweep.add_night(lambda s, c, f=factor: Point(median=10.0 * (f if c == CLASSES[1] else 1)),  # type: ignore[misc]
                        noise=0.0)  # fmt: skip
        sweep.analyse()
    (summary,) = summaries(sessions)
    closed_on = None
    for n in range(4):
        sweep.add_night(lambda s, c: Point(), noise=0.0)
        if sweep.analyse().recovered:
            closed_on = n
            break
    assert closed_on is not None
    with session_scope(sessions) as session:
        entry = session.scalars(
            sa.select(db.AlertTriage).where(db.AlertTriage.to_status == "recovered")
        ).one()
        night = entry.night
        assert isinstance(night, date) and entry.note and night.isoformat() in entry.note
        entry.note = "closed by the analysis"  # the prose may change; the night stays
    with sessions() as session:
        shown = views.show_alert(session, summary.id)
        listed = views.list_alerts(session, sweep=None, statuses=["recovered"], limit=5)
    engine.dispose()
    assert shown["recovered_night"] == night.isoformat()
    assert [a["recovered_night"] for a in listed] == [night.isoformat()]


def test_0012_gives_recoveries_from_before_their_night_from_the_note(db_url: str) -> None:
    upgrade(db_url, "0011")
    # Rows as 0011's code wrote them: Core on today's tables, the new column left out.
    t = db.Base.metadata.tables
    sweep_id, job_id = uuid.uuid4(), uuid.uuid4()
    engine = make_engine(db_url)
    with engine.begin() as conn:
        insert_model_and_job(conn, sha="5a" * 32, job_id=job_id, at=NOW, status="done",
                             bisect="auto")  # fmt: skip
        conn.execute(t["sweeps"].insert().values(
            id=sweep_id, name="nightly", definition={}, schedule="0 2 * * *", timezone="UTC",
            paused=False, created_at=NOW, updated_at=NOW))  # fmt: skip
        key = conn.execute(t["alert_summaries"].insert().values(
            sweep_id=sweep_id, job_id=job_id, last_job_id=job_id, cause_key="k", cause="c",
            kind="regression", status="recovered", simulated=True, worst=0.1, nights=1,
            raised=1, created_at=NOW, updated_at=NOW)).inserted_primary_key  # fmt: skip
        assert key is not None
        summary = key[0]
        columns = [c for c in t["alert_triage"].c if c.name not in ("id", "night")]
        for to, by, note in (("acknowledged", "ana", "recovered on night 2026-01-01 maybe"),
                             ("recovered", "anefarm", "recovered on night 2026-03-19: every"
                              " member SAME on the last 3 nights"),
                             ("recovered", "ana", "looks fine")):  # fmt: skip
            row = {"summary_id": summary, "from_status": "untriaged", "to_status": to,
                   "by": by, "note": note, "at": NOW}  # fmt: skip
            conn.execute(sa.insert(t["alert_triage"]).values(
                {c.name: row[c.name] for c in columns}))  # fmt: skip
    engine.dispose()
    upgrade(db_url)
    engine = make_engine(db_url)
    with engine.connect() as conn:
        nights = [r[0] for r in conn.execute(
            sa.select(t["alert_triage"].c.night).order_by(t["alert_triage"].c.id))]  # fmt: skip
    engine.dispose()
    assert nights == [None, date(2026, 3, 19), None]
