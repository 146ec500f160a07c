"""Engines and sessions. SQLite gets WAL, a busy timeout and foreign keys on connect."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from orchestrator.errors import StoreError

SQLITE_BUSY_TIMEOUT_MS = 10_000  # two writer processes wait instead of "database is locked"


def normalize_url(url: str) -> str:
    """Accept a bare SQLite path as well as a URL."""
    if "://" not in url:
        return f"sqlite:///{Path(url).expanduser().resolve()}"
    return url


def make_engine(url: str) -> Engine:
    url = normalize_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError as error:
        raise StoreError(f"not a database URL: {url!r}") from error
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    try:
        return create_engine(url, pool_pre_ping=True)
    except (ImportError, ArgumentError) as error:
        raise StoreError(
            f"cannot use database {parsed.render_as_string(hide_password=True)}: {error}",
            hint="for PostgreSQL: pip install 'anefarm[postgres]' and use postgresql+psycopg://",
        ) from error


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit on success, roll back on error, errors translated."""
    session = sessions()
    try:
        yield session
        session.commit()
    except IntegrityError:
        session.rollback()
        raise  # callers decide: a duplicate is often expected (idempotent ingest)
    except OperationalError as error:
        session.rollback()
        raise StoreError(
            f"database error: {error.orig}", hint="run `anefarm db upgrade`, check the URL"
        ) from error
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
