"""Shared test set-up. Real services come from the plugins in ``tests/services``:
each starts a real process (redis-server, a Celery worker, PostgreSQL) and skips with a
reason when it is missing locally, but fails when ``CI=true``."""

pytest_plugins = [
    "tests.services.common",
    "tests.services.databases",
    "tests.services.redis",
    "tests.services.celery",
]
