"""The farm's devices: live state from Redis (state, reasons, heartbeat age, the run in
hand) beside the devices table (every device ever seen, its last report)."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter
from sqlalchemy import select

from orchestrator.store import models as db
from orchestrator.web import deps

router = APIRouter(tags=["devices"])


@router.get("/devices", summary="Devices: live (Redis) and known (database)")
def list_devices(
    web: deps.ContextDep, session: deps.SessionDep, _caller: deps.Reader
) -> dict[str, Any]:
    from orchestrator.protocol import livestate

    live: list[dict[str, Any]] = []
    agents: list[dict[str, Any]] = []
    broker = web.settings.broker_url is not None
    if broker:
        client = web.redis()
        now = time.time()
        for status in livestate.live_devices(client):
            row = status.to_json()
            row["heartbeat_age_s"] = round(now - status.last_seen, 1) if status.last_seen else None
            live.append(row)
        agents = livestate.live_agents(client)
    live_udids = {row["udid"] for row in live}
    known = [
        {
            "udid": d.udid,
            "product_type": d.product_type,
            "chip": d.chip,
            "os_version": d.os_version,
            "os_build": d.os_build,
            "name": d.name,
            "simulated": d.simulated,
            "agent": d.agent,
            "state": d.state if d.udid in live_udids else "offline",
            "reasons": d.reasons or [],
            "infra_failures_in_row": d.infra_failures_in_row,
            "last_seen": d.last_seen.isoformat() if d.last_seen else None,
        }
        for d in session.scalars(select(db.Device).order_by(db.Device.product_type, db.Device.udid))
    ]
    return {"broker": broker, "live": live, "agents": agents, "known": known}
