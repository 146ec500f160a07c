"""Shared test set-up. Real services come from the plugins in ``tests/services``:
each starts a real process (redis-server, a Celery worker, PostgreSQL) and skips with a
reason when it is missing locally, but fails when ``CI=true``."""

import os
import zlib

import pytest

pytest_plugins = [
    "tests.services.common",
    "tests.services.databases",
    "tests.services.redis",
    "tests.services.celery",
]


# Device workers start their pool child by fork on Linux and by spawn on macOS (issue 14).
# Running every worker-starting test both ways would double the suite, so each test gets
# one of the two, chosen by its name (stable from run to run, half the tests each way);
# the main job and the iOS end-to-end test run under both explicitly. Set
# ANEFARM_TEST_START_METHOD=fork|spawn to run the whole suite one way.


@pytest.fixture(autouse=True)
def worker_start_method(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    method = os.environ.get("ANEFARM_TEST_START_METHOD") or (
        "spawn" if zlib.crc32(request.node.nodeid.encode()) % 2 else "fork"
    )
    monkeypatch.setenv("ANEFARM_WORKER_START_METHOD", method)
    print(f"device workers start their pool child by {method}")  # shown when a test fails
    return method
