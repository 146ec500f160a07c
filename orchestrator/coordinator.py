"""The coordinator process: consumes the ``results`` queue and ingests each result, and
reaps batches stranded by devices that went away (``orchestrator.reaper``), and starts
sweeps' nights when they fall due (``orchestrator.sweeps.scheduler_loop``).

Runs as a Celery worker with concurrency 1 on ``results`` (ingest is cheap; one writer
keeps SQLite happy and ordering simple). Optionally serves the web app on a thread
(``--serve HOST:PORT``: the API, the dashboard, and the model downloads agents on other
hosts use).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from celery.exceptions import Reject
from celery.signals import worker_ready, worker_shutting_down

from orchestrator import reaper
from orchestrator.db_outage import DatabaseRetry, DatabaseUnavailable, budget_s
from orchestrator.delivery import inflight, recovery
from orchestrator.ingest import Ingestor
from orchestrator.ops import metrics
from orchestrator.protocol import livestate
from orchestrator.protocol.transport import (
    INGEST_LAUNCH_TASK,
    INGEST_RESULT_TASK,
    RESULTS_QUEUE,
    create_app,
    run_worker,
    visibility_timeout_s,
)
from orchestrator.settings import Settings
from orchestrator.store.engine import make_engine, session_factory
from orchestrator.store.migrate import upgrade
from orchestrator.sweeps.scheduler_loop import SchedulerThread

if TYPE_CHECKING:
    from orchestrator.web.server import WebServer

log = logging.getLogger("anefarm.coordinator")


def run_coordinator(
    settings: Settings,
    *,
    broker_url: str,
    serve: str | None = None,
    loglevel: str = "WARNING",
) -> None:
    # The web app's port first: a port in use stops the start before anything else.
    server = _bind_web(settings.model_copy(update={"broker_url": broker_url}), serve)
    upgrade(settings.resolved_database_url)
    engine = make_engine(settings.resolved_database_url)
    sessions = session_factory(engine)
    worker_settings = settings.model_copy(update={"broker_url": broker_url})
    app = create_app(worker_settings)
    ingestor = Ingestor(
        worker_settings, sessions=sessions, app=app, client=livestate.connect(broker_url)
    )
    # Sweep nights that ended while no coordinator analysed them (orchestrator/alerts),
    # webhooks included, before the fork; the pool is emptied after, so the forked ingest
    # child opens its own connections.
    from orchestrator.alerts.night import pending_nights

    ingestor.analyse_nights(pending_nights(sessions), background=False)
    engine.dispose()
    # /metrics (orchestrator/ops/metrics.py): the ingest child counts into files the web
    # app in this process reads; set up before the worker forks it.
    metrics.prepare_multiprocess(settings.home)
    metrics.instrument(ingestor)

    # A database outage must not lose a result (orchestrator/db_outage.py): ingest waits
    # for the database, and if it stays away the message goes back to the queue.
    database = DatabaseRetry(
        engine,
        budget_s=budget_s(settings.db_outage_budget_s, visibility_timeout_s(worker_settings)),
    )

    @app.task(name=INGEST_RESULT_TASK)  # type: ignore[untyped-decorator,unused-ignore]
    def ingest_result(payload: Any) -> str:
        try:
            return str(database.call(ingestor.ingest, payload))
        except DatabaseUnavailable as error:
            log.error("%s; the result goes back to the %s queue", error, RESULTS_QUEUE)
            raise Reject(str(error), requeue=True) from error

    @app.task(name=INGEST_LAUNCH_TASK)  # type: ignore[untyped-decorator,unused-ignore]
    def ingest_launch(payload: Any) -> str:
        # The results of one packed launch (agents/device_worker.py): each on its own.
        results = payload.get("results") if isinstance(payload, dict) else None
        if not isinstance(results, list):
            log.error("a packed launch's results without a list of results were dropped")
            return "invalid"
        try:
            return ",".join(str(o) for o in database.call(ingestor.ingest_launch, results))
        except DatabaseUnavailable as error:
            log.error("%s; the results go back to the %s queue", error, RESULTS_QUEUE)
            raise Reject(str(error), requeue=True) from error

    # Results a killed coordinator held come back now, not after the visibility timeout.
    recovery.restore_at_startup(app)

    warning = inflight.persistence_warning(ingestor.redis)
    if warning:
        log.warning("%s", warning)

    # Batches stranded by a device that went away are re-routed (orchestrator/reaper.py).
    every = reaper.interval_s(settings.heartbeat_ttl_s)
    reaper.register(app, ingestor, every)
    stop_reaper = reaper.start_timer(app, every)

    # Sweeps fire from here (orchestrator/sweeps/scheduler_loop.py). The thread starts
    # once the worker has forked its ingest child (a fork while the thread holds a lock,
    # an import's say, would hand the child a lock nobody releases); SIGTERM or Ctrl-C
    # stops it at once, before the worker's warm shutdown has finished.
    scheduler = SchedulerThread(worker_settings, broker_url=broker_url)
    worker_ready.connect(lambda **_: scheduler.start(), weak=False)
    worker_shutting_down.connect(lambda **_: scheduler.stopping.set(), weak=False)

    if server is not None:
        # Served from a thread started after the worker's fork, like the scheduler's.
        web = server
        worker_ready.connect(lambda **_: web.start(), weak=False)
        log.warning("serving the web app and artifacts at %s", server.url)
    try:
        # fork: the ingest task is registered in this function, which a spawned child never
        # runs (device workers are spawn-safe; the coordinator is not yet, and runs on Linux).
        run_worker(
            app, [RESULTS_QUEUE], hostname="coordinator@%h", loglevel=loglevel, start_method="fork"
        )
    finally:
        stop_reaper.set()
        scheduler.stop()
        if server is not None:
            server.stop()


def _bind_web(settings: Settings, serve: str | None) -> WebServer | None:
    """The web app (``--serve HOST:PORT``) on its bound socket, not serving yet."""
    if not serve:
        return None
    from orchestrator.web.server import WebServer, parse_address

    host, port = parse_address(serve)
    return WebServer(settings, host, port, log_requests=False)
