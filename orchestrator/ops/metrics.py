"""Prometheus ``/metrics`` of the coordinator app (deploy/grafana/anefarm.json draws them).

Two kinds of figures:

- **read at scrape time** from the truth (``FarmCollector``): queue depth per queue in
  Redis, runs by status and open alerts in the database, devices by state and class and
  each agent's heartbeat age from the live state. Nothing to keep in sync, nothing lost
  when the coordinator restarts; a component that does not answer reports
  ``anefarm_up{component=…} 0`` instead of failing the scrape.
- **counted as they happen** in the ingest (``instrument``): ingest latency by outcome and
  refused results by reason. The ingest runs in the coordinator's Celery pool child, the web
  app in its parent, so these use prometheus-client's multiprocess mode: the coordinator
  calls ``prepare_multiprocess`` before it forks, both processes write and read files in
  ``<home>/metrics``.
"""

from __future__ import annotations

import os
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from orchestrator.ingest import Ingestor
    from orchestrator.settings import Settings

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Ingest takes milliseconds (one transaction) unless the database is slow or away.
INGEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0)
OPEN_ALERTS = ("untriaged", "acknowledged")
_SUFFIX = "\x06\x16"  # kombu's separator before a priority level in a queue's list name


def prepare_multiprocess(home: Path) -> Path:
    """Make this process and its future children count into ``<home>/metrics`` (emptied:
    counts start at zero with each coordinator, as Prometheus expects of a restart).
    Call before prometheus_client is first imported, i.e. before ``instrument``."""
    directory = home / "metrics"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, exist_ok=True)
    os.environ[MULTIPROC_ENV] = str(directory)
    return directory


class _Ingest:
    """The counted metrics, created on first use (after ``prepare_multiprocess``)."""

    _made: tuple[Any, Any] | None = None

    @classmethod
    def metrics(cls) -> tuple[Any, Any]:
        if cls._made is None:
            from prometheus_client import Counter as PromCounter
            from prometheus_client import Histogram

            cls._made = (
                Histogram("anefarm_ingest_seconds", "Time to ingest one result, by outcome",
                          ["outcome"], buckets=INGEST_BUCKETS),
                PromCounter("anefarm_results_rejected", "Results from agents refused by ingest",
                            ["reason"]),
            )  # fmt: skip
        return cls._made


def instrument(ingestor: Ingestor) -> None:
    """Count what ``ingestor`` does: latency per result, refusals per reason."""
    latency, rejected = _Ingest.metrics()
    ingestor.on_rejected = lambda reason: rejected.labels(reason).inc()
    ingestor.on_ingested = lambda outcome, seconds: latency.labels(str(outcome)).observe(seconds)


class FarmCollector:
    """Gauges read from Redis and the database at each scrape."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session]) -> None:
        self.settings = settings
        self.sessions = sessions

    def describe(self) -> list[Any]:
        return []  # collected on demand only: no duplicate-name checks against live data

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        up = GaugeMetricFamily("anefarm_up", "Whether a component answered this scrape",
                               labels=["component"])  # fmt: skip
        for component, families in (("broker", self._broker), ("database", self._database)):
            try:
                found = list(families())
            except Exception:  # noqa: BLE001 - a component away is a figure, not an error
                up.add_metric([component], 0)
                continue
            up.add_metric([component], 1)
            yield from found
        yield up

    def _broker(self) -> Iterator[Any]:
        from orchestrator.protocol import livestate

        if not self.settings.broker_url:
            raise RuntimeError("no broker configured")
        client = livestate.connect(self.settings.broker_url)
        try:
            yield from self._broker_figures(client)
        finally:
            client.close()

    def _broker_figures(self, client: Any) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        from orchestrator.protocol import livestate
        from orchestrator.protocol.transport import DEVICE_QUEUE_PREFIX, RESULTS_QUEUE

        depth: Counter[str] = Counter()
        names = [*client.scan_iter(match=f"{DEVICE_QUEUE_PREFIX}*", count=500),
                 *client.scan_iter(match=f"{RESULTS_QUEUE}*", count=50)]  # fmt: skip
        for name in names:
            if client.type(name) == "list":
                depth[name.split(_SUFFIX, 1)[0]] += int(client.llen(name))
        depth.setdefault(RESULTS_QUEUE, 0)
        queues = GaugeMetricFamily("anefarm_queue_depth", "Batches (or results) waiting, "
                                   "per queue: device.<class>, device.<udid>, results",
                                   labels=["queue"])  # fmt: skip
        for name, count in sorted(depth.items()):
            queues.add_metric([name], count)
        yield queues
        devices = GaugeMetricFamily("anefarm_devices", "Live devices by state and class",
                                    labels=["state", "device_class"])  # fmt: skip
        by_state: Counter[tuple[str, str]] = Counter(
            (str(d.state), d.product_type) for d in livestate.live_devices(client)
        )
        for (state, device_class), count in sorted(by_state.items()):
            devices.add_metric([state, device_class], count)
        yield devices
        ages = GaugeMetricFamily("anefarm_agent_heartbeat_age_seconds",
                                 "Seconds since each live agent's last heartbeat (its clock)",
                                 labels=["agent"])  # fmt: skip
        now = time.time()
        for agent in livestate.live_agents(client):
            ages.add_metric([str(agent.get("name"))], max(0.0, now - float(agent["last_seen"])))
        yield ages

    def _database(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily
        from sqlalchemy import func, select

        from orchestrator.store import models as db

        with self.sessions() as session:
            by_status = dict(session.execute(
                select(db.Run.status, func.count()).group_by(db.Run.status)).all())  # fmt: skip
            open_alerts = session.scalar(
                select(func.count()).select_from(db.AlertSummary)
                .where(db.AlertSummary.status.in_(OPEN_ALERTS)))  # fmt: skip
        runs = GaugeMetricFamily("anefarm_runs", "Runs by status", labels=["status"])
        for status in db.RunStatus:
            runs.add_metric([status.value], int(by_status.get(status, 0)))
        yield runs
        yield GaugeMetricFamily("anefarm_alerts_open", "Alert summaries untriaged or "
                                "acknowledged", value=int(open_alerts or 0))  # fmt: skip


def render(settings: Settings, sessions: sessionmaker[Session]) -> tuple[bytes, str]:
    """The exposition text of one scrape, and its content type."""
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry
    from prometheus_client import generate_latest as latest

    directory = os.environ.get(MULTIPROC_ENV)
    if directory:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    else:
        registry = CollectorRegistry()
        registry.register(_Forward(REGISTRY.collect))
    registry.register(FarmCollector(settings, sessions))
    return latest(registry), CONTENT_TYPE_LATEST


class _Forward:
    """This process's own counted metrics (no multiprocess mode: `anefarm serve`)."""

    def __init__(self, collect: Callable[[], Iterable[Any]]) -> None:
        self.collect = collect
