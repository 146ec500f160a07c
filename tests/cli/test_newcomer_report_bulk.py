"""`anefarm report` of a sweep night read three statements per row (measurements,
verdict, model): 3,603 statements for 1,200 runs. It now reads them for all the job's
runs at once, and each row says exactly what the one-run path (the run page, the API's
run) says."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import event, select

from bench.report import write_night
from orchestrator.report import report_model, report_row
from orchestrator.store import models as db
from orchestrator.store.engine import make_engine, session_factory


def _statements(url: str, job: str) -> tuple[int, str]:
    engine = make_engine(url)
    count = [0]

    def counted(*_: object) -> None:
        count[0] += 1

    event.listen(engine, "before_cursor_execute", counted)
    with session_factory(engine)() as session:
        report = report_model(session, job)
    engine.dispose()
    return count[0], report.model_dump_json()


def test_the_statements_do_not_grow_with_the_runs(tmp_path: Path) -> None:
    small = f"sqlite:///{tmp_path / 'small.db'}"
    large = f"sqlite:///{tmp_path / 'large.db'}"
    few, _ = _statements(small, write_night(small, 2))
    many, _ = _statements(large, write_night(large, 20))  # 120 runs, not 12
    assert many == few, (few, many)


def test_each_row_is_what_the_one_run_path_says(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'night.db'}"
    job = write_night(url, 4)
    sessions = session_factory(make_engine(url))
    with sessions() as session:
        bulk = {row.run: row for row in report_model(session, job).rows}
    with sessions() as session:
        runs = session.scalars(select(db.Run)).all()
        assert len(runs) == len(bulk) == 24
        for run in runs:
            alone = report_row(session, run)
            assert alone.model_dump(mode="json") == bulk[str(run.id)].model_dump(mode="json")
            assert alone.latency_ms and alone.verdict in {"FULL", "PARTIAL"}
