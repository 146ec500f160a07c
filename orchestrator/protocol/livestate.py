"""Live farm state in Redis: agent heartbeats, device states, quarantine flags.

Liveness is a key with a TTL: an agent or device that stops refreshing simply vanishes.
Agents write here (they hold no database credentials); the coordinator reads it to warn
about classes with no live device, to pick a different device for a retry, and for
``anefarm devices list``. Quarantine is decided by the coordinator and read by workers.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any

import redis

from orchestrator.protocol.results import DeviceInfo

AGENT_KEY = "anefarm:agent:{name}"
DEVICE_KEY = "anefarm:device:{udid}"
QUARANTINE_KEY = "anefarm:quarantine:{udid}"
BUSY_KEY = "anefarm:busy:{udid}"
SUPERSEDED_KEY = "anefarm:superseded:{run}"
FINAL_KEY = "anefarm:final:{run}"
CANCEL_KEY = "anefarm:cancelled:{job_id}"
CANCEL_TTL_S = 7 * 24 * 3600


class DeviceState(StrEnum):
    READY = "ready"
    BUSY = "busy"
    NOT_READY = "not_ready"
    QUARANTINED = "quarantined"
    OFFLINE = "offline"


@dataclass(frozen=True)
class DeviceIdentity:
    """What a device is, as its agent finds it: the start of every heartbeat and the
    ``DeviceInfo`` of every result."""

    udid: str
    product_type: str
    chip: str
    os_version: str
    os_build: str
    name: str
    simulated: bool

    def to_info(self) -> DeviceInfo:
        return DeviceInfo(
            udid=self.udid,
            product_type=self.product_type,
            os_version=self.os_version,
            os_build=self.os_build,
            name=self.name,
            simulated=self.simulated,
        )


@dataclass(frozen=True)
class DeviceStatus(DeviceIdentity):
    """A device's heartbeat: its identity, then where it is (flat JSON, identity first).
    Frozen: a reader overlays the busy and quarantine marks on a copy."""

    agent: str
    state: str
    reasons: list[str] = field(default_factory=list)
    last_seen: float = 0.0
    current_run: str | None = None
    pid: int | None = None  # the device worker's process, for operators and tests

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def connect(url: str) -> redis.Redis:
    # decode_responses: every value we keep is JSON text.
    from orchestrator.broker.embedded import client_url

    return redis.Redis.from_url(client_url(url), decode_responses=True, socket_timeout=10)


def beat_agent(client: redis.Redis, name: str, *, host: str, simulated: bool, ttl_s: int) -> None:
    body = {"name": name, "host": host, "simulated": simulated, "last_seen": time.time()}
    client.set(AGENT_KEY.format(name=name), json.dumps(body), ex=ttl_s)


def put_device(client: redis.Redis, status: DeviceStatus, *, ttl_s: int) -> None:
    seen = replace(status, last_seen=time.time())
    client.set(DEVICE_KEY.format(udid=status.udid), json.dumps(seen.to_json()), ex=ttl_s)


def set_busy(
    client: redis.Redis,
    udid: str,
    *,
    run_id: str,
    pid: int,
    ttl_s: int,
    attempt: int | None = None,
    worker_pid: int | None = None,
    packed: list[tuple[str, int]] | None = None,
) -> None:
    """Written by the process running a batch (the worker's pool child), apart from the
    heartbeat, which its parent process (``worker_pid``) keeps. ``packed``: the other runs
    (run id, attempt) of a packed batch, lost with it if the worker dies."""
    body: dict[str, Any] = {
        "run": run_id,
        "attempt": attempt,
        "pid": pid,
        "worker": worker_pid,
        "since": time.time(),
    }
    if packed:
        body["packed"] = [{"run": run, "attempt": n} for run, n in packed]
    client.set(BUSY_KEY.format(udid=udid), json.dumps(body), ex=max(1, ttl_s))


def lost_batches(client: redis.Redis) -> list[tuple[str, str, dict[str, Any]]]:
    """Busy marks whose worker is gone: the device has no heartbeat, or its heartbeat now
    comes from another worker process (the supervisor restarted a dead one). Each entry is
    (udid, the mark as stored, the mark parsed)."""
    workers = {
        body["udid"]: body.get("pid")
        for body in (json.loads(v) for v in _values(client, DEVICE_KEY.format(udid="*")))
    }
    prefix = BUSY_KEY.format(udid="")
    lost = []
    for key in sorted(client.scan_iter(match=BUSY_KEY.format(udid="*"), count=500)):
        raw = client.get(key)
        if raw is None:
            continue
        body = json.loads(raw)
        udid = str(key)[len(prefix) :]
        if body.get("worker") is not None and workers.get(udid) != body["worker"]:
            lost.append((udid, str(raw), body))
    return lost


def busy_marks(client: redis.Redis) -> list[dict[str, Any]]:
    """Every busy mark, parsed (``run``, ``attempt``, ``pid``, ``worker``, ``since``)."""
    return [json.loads(v) for v in _values(client, BUSY_KEY.format(udid="*"))]


def clear_busy_if(client: redis.Redis, udid: str, raw: str) -> None:
    """Remove a busy mark only if it is still the one read (a new worker may have set its own)."""
    key = BUSY_KEY.format(udid=udid)
    if client.get(key) == raw:
        client.delete(key)


def supersede(client: redis.Redis, run_id: str, attempt: int, *, ttl_s: int) -> None:
    """A lost attempt: its batch, if Redis hands it out again later, is skipped."""
    key = SUPERSEDED_KEY.format(run=run_id)
    client.sadd(key, str(attempt))
    client.expire(key, max(1, ttl_s))


def mark_final(client: redis.Redis, run_ids: list[str], *, ttl_s: int) -> None:
    """Runs that have their result (or were cancelled, or failed): a batch of theirs that
    Redis hands out again (a redelivery after a broker restart, a re-published copy) is
    skipped by the worker instead of spending device time on a result ingest would drop."""
    if not run_ids:
        return
    pipe = client.pipeline(transaction=False)
    for run_id in run_ids:
        pipe.set(FINAL_KEY.format(run=run_id), "1", ex=max(1, ttl_s))
    pipe.execute()


def is_superseded(client: redis.Redis, run_id: str, attempt: int) -> bool:
    """True when this attempt's batch must not run: given up, or its run is final."""
    pipe = client.pipeline(transaction=False)
    pipe.sismember(SUPERSEDED_KEY.format(run=run_id), str(attempt))
    pipe.exists(FINAL_KEY.format(run=run_id))
    given_up, final = pipe.execute()
    return bool(given_up) or bool(final)


@dataclass(frozen=True)
class BatchGate:
    """What a worker must know before it runs a batch, read in one round trip."""

    cancelled: bool
    quarantined: bool
    superseded: frozenset[tuple[str, int]]  # (run, attempt) given up or final


def batch_gate(
    client: redis.Redis, *, job_id: str, udid: str, runs: list[tuple[str, int]]
) -> BatchGate:
    """:func:`is_cancelled`, :func:`is_quarantined` and :func:`is_superseded` of every run of
    a batch in one pipeline: each round trip is a wait for the CPU on a loaded agent host,
    and this is on every batch's path (docs/performance.md)."""
    pipe = client.pipeline(transaction=False)
    pipe.exists(CANCEL_KEY.format(job_id=job_id))
    pipe.exists(QUARANTINE_KEY.format(udid=udid))
    for run_id, attempt in runs:
        pipe.sismember(SUPERSEDED_KEY.format(run=run_id), str(attempt))
        pipe.exists(FINAL_KEY.format(run=run_id))
    answers = pipe.execute()
    pairs = zip(answers[2::2], answers[3::2], strict=True)
    superseded = frozenset(
        run for run, (given_up, final) in zip(runs, pairs, strict=True) if given_up or final
    )
    return BatchGate(bool(answers[0]), bool(answers[1]), superseded)


def clear_busy(client: redis.Redis, udid: str) -> None:
    client.delete(BUSY_KEY.format(udid=udid))


def live_agents(client: redis.Redis) -> list[dict[str, Any]]:
    return [json.loads(v) for v in _values(client, AGENT_KEY.format(name="*")) if v]


def live_devices(client: redis.Redis) -> list[DeviceStatus]:
    quarantined = set(quarantined_udids(client))
    devices = []
    for value in _values(client, DEVICE_KEY.format(udid="*")):
        if not value:
            continue
        status = DeviceStatus(**json.loads(value))
        busy = client.get(BUSY_KEY.format(udid=status.udid))
        if busy:
            info = json.loads(busy)
            status = replace(
                status, state=DeviceState.BUSY, current_run=info["run"], pid=info["pid"]
            )
        if status.udid in quarantined:
            status = replace(status, state=DeviceState.QUARANTINED)
        devices.append(status)
    return sorted(devices, key=lambda d: (d.product_type, d.udid))


def _values(client: redis.Redis, pattern: str) -> list[str]:
    keys = sorted(client.scan_iter(match=pattern, count=500))
    return [str(v) for v in client.mget(keys) if v is not None] if keys else []


def quarantine(client: redis.Redis, udid: str, reason: str) -> None:
    client.set(QUARANTINE_KEY.format(udid=udid), json.dumps({"reason": reason, "at": time.time()}))


def release(client: redis.Redis, udid: str) -> bool:
    return bool(client.delete(QUARANTINE_KEY.format(udid=udid)))


def is_quarantined(client: redis.Redis, udid: str) -> bool:
    return bool(client.exists(QUARANTINE_KEY.format(udid=udid)))


def quarantined_udids(client: redis.Redis) -> list[str]:
    prefix = QUARANTINE_KEY.format(udid="")
    return [k[len(prefix) :] for k in client.scan_iter(match=prefix + "*", count=500)]


def mark_cancelled(client: redis.Redis, job_id: str) -> None:
    client.set(CANCEL_KEY.format(job_id=job_id), "1", ex=CANCEL_TTL_S)


def is_cancelled(client: redis.Redis, job_id: str) -> bool:
    return bool(client.exists(CANCEL_KEY.format(job_id=job_id)))
