"""The run page and `anefarm report --json` show the thermal state ingest stored for a run
(a finished SIMULATED job through the real pipeline): the state, "throttled" when it was
serious or critical, "unknown" for a run stored before it was kept."""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from orchestrator.render import as_csv
from orchestrator.report import build_report
from orchestrator.store import models as db
from tests.web.pages.conftest import client_for

THERMAL_CELL = re.compile(r'<td colspan="3" id="thermal">(.*?)</td>', re.S)


@pytest.fixture
def user_run(finished: Any) -> Iterator[tuple[Any, uuid.UUID]]:
    """A user run of the finished job; its stored thermal state is put back afterwards."""
    with finished.sessions() as session:
        run = session.scalars(select(db.Run).where(
            db.Run.job_id == finished.job_id, db.Run.purpose == "user",
            db.Run.status == db.RunStatus.SUCCEEDED)).first()  # fmt: skip
        run_id, kept = run.id, run.thermal_state
    yield finished, run_id
    set_thermal(finished, run_id, kept)


def set_thermal(finished: Any, run_id: Any, state: str | None) -> None:
    with finished.sessions() as session:
        session.get(db.Run, run_id).thermal_state = state
        session.commit()


def cell(finished: Any, run_id: uuid.UUID) -> str:
    with client_for(finished) as c:
        page = c.get(f"/runs/{run_id}")
    assert page.status_code == 200
    found = THERMAL_CELL.search(page.text)
    assert found, page.text[:2000]
    return re.sub(r"<[^>]+>", "", found.group(1))


def test_ingest_stored_what_the_simulated_runner_reported_and_the_page_shows_it(user_run):
    finished, run_id = user_run
    with finished.sessions() as session:
        states = set(session.scalars(select(db.Run.thermal_state).where(
            db.Run.job_id == finished.job_id, db.Run.status == db.RunStatus.SUCCEEDED)))  # fmt: skip
        stored = session.get(db.Run, run_id).thermal_state
    assert states and states <= {"nominal", "fair"}  # small models on cool devices
    assert cell(finished, run_id).startswith(f"{stored} the hottest the runner reported")


def test_a_throttled_run_says_so_and_an_old_one_reads_unknown(user_run):
    finished, run_id = user_run
    set_thermal(finished, run_id, "serious")
    assert cell(finished, run_id).startswith("serious throttled: every latency")
    set_thermal(finished, run_id, None)
    assert cell(finished, run_id).startswith("unknown not reported")


def test_the_report_json_and_csv_carry_the_thermal_state(user_run):
    finished, run_id = user_run
    set_thermal(finished, run_id, "critical")
    with finished.sessions() as session:
        report = build_report(session, str(finished.job_id))  # what `anefarm report --json` prints
    (row,) = [r for r in report["rows"] if r["run"] == str(run_id)]
    assert row["thermal_state"] == "critical"
    lines = list(csv.DictReader(io.StringIO(as_csv(report))))  # `anefarm report --csv`
    assert len(lines) == len(report["rows"])
    assert [line["thermal_state"] for line in lines].count("critical") == 1
