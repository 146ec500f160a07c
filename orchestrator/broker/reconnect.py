"""Surviving a Redis restart: a guard for a kombu 5.7 / Celery 5.7 reconnect crash.

When the broker connection drops, Celery 5.7's consumer first ``collect()``s the
connection (which detaches the transport from its client) and then ``close()``s it.
Closing the channel tries to hand the worker's unacknowledged messages back to their
queues, which needs a new Redis client built from the (now detached) connection info:
``AttributeError: 'NoneType' object has no attribute 'hostname'``. That error is not a
connection error, so it escapes and the worker exits with "Unrecoverable error". Any
worker holding an unacknowledged message at that moment dies: the coordinator always
does (it holds ingest messages), a device worker does whenever it runs a batch.

The guard: when the channel has lost its connection info, the restore is skipped and
the messages stay where Redis keeps them (the ``unacked`` hash), from where they come
back after the visibility timeout; anefarm does not wait for that: ingest is idempotent
and the coordinator's reaper re-publishes queued runs whose message is gone
(``orchestrator.reaper``), and a redelivered batch of a finished run is skipped by the
worker (``livestate.is_superseded``). The worker itself reconnects and goes on.

``tests/faults/test_redis_restart.py`` fails without this guard.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("anefarm.broker")


def install() -> None:
    """Patch kombu's Redis QoS once per process (idempotent)."""
    from kombu.transport import redis as kombu_redis

    if getattr(kombu_redis.QoS, "anefarm_guarded", False):
        return
    original: Callable[..., Any] = kombu_redis.QoS.restore_unacked

    def restore_unacked(self: Any, client: Any = None) -> Any:
        transport = getattr(self.channel, "connection", None)
        if client is None and (transport is None or getattr(transport, "client", None) is None):
            count = len(self._delivered)
            if count:
                log.warning(
                    "broker connection lost: %d unacknowledged message(s) stay in Redis "
                    "and are recovered after reconnecting",
                    count,
                )
            self._delivered.clear()
            return None
        return original(self, client)

    setattr(kombu_redis.QoS, "restore_unacked", restore_unacked)  # noqa: B010 - a patch
    setattr(kombu_redis.QoS, "anefarm_guarded", True)  # noqa: B010
