"""After the commit: what a lifecycle transaction decided, told to Redis and the broker.

A broker that fails here loses nothing: the runs are queued in the database, and the
reaper re-publishes a queued run whose message Redis does not hold
(orchestrator/reaper.py, orchestrator/redelivery.py).
"""

from __future__ import annotations

import logging

import redis

from orchestrator.errors import ServiceError
from orchestrator.protocol import livestate
from orchestrator.protocol.transport import Publisher
from orchestrator.runs.lifecycle import Effects

log = logging.getLogger(__name__)


def apply(
    effects: Effects, *, publisher: Publisher, client: redis.Redis | None, final_ttl_s: int
) -> None:
    """Quarantine, final marks (workers skip batches of final runs), then the batches.
    ``client`` None: no Redis (lifecycle tests with a stub publisher)."""
    try:
        if client is not None:
            if effects.quarantine:
                udid, reason = effects.quarantine
                livestate.quarantine(client, udid, reason)
                log.warning("device %s quarantined: %s", udid, reason)
            livestate.mark_final(client, effects.finished, ttl_s=final_ttl_s)
        for batch, countdown in effects.sends:
            publisher.batch(batch, countdown=countdown)
    except (ServiceError, redis.RedisError) as error:
        message = error.one_line() if isinstance(error, ServiceError) else str(error)
        log.warning("after commit: %s; the reaper re-publishes what is missing", message)


def final_mark_ttl_s(run_timeout_s: float) -> int:
    # As long as Redis may hand out an old delivery again (the visibility timeout).
    return int(2 * run_timeout_s + 3600)
