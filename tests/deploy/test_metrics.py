"""GET /metrics on the coordinator app: figures read from a real Redis and database at
scrape time, ingest counters, the read rule, and the Grafana dashboard drawing only
metrics the app exports."""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from orchestrator.ops import metrics
from orchestrator.protocol import livestate
from orchestrator.settings import load_settings
from orchestrator.store import models as db
from orchestrator.store.engine import make_engine, session_factory, session_scope
from orchestrator.store.migrate import upgrade
from orchestrator.web import tokens
from orchestrator.web.app import create_app

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "anefarm.json"
XR = "iPhone11,8"
T0 = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture
def farm(tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.delenv(metrics.MULTIPROC_ENV, raising=False)
    url = f"sqlite:///{tmp_path / 'anefarm.db'}"
    upgrade(url)
    engine = make_engine(url)
    sessions = session_factory(engine)
    settings = load_settings(home=tmp_path, broker_url=redis_url, database_url=url)
    yield settings, sessions
    engine.dispose()


def _runs(sessions: Any, statuses: list[db.RunStatus]) -> None:
    with session_scope(sessions) as session:
        job = db.Job(id=uuid.uuid4(), created_at=T0, status="running", selector=XR,
                     spec={"compute_units": ["all"]}, bisect="auto")  # fmt: skip
        model = db.Model(sha256="ab" * 32, filename="m.mlpackage", format="mlpackage",
                         size_bytes=1, created_at=T0)  # fmt: skip
        session.add_all([job, model])
        for status in statuses:
            session.add(db.Run(id=uuid.uuid4(), job_id=job.id, model_sha256=model.sha256,
                               device_class=XR, status=status, created_at=T0, purpose="user"))  # fmt: skip


def _scrape(client: TestClient, headers: dict[str, str] | None = None) -> dict[Any, Any]:
    response = client.get("/metrics", headers=headers or {})
    assert response.status_code == 200, response.text
    samples: dict[Any, Any] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_metrics_read_the_farm_at_scrape_time(farm, redis_client):
    settings, sessions = farm
    _runs(sessions, [db.RunStatus.QUEUED, db.RunStatus.QUEUED, db.RunStatus.SUCCEEDED])
    redis_client.lpush(f"device.{XR}", "a", "b")
    redis_client.lpush(f"device.{XR}\x06\x169", "probe")  # a priority level of the same queue
    client = livestate.connect(settings.broker_url)
    status = livestate.DeviceStatus(udid="SIM-1", product_type=XR, chip="A12", os_version="18.7",
                                    os_build="22H20", name="XR", simulated=True, agent="mac-1",
                                    state=livestate.DeviceState.READY)  # fmt: skip
    livestate.put_device(client, status, ttl_s=30)
    livestate.beat_agent(client, "mac-1", host="mac", simulated=True, ttl_s=30)
    client.close()
    time.sleep(0.2)
    app = create_app(settings, sessions=sessions, bound_host="127.0.0.1")
    reader = tokens.create(sessions, name="prometheus", role=tokens.role_of("read"))
    samples = _scrape(TestClient(app), {"Authorization": f"Bearer {reader}"})
    assert samples[("anefarm_queue_depth", (("queue", f"device.{XR}"),))] == 3
    assert samples[("anefarm_queue_depth", (("queue", "results"),))] == 0
    assert samples[("anefarm_runs", (("status", "queued"),))] == 2
    assert samples[("anefarm_runs", (("status", "succeeded"),))] == 1
    assert samples[("anefarm_runs", (("status", "failed"),))] == 0
    assert samples[("anefarm_devices", (("device_class", XR), ("state", "ready")))] == 1
    age = samples[("anefarm_agent_heartbeat_age_seconds", (("agent", "mac-1"),))]
    assert 0.1 <= age < 10
    assert samples[("anefarm_alerts_open", ())] == 0
    assert samples[("anefarm_up", (("component", "broker"),))] == 1
    assert samples[("anefarm_up", (("component", "database"),))] == 1


def test_metrics_need_a_token_unless_reads_are_open(farm):
    settings, sessions = farm
    closed = TestClient(create_app(settings, sessions=sessions, bound_host="0.0.0.0"))
    assert closed.get("/metrics").status_code == 401


def test_a_broker_that_is_away_is_a_figure_not_a_failed_scrape(farm, tmp_path):
    settings, sessions = farm
    from tests.services.common import free_port

    away = settings.model_copy(update={"broker_url": f"redis://127.0.0.1:{free_port()}/0"})
    open_reads = away.model_copy(update={"open_reads": True})
    samples = _scrape(TestClient(create_app(open_reads, sessions=sessions, bound_host="127.0.0.1")))
    assert samples[("anefarm_up", (("component", "broker"),))] == 0
    assert samples[("anefarm_up", (("component", "database"),))] == 1


def test_ingest_is_timed_and_refusals_counted(farm, tmp_path):
    from orchestrator.ingest import Ingestor
    from orchestrator.protocol.transport import StubPublisher
    from orchestrator.protocol.transport import create_app as celery_app

    settings, sessions = farm
    app = celery_app(settings)
    redis = livestate.connect(settings.broker_url)
    ingestor = Ingestor(settings, sessions=sessions, app=app, client=redis,
                        publisher=StubPublisher())  # fmt: skip
    metrics.instrument(ingestor)
    _latency, rejected = metrics._Ingest.metrics()
    before = rejected.labels("invalid")._value.get()
    ingestor.ingest({"not": "a result"})
    assert rejected.labels("invalid")._value.get() == before + 1
    web = create_app(settings.model_copy(update={"open_reads": True}), sessions=sessions,
                     bound_host="127.0.0.1")  # fmt: skip
    samples = _scrape(TestClient(web))
    assert samples[("anefarm_results_rejected_total", (("reason", "invalid"),))] >= 1
    assert samples[("anefarm_ingest_seconds_count", (("outcome", "invalid"),))] >= 1
    redis.close()
    app.close()


def test_the_grafana_dashboard_draws_only_exported_metrics():
    dashboard = json.loads(DASHBOARD.read_text())
    exported = {"anefarm_queue_depth", "anefarm_runs", "anefarm_devices",
                "anefarm_agent_heartbeat_age_seconds", "anefarm_alerts_open", "anefarm_up",
                "anefarm_ingest_seconds_bucket", "anefarm_ingest_seconds_count",
                "anefarm_ingest_seconds_sum", "anefarm_results_rejected_total"}  # fmt: skip
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    used = {name for expr in exprs for name in re.findall(r"\banefarm_[a-z_]+", expr)}
    assert used and used <= exported, used - exported
    drawn = {m.removesuffix("_bucket").removesuffix("_count").removesuffix("_sum") for m in used}
    asked = {"anefarm_queue_depth", "anefarm_runs", "anefarm_ingest_seconds", "anefarm_devices",
             "anefarm_agent_heartbeat_age_seconds", "anefarm_alerts_open"}  # fmt: skip
    assert asked <= drawn, asked - drawn
    assert dashboard["title"] and dashboard["uid"]
