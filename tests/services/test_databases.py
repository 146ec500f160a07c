"""``migrate_to_head``: the copy a test gets is at head, like ``upgrade`` would leave it,
and its own: what one test writes, the next one's copy does not hold."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from orchestrator.store import models as db
from orchestrator.store.engine import make_engine, session_factory
from orchestrator.store.migrate import current_revision, upgrade
from tests.services.databases import migrate_to_head


def _jobs(url: str) -> int:
    engine = make_engine(url)
    try:
        with session_factory(engine)() as session:
            return int(session.scalar(select(func.count()).select_from(db.Job)) or 0)
    finally:
        engine.dispose()


def test_a_copy_is_at_head_and_holds_nothing_of_another(db_url: str, tmp_path: Path) -> None:
    migrate_to_head(db_url)
    reference = f"sqlite:///{tmp_path / 'upgraded.db'}"
    upgrade(reference)
    assert current_revision(db_url) == current_revision(reference) is not None

    engine = make_engine(db_url)
    with session_factory(engine)() as session:
        session.add(db.Job(created_at=datetime.now(UTC), selector="A12", spec={}))
        session.commit()
    engine.dispose()
    assert _jobs(db_url) == 1

    if db_url.startswith("sqlite"):
        other = f"sqlite:///{tmp_path / 'other.db'}"
    else:
        other = db_url.rsplit("/", 1)[0] + "/t_" + uuid.uuid4().hex[:12]
    migrate_to_head(other)  # PostgreSQL: DROP IF EXISTS, then the copy
    assert _jobs(other) == 0


def test_a_database_in_use_is_refused(sqlite_url: str) -> None:
    migrate_to_head(sqlite_url)
    with pytest.raises(ValueError, match="not a new database"):
        migrate_to_head(sqlite_url)
