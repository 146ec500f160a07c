"""The deploy/ topology's services: a Redis set up as deploy/redis sets it up (ACL users,
AOF, TLS) and a PostgreSQL that wants SCRAM passwords, shared with tests/security."""

from tests.security.conftest import (  # noqa: F401 - fixtures, found by pytest by name
    scram_postgres,
    secure_redis_factory,
    tls_redis,
)
