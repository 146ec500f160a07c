"""Databases for tests: a temp SQLite file, and a throwaway PostgreSQL cluster run as
the ``postgres`` user (initdb and postgres refuse to run as root; services.md).

A test that wants a migrated database gets a copy of one migrated once per process
(``migrate_to_head``): the migrations still run, against both backends, in every session,
and ``tests/store`` runs them step by step on empty databases; the other tests no longer
pay for them each time (about 0.2 s on SQLite and 1 s on PostgreSQL per test, more under
load)."""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.services.common import free_port, missing_service, provides


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


@pytest.fixture(scope="session")
@provides("postgres")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    initdb, postgres = _pg_bin("initdb"), _pg_bin("postgres")
    if not initdb or not postgres:
        missing_service("PostgreSQL binaries not found (apt-get install postgresql)")
    try:
        pg_user = pwd.getpwnam("postgres")
    except KeyError:
        missing_service("no 'postgres' system user (apt-get install postgresql)")
    as_root = os.getuid() == 0
    # Not under pytest's tmp dir: that one is 0700 root and the postgres user must enter.
    base = Path(tempfile.mkdtemp(prefix="anefarm-pg-"))
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    if as_root:
        os.chown(base, pg_user.pw_uid, pg_user.pw_gid)
        os.chown(sock, pg_user.pw_uid, pg_user.pw_gid)
    run_as: dict[str, Any] = (
        {"user": "postgres", "group": "postgres", "extra_groups": []} if as_root else {}
    )
    subprocess.run(
        [initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"],
        check=True,
        capture_output=True,
        **run_as,
    )
    port = free_port()
    proc = subprocess.Popen(
        [postgres, "-D", str(data), "-p", str(port), "-k", str(sock),
         "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
         "-c", "full_page_writes=off"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **run_as,
    )  # fmt: skip
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    import psycopg

    deadline = time.monotonic() + 30
    while True:
        try:
            psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres").close()
            break
        except psycopg.OperationalError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail("PostgreSQL did not start")
            time.sleep(0.1)
    yield url
    # SIGQUIT: immediate shutdown, no shutdown checkpoint (seconds with a session's
    # databases): the cluster is deleted next.
    proc.send_signal(signal.SIGQUIT)
    proc.wait(timeout=30)
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server: str) -> str:
    """A fresh, empty database for this test."""
    import psycopg

    name = "t_" + uuid.uuid4().hex[:12]
    dsn = pg_server.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return pg_server.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'anefarm.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """Runs a test once on SQLite and once on PostgreSQL (only that one marked postgres:
    pg_url is looked up at run time, so the marking hook cannot see it)."""
    fixture = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
def sessions(db_url: str) -> Iterator[Any]:
    """A session factory on a migrated database, once on SQLite and once on PostgreSQL."""
    from orchestrator.store.engine import make_engine, session_factory

    migrate_to_head(db_url)
    engine = make_engine(db_url)
    yield session_factory(engine)
    engine.dispose()


# One template per process and backend (an xdist worker is a process with its own servers):
# SQLite file path, or (server DSN → template database name).
_sqlite_template: list[Path] = []
_pg_templates: dict[str, str] = {}


def migrate_to_head(url: str) -> None:
    """Give the database at ``url`` — new, never used — the schema ``upgrade(url)`` would:
    a copy of a database migrated to head once per process (SQLite: the backup API;
    PostgreSQL: ``CREATE DATABASE … TEMPLATE``, after dropping the empty one)."""
    if url.startswith("sqlite:///"):
        target = Path(url.removeprefix("sqlite:///"))
        if target.exists() and target.stat().st_size:
            raise ValueError(f"{target} is not a new database: migrate_to_head would overwrite it")
        target.parent.mkdir(parents=True, exist_ok=True)
        with (
            contextlib.closing(sqlite3.connect(_sqlite_template_path())) as source,
            contextlib.closing(sqlite3.connect(target)) as copy,
        ):
            source.backup(copy)
        return
    server, _, name = url.rpartition("/")
    import psycopg

    dsn = f"{server}/postgres".replace("postgresql+psycopg://", "postgresql://")
    template = _pg_template(server, dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        used = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (name,)
        ).fetchone()
        if used and used[0]:
            raise ValueError(f"database {name} is in use: migrate_to_head needs a new one")
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')


def _sqlite_template_path() -> Path:
    from orchestrator.store.migrate import upgrade

    if not _sqlite_template:
        path = Path(tempfile.mkdtemp(prefix="anefarm-schema-")) / "anefarm.db"
        upgrade(f"sqlite:///{path}")
        atexit.register(shutil.rmtree, path.parent, ignore_errors=True)
        _sqlite_template.append(path)
    return _sqlite_template[0]


def _pg_template(server: str, dsn: str) -> str:
    import psycopg

    from orchestrator.store.migrate import upgrade

    if server not in _pg_templates:
        name = "template_" + uuid.uuid4().hex[:12]
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        upgrade(f"{server}/{name}")
        with psycopg.connect(dsn, autocommit=True) as conn:
            # A copy needs a template nobody is connected to; refuse connections from now on.
            conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
        _pg_templates[server] = name
    return _pg_templates[server]
