"""Migration 0008 reshapes the unused ``sweeps`` table into stored definitions and gives
jobs their night columns, on SQLite and PostgreSQL: rows of before survive the upgrade and
the downgrade, a stray sweep row becomes a paused, empty definition, and the unique key
holds one night per (sweep, scheduled time)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.exc import IntegrityError

from orchestrator.store.engine import make_engine
from orchestrator.store.migrate import alembic_config, current_revision, upgrade

NOW = datetime(2026, 11, 25, tzinfo=UTC)
UUID, TEXT, JSON, TIME = sa.Uuid(), sa.String(), sa.JSON(), sa.DateTime(timezone=True)


def _columns(table: str, **types: sa.types.TypeEngine[Any]) -> sa.TableClause:
    """The columns of ``table`` the test writes, as that revision has them."""
    return sa.table(table, *(sa.column(name, type_) for name, type_ in types.items()))


OLD_SWEEPS = _columns("sweeps", id=UUID, name=TEXT, selector=TEXT, models=JSON, spec=JSON,
                      created_at=TIME)  # fmt: skip
JOBS = _columns("jobs", id=UUID, created_at=TIME, status=TEXT, selector=TEXT, spec=JSON,
                purpose=TEXT, sweep_id=UUID, scheduled_for=TIME)  # fmt: skip


def _rows(url: str, query: str) -> list[tuple[object, ...]]:
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(sa.text(query))]
    engine.dispose()
    return rows


def test_0008_keeps_rows_of_before_and_back(db_url: str) -> None:
    upgrade(db_url, "0007")
    stray, job = uuid.uuid4(), uuid.uuid4()
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(OLD_SWEEPS.insert().values(id=stray, name="old", selector="A12",
                                                models=[], spec={}, created_at=NOW))  # fmt: skip
        conn.execute(JOBS.insert().values(id=job, created_at=NOW, status="done", selector="A12",
                                          spec={}, purpose="user"))  # fmt: skip
    engine.dispose()

    upgrade(db_url)
    assert _rows(db_url, "SELECT paused, schedule, timezone FROM sweeps") == [
        (True, "0 0 * * *", "UTC")
    ]
    (name,) = _rows(db_url, "SELECT name FROM sweeps")[0]
    assert str(name).startswith("sweep-")
    assert _rows(db_url, "SELECT j.status, j.late, j.scheduled_for, r.series FROM jobs j "
                         "LEFT JOIN runs r ON r.job_id = j.id") == [("done", False, None, None)]  # fmt: skip

    command.downgrade(alembic_config(db_url), "0007")
    assert current_revision(db_url) == "0007"
    assert _rows(db_url, "SELECT selector FROM sweeps") == [("",)]
    assert _rows(db_url, "SELECT status FROM jobs") == [("done",)]
    upgrade(db_url)


def test_one_night_per_sweep_and_scheduled_time(db_url: str) -> None:
    upgrade(db_url)
    sweep = uuid.uuid4()
    engine = make_engine(db_url)
    sweeps = _columns("sweeps", id=UUID, name=TEXT, definition=JSON, schedule=TEXT,
                      created_at=TIME, updated_at=TIME)  # fmt: skip
    with engine.begin() as conn:
        conn.execute(sweeps.insert().values(id=sweep, name="s", definition={}, schedule="0 2 * * *",
                                            created_at=NOW, updated_at=NOW))  # fmt: skip

    def night(when: datetime | None, sweep_id: uuid.UUID | None = sweep) -> None:
        with engine.begin() as conn:
            conn.execute(JOBS.insert().values(id=uuid.uuid4(), created_at=NOW, status="queued",
                                              selector="A12", spec={}, purpose="user",
                                              sweep_id=sweep_id, scheduled_for=when))  # fmt: skip

    night(NOW)
    with pytest.raises(IntegrityError):
        night(NOW)
    night(NOW.replace(day=26))  # another night of the sweep
    night(None, None)  # plain jobs never collide
    night(None, None)
    engine.dispose()
