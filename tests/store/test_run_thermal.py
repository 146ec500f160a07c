"""runs.thermal_state (migration 0011): added and dropped without touching a run's other
rows on SQLite and PostgreSQL, and written by ingest as the hotter of the runner's before
and after states (NULL when no runner reported one)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from orchestrator.ingest import Ingestor, IngestOutcome
from orchestrator.store import models as db
from orchestrator.store.engine import make_engine, session_factory, session_scope
from orchestrator.store.migrate import alembic_config, current_revision, upgrade
from tests.contract.generate_fixtures import valid
from tests.pipeline.ingesting import run_awaiting_result
from tests.store.rows_of_before import insert_model_and_job

NOW = datetime(2026, 11, 27, tzinfo=UTC)
SHA = "3f" * 32


def _write_0010_rows(url: str) -> uuid.UUID:
    """A finished run with a measurement, as code before 0011 wrote it (through Core)."""
    job_id, run_id = uuid.uuid4(), uuid.uuid4()
    engine = make_engine(url)
    t = db.Base.metadata.tables
    with engine.begin() as conn:
        insert_model_and_job(conn, sha=SHA, job_id=job_id, at=NOW, status="done", bisect="auto")
        conn.execute(
            t["runs"]
            .insert()
            .values(
                id=run_id,
                job_id=job_id,
                model_sha256=SHA,
                device_class="iPhone11,8",
                status="succeeded",
                attempts=1,
                max_attempts=3,
                infra_failure=False,
                created_at=NOW,
                purpose="user",
                os_build="22H20",
                runner_version="1.0",
            )
        )
        conn.execute(
            t["measurements"]
            .insert()
            .values(run_id=run_id, compute_units="all", samples_ms=[1.5, 2.5], count=2, p50=2.0)
        )
    engine.dispose()  # fmt: skip
    return run_id


def _columns(url: str) -> set[str]:
    engine = make_engine(url)
    with engine.connect() as conn:
        names = {c["name"] for c in sa.inspect(conn).get_columns("runs")}
    engine.dispose()
    return names


def _kept(url: str) -> list[tuple[Any, ...]]:
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = [*conn.execute(sa.text("SELECT id, status, os_build, runner_version FROM runs")),
                *conn.execute(sa.text("SELECT run_id, p50 FROM measurements"))]  # fmt: skip
    engine.dispose()
    return [tuple(str(v) for v in r) for r in rows]


def test_0011_adds_an_unknown_thermal_state_and_its_downgrade_keeps_the_runs(db_url: str) -> None:
    upgrade(db_url, "0010")
    run_id = _write_0010_rows(db_url)
    before = _kept(db_url)
    assert "thermal_state" not in _columns(db_url)
    upgrade(db_url, "0011")
    assert current_revision(db_url) == "0011" and "thermal_state" in _columns(db_url)
    assert _kept(db_url) == before
    upgrade(db_url)
    engine = make_engine(db_url)
    with session_scope(session_factory(engine)) as session:
        run = session.get(db.Run, run_id)
        assert run is not None and run.thermal_state is None  # old rows: unknown
        run.thermal_state = "serious"
    engine.dispose()
    command.downgrade(alembic_config(db_url), "0010")
    assert current_revision(db_url) == "0010"
    assert "thermal_state" not in _columns(db_url)
    # No rebuild of runs: on SQLite that would have cascaded into the measurements.
    assert _kept(db_url) == before


# -- ingest ---------------------------------------------------------------------------------

GOOD: dict[str, Any] = valid()["run-batch-result-ok"]


def _running_run(ingestor: Ingestor) -> dict[str, Any]:
    return run_awaiting_result(ingestor, db.RunStatus.RUNNING, {"compute_units": ["all"]})


def _stored(ingestor: Ingestor, message: dict[str, Any]) -> str | None:
    with ingestor.sessions() as session:
        run = session.get(db.Run, uuid.UUID(message["run_id"]))
        assert run is not None
        return run.thermal_state


@pytest.mark.parametrize(
    ("before", "after", "kept"),
    [("nominal", "fair", "fair"), ("serious", "nominal", "serious"),
     ("nominal", "nominal", "nominal"), ("fair", "critical", "critical")],
)  # fmt: skip
def test_ingest_stores_the_hotter_of_before_and_after(ingestor, before, after, kept):
    message = _running_run(ingestor)
    message["runner_result"]["thermal_before"] = before
    message["runner_result"]["thermal_after"] = after
    assert ingestor.ingest(message) is IngestOutcome.STORED
    assert _stored(ingestor, message) == kept


def test_a_result_without_a_runner_result_stores_no_thermal_state(ingestor):
    message = _running_run(ingestor)
    message.update(outcome="infra_error", runner_result=None,
                   failure={"kind": "device_gone", "message": "unplugged", "infra": True})  # fmt: skip
    assert ingestor.ingest(message) is not IngestOutcome.INVALID
    assert _stored(ingestor, message) is None
