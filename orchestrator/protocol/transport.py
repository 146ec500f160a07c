"""The one Celery app of anefarm, built from Settings (never configured at import time).

Decisions (ARCHITECTURE, services.md): JSON only — a pickled message is refused;
acks late + reject on worker lost, so a batch whose worker dies goes back to the queue;
prefetch 1, so a busy device never hoards work; no result backend — results travel as
messages on the ``results`` queue; a visibility timeout well above the longest run (else
Redis hands a still-running batch to a second worker) and fast restore of unacked
messages (seconds instead of kombu's default ~100 s).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from celery import Celery

from orchestrator.errors import ConfigError, ServiceError
from orchestrator.protocol import RunBatch, RunPurpose
from orchestrator.protocol.privileges import warn_if_root
from orchestrator.settings import Settings, require_broker_auth

RUN_BATCH_TASK = "anefarm.run_batch"
INGEST_RESULT_TASK = "anefarm.ingest_result"
# The results of one packed launch in one message ({"results": [RunBatchResult, …]}): each
# is ingested on its own, and the probe batches they plan are published packed.
INGEST_LAUNCH_TASK = "anefarm.ingest_launch"
RESULTS_QUEUE = "results"
DEVICE_QUEUE_PREFIX = "device."
# kombu's Redis transport spellings; redis+socket:// is a unix socket (EmbeddedRedis).
BROKER_SCHEMES = ("redis", "rediss", "redis+socket", "sentinel")
# How often (s) each consuming worker looks for unacked messages whose visibility
# timeout has passed. kombu's default (10 s, throttled to 10 s) makes a lost batch wait
# ~100 s after the timeout; 2 s keeps that wait short at the cost of one ZRANGE per 2 s.
UNACKED_RESTORE_INTERVAL_S = 2


def device_class_queue(product_type: str) -> str:
    """Queue of a device class, e.g. ``device.iPhone11,8``. The comma is fine: Redis list
    names are binary-safe and kombu routes by exact name (tested end to end)."""
    return f"{DEVICE_QUEUE_PREFIX}{product_type}"


def device_queue(udid: str) -> str:
    """Queue of one device, for pinned work (e.g. a retry on a specific other device)."""
    return f"{DEVICE_QUEUE_PREFIX}{udid}"


def visibility_timeout_s(settings: Settings) -> int:
    """Seconds a delivered, unacknowledged batch stays invisible to other workers.

    Twice the longest run plus a margin: a batch must never be handed out twice while
    it still runs. The margin is capped by the run time itself so short test timeouts
    stay short; with the default 900 s runs this is 1860 s.
    """
    run = settings.run_timeout_s
    return int(run * 2 + min(60.0, run)) + 1


def _checked_broker_url(settings: Settings) -> str:
    url = settings.broker_url
    if not url:
        raise ConfigError(
            "no broker URL to build the Celery app from",
            hint="set ANEFARM_BROKER_URL, or start the embedded one with resolve_broker()",
        )
    scheme = urlsplit(url).scheme
    if scheme not in BROKER_SCHEMES:
        raise ConfigError(
            f"broker URL scheme {scheme or '(none)'!r} is not Redis",
            hint="use redis://[:password@]host:port/db or rediss://… (TLS)",
        )
    require_broker_auth(url)  # no password off loopback: refused before any connection
    return url


# Publishing (a result, a retry, a probe batch) keeps trying through a short broker
# outage (a Redis restart takes seconds) instead of failing after Celery's default ~1 s;
# a publish that still fails is recovered by the coordinator's reaper (orchestrator.reaper).
PUBLISH_RETRY_POLICY = {
    "max_retries": 40,
    "interval_start": 0.2,
    "interval_step": 0.5,
    "interval_max": 2.0,
}


def create_app(settings: Settings, *, name: str = "anefarm") -> Celery:
    """A configured Celery app; tasks are registered on it by the caller."""
    from orchestrator.broker import reconnect

    reconnect.install()  # a Redis restart must not kill the worker (see that module)
    app = Celery(name, broker=_checked_broker_url(settings), set_as_current=False)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_concurrency=1,
        task_ignore_result=True,
        result_backend=None,
        # Anything published without a queue goes where the coordinator listens, never
        # to a "celery" queue nobody consumes.
        task_default_queue=RESULTS_QUEUE,
        task_create_missing_queues=True,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # a worker waits for its broker, for ever
        task_publish_retry=True,
        task_publish_retry_policy=PUBLISH_RETRY_POLICY,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        task_send_sent_event=False,
        # Kept on: `celery inspect ping` / app.control.ping is how tests and supervisors
        # know a worker is consuming.
        worker_enable_remote_control=True,
        broker_transport_options={
            "visibility_timeout": visibility_timeout_s(settings),
            "unacked_restore_interval": UNACKED_RESTORE_INTERVAL_S,
            "unacked_restore_throttle": 1,
        },
    )
    return app


def publish(
    app: Celery,
    task_name: str,
    payload: Mapping[str, Any],
    queue: str,
    *,
    task_id: str | None = None,
    countdown: float | None = None,
    priority: int | None = None,
    producer: Any = None,
) -> str:
    """Send ``payload`` (JSON) as the single argument of ``task_name`` to ``queue``.

    Returns the task id; pass ``task_id`` to make redeliveries recognisable (e.g. the
    batch id). A broker that cannot be reached is a ServiceError.
    """
    options: dict[str, Any] = {} if priority is None else {"priority": priority}
    if producer is not None:  # a PipelinedPublisher's: buffered, sent at its flush
        options["producer"] = producer
    try:
        result = app.send_task(
            task_name,
            args=[dict(payload)],
            queue=queue,
            task_id=task_id,
            countdown=countdown,
            serializer="json",
            **options,
        )
    except Exception as error:  # kombu/redis raise many kinds; all mean "not published"
        raise ServiceError(
            f"cannot publish {task_name} to {queue}: {error}",
            hint="is the broker (ANEFARM_BROKER_URL) running and reachable?",
        ) from error
    return str(result.id)


# Publishing a batch: the one path ------------------------------------------------------
# Redis priorities (kombu): 0 is served first. A device takes a probe batch only when no
# user batch waits in any of its queues, so bisection never delays user work by more than
# the one probe batch a device may be running (probes are single-op models: seconds).
USER_PRIORITY, PROBE_PRIORITY = 0, 9


def batch_route(batch: RunBatch, *, to_class: bool = False) -> tuple[str, int]:
    """Where a batch goes and at which priority: its pinned device's queue (unless
    ``to_class``: a device handing a batch back), else its class's; probes after users."""
    priority = PROBE_PRIORITY if batch.purpose is RunPurpose.PROBE else USER_PRIORITY
    if batch.pinned_udid and not to_class:
        return device_queue(batch.pinned_udid), priority
    return device_class_queue(batch.device_class), priority


def publish_batch(
    app: Celery,
    batch: RunBatch,
    *,
    countdown: float | None = None,
    to_class: bool = False,
    producer: Any = None,
) -> None:
    """Publish a batch (a submission, a retry, a probe, a re-published or handed-back
    copy): task id = batch id, so a copy in Redis is recognisable (orchestrator.delivery)."""
    queue, priority = batch_route(batch, to_class=to_class)
    try:
        publish(app, RUN_BATCH_TASK, batch.model_dump(mode="json"), queue,
                task_id=batch.batch_id, countdown=countdown, priority=priority,
                producer=producer)  # fmt: skip
    except ServiceError as error:
        raise ServiceError(
            f"cannot publish run {batch.run_id} to {queue}: {error.__cause__}",
            hint="is the broker (ANEFARM_BROKER_URL) running?",
        ) from error.__cause__


# kombu's Redis transport keeps a list per queue and priority step ("<queue>\x06\x16<step>",
# step 0 the bare name), pushes at the head and pops the tail, highest priority first.
PRIORITY_STEPS = (0, 3, 6, 9)


def next_batches(client: Any, queues: Sequence[str]) -> list[RunBatch]:
    """The batch each of ``queues`` would hand out next, read without taking it (one round
    trip): what a device worker prefetches the model of while it runs a batch. A message
    that is not a batch is passed over."""
    import base64
    import json

    pipe = client.pipeline(transaction=False)
    for queue in queues:
        for step in PRIORITY_STEPS:
            pipe.lindex(f"{queue}\x06\x16{step}" if step else queue, -1)
    answers = pipe.execute()
    found: list[RunBatch] = []
    for at in range(0, len(answers), len(PRIORITY_STEPS)):
        raw = next((a for a in answers[at : at + len(PRIORITY_STEPS)] if a), None)
        if raw is None:
            continue
        try:
            message = json.loads(raw)
            body = message["body"]
            if message.get("properties", {}).get("body_encoding") == "base64":
                body = base64.b64decode(body)
            found.append(RunBatch.model_validate(json.loads(body)[0][0]))
        except (ValueError, TypeError, KeyError, IndexError):
            continue
    return found


class Publisher(Protocol):
    """What the run lifecycle publishes through: Celery in a farm, a stub in tests."""

    def batch(
        self, batch: RunBatch, *, countdown: float | None = None, to_class: bool = False
    ) -> None: ...


@dataclass(frozen=True)
class CeleryPublisher:
    app: Celery

    def batch(
        self, batch: RunBatch, *, countdown: float | None = None, to_class: bool = False
    ) -> None:
        publish_batch(self.app, batch, countdown=countdown, to_class=to_class)


class PipelinedPublisher:
    """The Celery publish path with Redis round trips saved: batches are buffered in a
    kombu publish batch (a Redis pipeline) and sent ``max_size`` at a time and when the
    ``with`` block ends. A sweep's night publishes 1,200 batches: one round trip each
    cost seconds on a loaded machine (bench/sweeps.py). Leaving the block by an exception
    drops what was not sent yet: the runs are committed, so the coordinator's reaper
    publishes them again (orchestrator/redelivery.py)."""

    def __init__(self, app: Celery, max_size: int = 500) -> None:
        self.app, self.max_size = app, max_size
        self._stack = ExitStack()
        self._producer: Any = None

    def __enter__(self) -> PipelinedPublisher:
        self._producer = self._stack.enter_context(self.app.producer_or_acquire())
        self._stack.enter_context(self._producer.batch(max_size=self.max_size))
        return self

    def __exit__(self, *exc: object) -> None:
        self._producer = None
        try:
            self._stack.__exit__(*exc)  # type: ignore[arg-type]
        except Exception as error:  # kombu/redis raise many kinds: all "not published"
            raise ServiceError(
                f"cannot publish the buffered batches: {error}",
                hint="is the broker (ANEFARM_BROKER_URL) running? the reaper re-publishes them",
            ) from error

    def batch(
        self, batch: RunBatch, *, countdown: float | None = None, to_class: bool = False
    ) -> None:
        if self._producer is None:
            raise RuntimeError("PipelinedPublisher is used as a context manager")
        publish_batch(self.app, batch, countdown=countdown, to_class=to_class,
                      producer=self._producer)  # fmt: skip


@dataclass(frozen=True)
class Sent:
    """One message a :class:`StubPublisher` was given, routed as Celery would route it."""

    batch: RunBatch
    queue: str
    priority: int
    countdown: float | None


@dataclass
class StubPublisher:
    """Records batches in memory instead of sending them (dramatiq's StubBroker, for
    batches): lifecycle policy is tested on SQLite with no broker and no worker."""

    sent: list[Sent] = field(default_factory=list)

    def batch(
        self, batch: RunBatch, *, countdown: float | None = None, to_class: bool = False
    ) -> None:
        queue, priority = batch_route(batch, to_class=to_class)
        self.sent.append(Sent(batch, queue, priority, countdown))

    def queue(self, name: str) -> list[RunBatch]:
        """The batches sent to queue ``name``, in the order a worker would take them."""
        mine = [s for s in self.sent if s.queue == name]
        return [s.batch for s in sorted(mine, key=lambda s: s.priority)]  # stable: FIFO


def run_worker(
    app: Celery,
    queues: Sequence[str],
    *,
    hostname: str,
    loglevel: str = "WARNING",
    pool: str = "prefork",
    start_method: str | None = None,
) -> None:
    """Run a worker in this process, consuming ``queues``, until SIGTERM (warm shutdown).

    ``prefork`` with ONE child on purpose: the batch runs in the child, so when the
    process running a batch dies (crash, OOM, SIGKILL) the parent survives and, with
    ``task_reject_on_worker_lost``, hands the batch back to its queue at once (measured
    0.15-0.2 s; sometimes 4-5 s, when the pool's 5 s maintenance timer rather than the
    child's exit event notices the death). With ``solo``, or when the parent itself dies, the batch comes back only
    after the visibility timeout (plus up to ``UNACKED_RESTORE_INTERVAL_S``), restored by
    any other worker still consuming on the same Redis.
    """
    if pool not in ("prefork", "solo"):
        raise ConfigError(f"worker pool {pool!r} not supported", hint="use prefork or solo")
    if start_method is None:
        import billiard

        # The platform's own choice (spawn on macOS): what a Mac would do unless told.
        start_method = billiard.get_start_method()
    if start_method not in ("fork", "spawn"):
        raise ConfigError(
            f"worker start method {start_method!r} not supported", hint="use fork or spawn"
        )
    warn_if_root()  # once per process tree, not Celery's warning per worker (privileges.py)
    worker = app.Worker(
        pool_start_method=start_method,
        queues=list(queues),
        hostname=hostname,
        # One child, one batch prefetched: create_app's worker_concurrency and
        # worker_prefetch_multiplier, which the worker reads when not told otherwise.
        pool_cls=pool,
        loglevel=loglevel,
        # Gossip and mingle cost start-up time and broadcast traffic for nothing: a
        # device worker needs no knowledge of its peers.
        without_gossip=True,
        without_mingle=True,
        without_heartbeat=True,
        quiet=True,
    )
    worker.start()
    code = worker.exitcode
    if code:
        raise SystemExit(code)
