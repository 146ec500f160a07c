"""The web app under FastAPI's TestClient, on a migrated database (SQLite, and PostgreSQL
through the ``db_url`` fixture), with tokens of each role at hand."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from orchestrator.settings import Settings, load_settings
from orchestrator.store.engine import make_engine, session_factory
from orchestrator.web import tokens
from orchestrator.web.app import create_app
from tests.services.databases import migrate_to_head


@dataclass
class Web:
    """One app on one database, and a way to make tokens and clients for it."""

    settings: Settings
    sessions: Any
    home: Path

    def token(self, role: str, name: str | None = None) -> str:
        return tokens.create(self.sessions, name=name or f"t-{role}", role=tokens.role_of(role))

    def client(
        self, *, bound_host: str | None = None, raise_errors: bool = True, **overrides: Any
    ) -> TestClient:
        """``raise_errors=False``: see the answer of a server error (500, 503) as a client
        would, instead of the exception the test client raises again."""
        settings = self.settings.model_copy(update=overrides) if overrides else self.settings
        app = create_app(settings, sessions=self.sessions, bound_host=bound_host)
        return TestClient(app, raise_server_exceptions=raise_errors)

    def auth(self, role: str) -> dict[str, str]:
        name = f"auth-{role}-{uuid.uuid4().hex[:8]}"  # a fresh token each time
        return {"Authorization": f"Bearer {self.token(role, name=name)}"}


def make_web(tmp_path: Path, database_url: str, **settings: Any) -> Iterator[Web]:
    migrate_to_head(database_url)  # a new database: a copy of one migrated once
    engine = make_engine(database_url)
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    yield Web(
        settings=load_settings(home=home, database_url=database_url, **settings),
        sessions=session_factory(engine),
        home=home,
    )
    engine.dispose()


@pytest.fixture
def web(tmp_path: Path, db_url: str) -> Iterator[Web]:
    """The app on SQLite, and once more on PostgreSQL."""
    yield from make_web(tmp_path, db_url)


@pytest.fixture
def web_sqlite(tmp_path: Path, sqlite_url: str) -> Iterator[Web]:
    """The app on SQLite only: for what does not depend on the database."""
    yield from make_web(tmp_path, sqlite_url)


AuthFor = Callable[[str], dict[str, str]]
