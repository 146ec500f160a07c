"""Statuses and states are StrEnum columns (migration 0006): a database written before
reads the same after the upgrade, values come back as members, others are refused."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.exc import StatementError

from orchestrator.store import models as db
from orchestrator.store.engine import make_engine, session_factory, session_scope
from orchestrator.store.migrate import alembic_config, current_revision, upgrade
from tests.store.rows_of_before import insert_model_and_job

NOW = datetime(2026, 11, 25, tzinfo=UTC)
SHA = "e" * 64


def _write_0005_rows(url: str) -> tuple[str, str]:
    """Rows as code before 0006 wrote them: plain strings through Core."""
    job_id, run_id = uuid.uuid4(), uuid.uuid4()
    engine = make_engine(url)
    t = db.Base.metadata.tables
    with engine.begin() as conn:
        insert_model_and_job(conn, sha=SHA, job_id=job_id, at=NOW, status="running",
                             bisect="always")  # fmt: skip
        conn.execute(
            t["runs"].insert().values(
                id=run_id, job_id=job_id, model_sha256=SHA, device_class="iPhone11,8",
                status="failed", attempts=1, max_attempts=3, infra_failure=False,
                created_at=NOW, purpose="user", bisect_state="cancelled",
            )
        )  # fmt: skip
        conn.execute(
            t["run_attempts"].insert().values(
                run_id=run_id, attempt=1, udid="u", agent="a", outcome="infra_error",
                diagnostics=[], started_at=NOW, finished_at=NOW,
            )
        )  # fmt: skip
    engine.dispose()
    return str(job_id), str(run_id)


def _stored(url: str) -> list[tuple[object, ...]]:
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = [
            *conn.execute(sa.text("SELECT status, bisect FROM jobs")),
            *conn.execute(sa.text("SELECT status, bisect_state FROM runs")),
            *conn.execute(sa.text("SELECT outcome FROM run_attempts")),
        ]
    engine.dispose()
    return [tuple(r) for r in rows]


def test_a_database_from_before_reads_the_same_after_0006(db_url: str) -> None:
    upgrade(db_url, "0005")
    _job_id, run_id = _write_0005_rows(db_url)
    before = _stored(db_url)
    upgrade(db_url, "0006")
    assert current_revision(db_url) == "0006"
    assert _stored(db_url) == before  # no stored value changed
    upgrade(db_url)  # the ORM maps today's columns (later revisions add some to jobs)
    assert _stored(db_url) == before
    engine = make_engine(db_url)
    with session_scope(session_factory(engine)) as session:
        job = session.scalars(sa.select(db.Job)).one()
        run = session.get(db.Run, uuid.UUID(run_id))
        attempt = session.scalars(sa.select(db.RunAttempt)).one()
        assert job.status is db.JobStatus.RUNNING and job.bisect is db.BisectMode.ALWAYS
        assert run is not None
        # A str enum member equals its plain value, which mypy cannot see once `is` narrowed it.
        assert run.status is db.RunStatus.FAILED and run.status == "failed"  # type: ignore[comparison-overlap]
        assert run.bisect_state is db.BisectState.CANCELLED
        assert attempt.outcome is db.AttemptOutcome.INFRA_ERROR
        # Writers that assign the plain value keep working; it reads back as a member.
        run.status = "succeeded"  # type: ignore[assignment]
    with session_scope(session_factory(engine)) as session:
        assert session.scalars(sa.select(db.Run.status)).one() is db.RunStatus.SUCCEEDED
        run = session.get(db.Run, uuid.UUID(run_id))
        assert run is not None
        run.status = "exploded"  # type: ignore[assignment]
        with pytest.raises(StatementError, match="exploded"):
            session.flush()
        session.rollback()
    engine.dispose()


def test_downgrade_from_0006_to_0005_keeps_the_data(db_url):
    upgrade(db_url, "0005")
    _write_0005_rows(db_url)
    upgrade(db_url)
    before = _stored(db_url)
    command.downgrade(alembic_config(db_url), "0005")
    assert current_revision(db_url) == "0005"
    assert _stored(db_url) == before
