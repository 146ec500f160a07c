"""The one Celery app of anefarm, built from Settings (never configured at import time).

Decisions (ARCHITECTURE, services.md): JSON only — a pickled message is refused;
acks late + reject on worker lost, so a batch whose worker dies goes back to the queue;
prefetch 1, so a busy device never hoards work; no result backend — results travel as
messages on the ``results`` queue; a visibility timeout well above the longest run (else
Redis hands a still-running batch to a second worker) and fast restore of unacked
messages (~5 s instead of kombu's default ~100 s).
"""

from __future__ import annotations

from collections.abc import Sequence

from celery import Celery

from orchestrator.settings import Settings

RUN_BATCH_TASK = "anefarm.run_batch"
INGEST_RESULT_TASK = "anefarm.ingest_result"
RESULTS_QUEUE = "results"
DEVICE_QUEUE_PREFIX = "device."


def device_class_queue(product_type: str) -> str:
    """Queue of a device class. ProductTypes contain a comma, which Redis and kombu
    accept in list names (tested end to end)."""
    return f"{DEVICE_QUEUE_PREFIX}{product_type}"


def device_queue(udid: str) -> str:
    """Queue of one device, for pinned work (e.g. a retry on a specific other device)."""
    return f"{DEVICE_QUEUE_PREFIX}{udid}"


def visibility_timeout_s(settings: Settings) -> int:
    # Twice the longest run plus a margin: a batch must never be handed out twice
    # while it still runs.
    return int(settings.run_timeout_s * 2 + 60)


def create_app(settings: Settings, *, name: str = "anefarm") -> Celery:
    if not settings.broker_url:
        raise ValueError("create_app needs a broker URL; resolve the embedded Redis first")
    app = Celery(name, broker=settings.broker_url, set_as_current=False)
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
        task_default_queue=RESULTS_QUEUE,
        task_create_missing_queues=True,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        task_send_sent_event=False,
        worker_enable_remote_control=True,
        broker_transport_options={
            "visibility_timeout": visibility_timeout_s(settings),
            "unacked_restore_interval": 2,
            "unacked_restore_throttle": 1,
        },
    )
    return app


def run_worker(
    app: Celery,
    queues: Sequence[str],
    *,
    hostname: str,
    loglevel: str = "WARNING",
    pool: str = "prefork",
) -> None:
    """Run a worker in this process until it is told to stop (SIGTERM: warm shutdown).

    ``prefork`` with ONE child on purpose: the batch runs in the child, so when the
    process running a batch dies (crash, OOM, SIGKILL) the parent survives and, with
    ``task_reject_on_worker_lost``, hands the batch back to its queue at once (~0.1 s,
    services.md). Only if the parent itself dies does the batch wait for the broker's
    visibility timeout, which must stay above the longest run.
    """
    worker = app.Worker(
        queues=list(queues),
        hostname=hostname,
        pool_cls=pool,
        concurrency=1,
        prefetch_multiplier=1,
        loglevel=loglevel,
        without_gossip=True,
        without_mingle=True,
        without_heartbeat=True,
        quiet=True,
    )
    worker.start()
    code = worker.exitcode
    if code:
        raise SystemExit(code)
