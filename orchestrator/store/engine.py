"""Engines and sessions. SQLite gets WAL, a busy timeout and foreign keys on connect.

Database failures reach people as one :class:`StoreError` that names the database (its
password masked) and says what to do next: :func:`database_error` is that one wording,
used by sessions, migrations, the report and, as a last resort, the CLI.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    DisconnectionError,
    IntegrityError,
    InterfaceError,
    NoSuchTableError,
    OperationalError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from orchestrator.errors import StoreError, mask

SQLITE_BUSY_TIMEOUT_MS = 10_000  # two writer processes wait instead of "database is locked"
UNDEFINED_TABLE = "42P01"  # PostgreSQL's SQLSTATE for a missing table
FIX_URL = "check ANEFARM_DATABASE_URL"


def normalize_url(url: str) -> str:
    """Accept a bare SQLite path as well as a URL."""
    if "://" not in url:
        return f"sqlite:///{Path(url).expanduser().resolve()}"
    return url


def safe_url(url: str | URL) -> str:
    """The database URL as it may be printed: its password masked."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    try:
        return make_url(normalize_url(url)).render_as_string(hide_password=True)
    except ArgumentError:
        return mask(url)


def make_engine(url: str) -> Engine:
    url = normalize_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError as error:
        raise StoreError(
            f"not a database URL: {mask(url)!r}",
            hint=f"{FIX_URL}: sqlite:///path/anefarm.db or postgresql+psycopg://user@host/db",
        ) from error
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            _sqlite_directory(Path(parsed.database))
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    try:
        # A host that drops packets (rather than refusing) must not hang a command for the
        # OS's TCP timeout; the coordinator's ingest retries an outage on its own.
        connect_args = {"connect_timeout": 10} if parsed.get_backend_name() == "postgresql" else {}
        return create_engine(url, pool_pre_ping=True, connect_args=connect_args)
    except (ImportError, ArgumentError) as error:
        raise StoreError(
            f"cannot use database {parsed.render_as_string(hide_password=True)}: {error}",
            hint="for PostgreSQL: pip install 'anefarm[postgres]' and use postgresql+psycopg://",
        ) from error


def _sqlite_directory(database: Path) -> None:
    # SQLite creates the file but not its directory; a directory we cannot create would
    # otherwise surface later as "unable to open database file", naming nothing.
    try:
        database.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StoreError(
            f"cannot create the directory of the SQLite database {database}: {error.strerror}",
            hint="set ANEFARM_HOME or ANEFARM_DATABASE_URL to a place you can write",
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


def is_missing_schema(error: BaseException) -> bool:
    """True when ``error`` says a table is missing: a database nobody has migrated yet."""
    if isinstance(error, NoSuchTableError):
        return True
    orig = getattr(error, "orig", None)
    if getattr(orig, "sqlstate", None) == UNDEFINED_TABLE:  # psycopg 3
        return True
    return "no such table" in str(orig if orig is not None else error)


def database_error(error: BaseException, url: str | URL) -> StoreError:
    """One StoreError for a SQLAlchemy (or driver) error on the database at ``url``:
    which database, what went wrong in one line, and the setting or command that fixes it."""
    shown = safe_url(url)
    orig = getattr(error, "orig", None)
    cause = orig if orig is not None else error
    detail = mask(str(cause).strip().splitlines()[0] if str(cause).strip() else "")
    detail = detail or type(cause).__name__
    sqlstate = str(getattr(orig, "sqlstate", None) or "")
    if is_missing_schema(error):
        return StoreError(
            f"the database {shown} has no anefarm tables yet ({detail})",
            hint="`anefarm db upgrade` creates them; submit, profile and the coordinator do so too",
        )
    if sqlstate.startswith("28") or "authentication failed" in detail:
        return StoreError(
            f"cannot log in to the database {shown}: {detail}",
            hint=f"{FIX_URL}: its user and password",
        )
    if sqlstate == "3D000":
        return StoreError(
            f"the database {shown} does not exist: {detail}",
            hint="create it (createdb) or fix the database name in ANEFARM_DATABASE_URL",
        )
    if "unable to open database file" in detail:
        return StoreError(
            f"cannot open the SQLite database {shown}: {detail}",
            hint="its directory must exist and be writable: check ANEFARM_HOME or ANEFARM_DATABASE_URL",
        )
    if "database is locked" in detail:
        return StoreError(
            f"the database {shown} is locked: {detail}",
            hint="another anefarm process holds a long write; try again",
        )
    if isinstance(error, OperationalError | InterfaceError | DisconnectionError | PoolTimeout):
        return StoreError(
            f"cannot reach the database {shown}: {detail}",
            hint=f"is the database server running there? start it or {FIX_URL}, then `anefarm db upgrade`",
        )
    return StoreError(
        f"database error on {shown}: {detail}",
        hint=f"`anefarm db upgrade` brings the schema up to date; {FIX_URL}",
    )


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
        # ``from error``: db_outage walks the cause to tell a connection error.
        raise database_error(error, session.get_bind().engine.url) from error
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
