"""An Ingestor on a migrated database and a real Redis, with the stub publisher: for tests
of what ingest writes (a plugin of tests/conftest.py, so any test can ask for ``ingestor``),
and ``run_awaiting_result``: the rows a result message needs before ingest takes it."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from orchestrator.ingest import Ingestor
from orchestrator.protocol import livestate
from orchestrator.protocol.transport import StubPublisher, create_app
from orchestrator.settings import load_settings
from orchestrator.store import models as db
from orchestrator.store.engine import make_engine, session_factory, session_scope
from orchestrator.store.migrate import upgrade
from tests.contract.generate_fixtures import valid

CREATED = datetime(2026, 11, 27, tzinfo=UTC)


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


def run_awaiting_result(
    ingestor: Ingestor, status: db.RunStatus, spec: dict[str, Any], **run: Any
) -> dict[str, Any]:
    """The contract fixture's ok result message for a fresh run of ``ingestor``'s database:
    its model (once), a running job with ``spec`` and the run in ``status`` (``run``: more
    of the run's columns) are stored first, as submit and dispatch would have left them."""
    message = copy.deepcopy(valid()["run-batch-result-ok"])
    run_id, job_id = uuid.uuid4(), uuid.uuid4()
    message["run_id"], message["job_id"] = str(run_id), str(job_id)
    sha = message["runner_result"]["model_sha256"]
    with session_scope(ingestor.sessions) as session:
        if session.get(db.Model, sha) is None:
            session.add(db.Model(sha256=sha, filename="m.mlpackage", format="mlpackage",
                                 size_bytes=3, created_at=CREATED))  # fmt: skip
        session.add(db.Job(id=job_id, created_at=CREATED, selector="A12", spec=spec,
                           status=db.JobStatus.RUNNING, bisect=db.BisectMode.NEVER))  # fmt: skip
        session.flush()
        session.add(db.Run(id=run_id, job_id=job_id, model_sha256=sha, status=status,
                           device_class=message["device"]["product_type"], created_at=CREATED,
                           **run))  # fmt: skip
    return message
