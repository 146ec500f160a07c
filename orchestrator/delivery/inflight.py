"""What Redis holds of the farm's work right now, and what a Redis restart orphaned.

The database says which runs are queued; Redis is where their batches actually are: in
a device queue (a list per queue, one more per Redis priority step), delivered and not
yet acknowledged (kombu's ``unacked`` hash), or running (a worker's busy mark). A queued
run whose batch is in none of these places has lost its message — Redis restarted
without persistence, a publish failed, or a process died between a commit and its
publish — and the coordinator's reaper publishes it again (``orchestrator.redelivery``).

A Redis restart *with* persistence keeps the ``unacked`` hash, but every consumer's
channel died with the old connection: those deliveries are orphans that kombu would only
hand back after the visibility timeout (~31 minutes by default). The reaper notices the
restart (Redis's ``run_id`` changed) and hands back at once every delivery older than the
restart.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from typing import Any

import redis
from celery import Celery

from orchestrator.delivery.recovery import hand_back
from orchestrator.protocol import livestate
from orchestrator.protocol.transport import DEVICE_QUEUE_PREFIX, RESULTS_QUEUE

log = logging.getLogger("anefarm.broker")

# kombu's Redis transport: where delivered, unacknowledged messages wait (defaults).
UNACKED_KEY = "unacked"
UNACKED_INDEX_KEY = "unacked_index"
RUN_ID_KEY = "anefarm:broker:run_id"  # the Redis server the reaper saw last


def batch_ids(client: redis.Redis) -> set[str]:
    """Task ids (= batch ids, ``<run>-a<attempt>``) of every device batch Redis holds:
    waiting in a device queue or delivered and not yet acknowledged."""
    found: set[str] = set()
    for key in client.scan_iter(match=f"{DEVICE_QUEUE_PREFIX}*", count=500):
        if client.type(key) != "list":
            continue
        for raw in client.lrange(key, 0, -1):
            found.add(_task_id(raw))
            found.update(_packed_ids(raw))
    for raw in client.hvals(UNACKED_KEY):
        try:
            message = json.loads(raw)[0]
        except (ValueError, TypeError, IndexError, KeyError):
            continue
        found.add(_task_id(message))
        found.update(_packed_ids(message))
    found.discard("")
    return found


def _packed_ids(raw: Any) -> set[str]:
    """The batch ids of the other runs a packed batch carries (its task id is its first
    run's): each is held while the packed message is."""
    payload = _first_arg(raw)
    packed = payload.get("packed") if isinstance(payload, dict) else None
    if not isinstance(packed, list):
        return set()
    return {f"{p.get('run_id')}-a{p.get('attempt')}" for p in packed if isinstance(p, dict)}


def result_ids(client: redis.Redis) -> set[str]:
    """``<run>-a<attempt>`` of every batch result waiting to be ingested (on the results
    queue, or delivered to the coordinator and not yet acknowledged)."""
    bodies = list(client.lrange(RESULTS_QUEUE, 0, -1))
    for raw in client.hvals(UNACKED_KEY):
        try:
            message, _exchange, routing_key = json.loads(raw)
        except (ValueError, TypeError):
            continue
        if routing_key == RESULTS_QUEUE:
            bodies.append(message)
    found = set()
    for raw in bodies:
        payload = _first_arg(raw)
        # One result, or the results of a packed launch (INGEST_LAUNCH_TASK).
        many = payload.get("results") if isinstance(payload, dict) else None
        for one in many if isinstance(many, list) else [payload]:
            if isinstance(one, dict) and "run_id" in one:
                found.add(f"{one['run_id']}-a{one.get('attempt')}")
    return found


def _first_arg(raw: Any) -> Any:
    """The first argument of a Celery task message (protocol 2, JSON, base64 body)."""
    try:
        message = json.loads(raw) if isinstance(raw, str | bytes) else raw
        body = message["body"]
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        return args[0] if args else None
    except (ValueError, TypeError, KeyError, IndexError):
        return None


def busy_runs(client: redis.Redis) -> set[str]:
    """Runs a worker says it is running now (its busy mark)."""
    runs = set()
    for raw in livestate.busy_marks(client):
        run = raw.get("run")
        if run:
            runs.add(str(run))
        runs.update(str(p.get("run")) for p in raw.get("packed") or [] if isinstance(p, dict))
    return runs


def _task_id(raw: Any) -> str:
    try:
        message = json.loads(raw) if isinstance(raw, str | bytes) else raw
        return str(message["headers"]["id"])
    except (ValueError, TypeError, KeyError):
        return ""


def restarted_at(client: redis.Redis) -> float | None:
    """When Redis (re)started, if it is not the server this was last asked of; else None.

    The first call on a fresh Redis answers its start as well, harmlessly: no delivery
    can be older than the server itself.
    """
    info = client.info("server")
    run_id = str(info["run_id"])
    if client.set(RUN_ID_KEY, run_id, get=True) == run_id:
        return None
    return time.time() - float(info["uptime_in_seconds"])


def restore_orphans(app: Celery, before: float) -> int:
    """Hand every delivery made before ``before`` back to its queue (kombu's own
    ``restore_by_tag``: a WATCH/MULTI transaction, so each is restored once)."""
    restored = hand_back(
        app, lambda channel, client: client.zrangebyscore(channel.unacked_index_key, 0, before)
    )
    if restored:
        log.warning("Redis restarted: handed %d orphaned delivery(ies) back", restored)
    return restored


def persistence_warning(client: redis.Redis) -> str | None:
    """A warning when the broker keeps no append-only file (``None`` when it does, or when
    it will not say: managed Redis often refuses CONFIG)."""
    try:
        answer = client.config_get("appendonly")
    except redis.RedisError:
        return None
    if str(answer.get("appendonly", "")).lower() == "yes":
        return None
    return (
        "the broker keeps no append-only file: a Redis restart loses every queued batch "
        "(anefarm publishes them again within a reaper pass or two, but work in flight runs "
        "twice); run Redis with `appendonly yes`"
    )
