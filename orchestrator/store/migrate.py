"""Apply the Alembic migrations that ship inside the package (no alembic.ini needed).

Several processes may upgrade one database at the same moment (``anefarm submit`` while a
coordinator starts, two coordinators): each upgrade runs under a lock across processes —
a file lock beside a SQLite database, an advisory lock in PostgreSQL — so the second one
finds the schema current instead of adding a column twice.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from orchestrator.store.engine import database_error, make_engine, normalize_url

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # ConfigParser interpolation: a literal % in a password must be doubled.
    config.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return config


# Any constant: the key of PostgreSQL's advisory lock for migrations ("anefarm" in ASCII).
ADVISORY_LOCK_KEY = 0x616E656661726D


def upgrade(url: str, revision: str = "head") -> None:
    try:
        with _migration_lock(url):
            command.upgrade(alembic_config(url), revision)
    except SQLAlchemyError as error:
        raise database_error(error, url) from error


@contextlib.contextmanager
def _migration_lock(url: str) -> Iterator[None]:
    parsed = make_url(normalize_url(url))
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            yield
            return
        make_engine(url).dispose()  # creates the database's directory, or says why not
        lock_path = Path(parsed.database + ".migrate-lock")
        with lock_path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            yield
        return
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_LOCK_KEY})
    finally:
        engine.dispose()


def current_revision(url: str) -> str | None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except SQLAlchemyError as error:
        raise database_error(error, url) from error
    finally:
        engine.dispose()


def head_revision() -> str:
    """The newest revision this package ships (what ``upgrade`` brings a database to)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None, "the package ships its migrations"
    return head
