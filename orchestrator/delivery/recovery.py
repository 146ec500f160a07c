"""Start-up recovery of the results a dead coordinator held (issue #12).

kombu's Redis transport emulates acks: a delivered message is kept in the hash
``unacked`` (delivery tag → [message, exchange, routing key]) with its delivery time in
the sorted set ``unacked_index`` until it is acked. When the whole coordinator dies
(SIGKILL, OOM, host crash) with an ingest message in hand, nobody acks it, and kombu
only hands it back once it is older than the visibility timeout — twice the run
timeout plus a margin, ~31 minutes by default — so its run would wait that long.

A starting coordinator therefore hands back at once every unacked message bound for the
``results`` queue, through kombu's own ``QoS.restore_by_tag`` (a WATCH/MULTI transaction:
a message is restored exactly once, even if a device worker's periodic restore of
visible messages runs at the same moment). That is safe because everything on
``results`` is idempotent: ingest is keyed by run and attempt and a final run takes no
second result; the reaper holds a Redis lock. If another coordinator is alive on the same
broker, a message it is ingesting right now is delivered a second time and ingested as
a duplicate. Device batches are never touched: a batch is only idempotent per device
worker, which has its own recovery (reject on worker lost, the coordinator's reaper).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from celery import Celery
from kombu.exceptions import KombuError
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import loads
from redis.exceptions import RedisError

from orchestrator.protocol.transport import RESULTS_QUEUE

log = logging.getLogger("anefarm.coordinator")


def hand_back(app: Celery, choose: Callable[[Any, Any], Iterable[Any]]) -> int:
    """Put the unacknowledged deliveries that ``choose(channel, client)`` names (delivery
    tags) back on their queues, through kombu's own ``restore_by_tag`` (each once); how
    many were."""
    restored = 0
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        with channel.conn_or_acquire() as client:
            for tag in list(choose(channel, client)):
                channel.qos.restore_by_tag(tag, client)
                restored += 1
    return restored


def restore_unacked(app: Celery, queue: str = RESULTS_QUEUE) -> int:
    """Put every unacknowledged message of ``queue`` back on it; how many were."""

    def of_queue(channel: Any, client: Any) -> Iterator[Any]:
        for tag, raw in client.hscan_iter(channel.unacked_key):
            if _queues_of(channel, raw) == {queue}:
                yield tag

    restored = hand_back(app, of_queue)
    if restored:
        log.warning("handed %d unacknowledged message(s) back to the %s queue", restored, queue)
    return restored


def restore_at_startup(app: Celery) -> int:
    """``restore_unacked`` for a coordinator that starts: a broker it cannot reach yet is
    no reason not to start (the messages still come back, after the visibility timeout)."""
    try:
        return restore_unacked(app)
    except (RedisError, KombuError, OSError) as error:
        log.warning("could not hand unacknowledged results back at start-up: %s", error)
        return 0


def _queues_of(channel: Any, raw: bytes) -> set[str]:
    """The queues an unacked entry would be restored to (kombu's own routing lookup);
    empty for an entry that cannot be read."""
    try:
        _message, exchange, routing_key = loads(bytes_to_str(raw))
        return {str(q) for q in channel._lookup(exchange, routing_key) if q}
    except (ValueError, TypeError):
        return set()
