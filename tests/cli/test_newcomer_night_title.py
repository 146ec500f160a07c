"""The text report of a sweep's night said only "job <uuid> (done)": a person reading it
in the morning could not tell which sweep or night it was. Its header names both (the
night is the scheduled time's date in the sweep's own timezone); a plain job's header
is unchanged."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

from rich.console import Console

from bench.report import write_night
from orchestrator.render import print_table
from orchestrator.report import night_title, report_model
from orchestrator.store import models as db
from orchestrator.store.engine import make_engine, session_factory


def _header(session, job: str) -> str:
    out = io.StringIO()
    print_table(
        report_model(session, job),
        Console(file=out, width=200, color_system=None),
        night=night_title(session, job),
    )
    return out.getvalue().splitlines()[0]


def test_a_night_names_its_sweep_and_local_date_and_a_job_does_not(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'night.db'}"
    job = write_night(url, 1)
    sessions = session_factory(make_engine(url))
    with sessions() as session:
        assert night_title(session, job) is None
        assert _header(session, job) == f"anefarm report — job {job} (done)"
    now = datetime(2026, 11, 20, tzinfo=UTC)
    with sessions.begin() as session:
        sweep = db.Sweep(name="vision-nightly", definition={}, schedule="0 2 * * *",
                         timezone="Europe/Berlin", created_at=now, updated_at=now)  # fmt: skip
        session.add(sweep)
        session.flush()
        night = session.get_one(db.Job, UUID(job))
        night.sweep_id = sweep.id
        # 23:30 UTC on the 23rd is 00:30 on the 24th in Berlin: the night of the 24th.
        night.scheduled_for = datetime(2026, 11, 23, 23, 30, tzinfo=UTC)
    with sessions() as session:
        assert night_title(session, job) == "sweep vision-nightly, night of 2026-11-24"
        assert _header(session, job) == (
            f"anefarm report — job {job} (done), sweep vision-nightly, night of 2026-11-24"
        )
