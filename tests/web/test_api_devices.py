"""``GET /api/v1/devices``: the live state in Redis (state, quarantine, heartbeat age, the
run in hand) beside the devices table; a device the table knows but Redis does not is
offline."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from orchestrator.protocol import livestate
from orchestrator.store import models as db
from orchestrator.store.engine import session_scope
from tests.web.conftest import Web, make_web


@pytest.fixture
def web(tmp_path: Path, sqlite_url: str, redis_url: str) -> Iterator[Web]:
    yield from make_web(tmp_path, sqlite_url, broker_url=redis_url)


def status(udid: str, product_type: str = "iPhone11,8") -> livestate.DeviceStatus:
    return livestate.DeviceStatus(
        udid=udid, product_type=product_type, chip="A12", os_version="17.5", os_build="21F79",
        name=f"SIMULATED {udid}", simulated=True, agent="agent-1", state="ready",
    )  # fmt: skip


def test_live_devices_and_known_ones(web: Web):
    client = livestate.connect(web.settings.broker_url or "")
    livestate.put_device(client, status("sim-1"), ttl_s=30)
    livestate.put_device(client, status("sim-2"), ttl_s=30)
    livestate.quarantine(client, "sim-2", "3 infra failures in a row")
    livestate.beat_agent(client, "agent-1", host="mac-1", simulated=True, ttl_s=30)
    with session_scope(web.sessions) as session:
        for udid in ("sim-1", "gone-1"):
            session.add(db.Device(udid=udid, product_type="iPhone11,8", chip="A12",
                                  simulated=True, agent="agent-1", state="ready",
                                  last_seen=datetime(2026, 11, 1, tzinfo=UTC)))  # fmt: skip

    body = web.client().get("/api/v1/devices", headers=web.auth("read")).json()
    assert body["broker"] is True
    live = {d["udid"]: d for d in body["live"]}
    assert live["sim-1"]["state"] == "ready" and live["sim-2"]["state"] == "quarantined"
    assert 0 <= live["sim-1"]["heartbeat_age_s"] < 30
    assert [a["name"] for a in body["agents"]] == ["agent-1"]
    known = {d["udid"]: d["state"] for d in body["known"]}
    assert known == {"sim-1": "ready", "gone-1": "offline"}
