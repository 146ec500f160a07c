"""An Ingestor on a migrated database and a real Redis, with the stub publisher: for tests
of what ingest writes (a plugin of tests/conftest.py, so any test can ask for ``ingestor``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.ingest import Ingestor
from orchestrator.protocol import livestate
from orchestrator.protocol.transport import StubPublisher, create_app
from orchestrator.settings import load_settings
from orchestrator.store.engine import make_engine, session_factory
from orchestrator.store.migrate import upgrade


@pytest.fixture
def ingestor(tmp_path: Path, redis_url: str, db_url: str) -> Iterator[Ingestor]:
    upgrade(db_url)
    engine = make_engine(db_url)
    settings = load_settings(home=tmp_path, broker_url=redis_url, database_url=db_url)
    app = create_app(settings)
    client = livestate.connect(redis_url)
    yield Ingestor(settings, sessions=session_factory(engine), app=app, client=client,
                   publisher=StubPublisher())  # fmt: skip
    client.close()
    app.close()
    engine.dispose()
