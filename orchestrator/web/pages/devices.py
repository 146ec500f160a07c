"""``/devices``: the farm's agents and devices — live state from Redis (state, readiness
reasons, heartbeat age, quarantine) over the devices table (what ingest last saw), with
each device's utilisation over the last 24 h and its recent failures from run attempts.

Redis being away is not an error of the page: the table still shows what the database
knows, and a note says that the live state is missing and why."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator import catalog
from orchestrator.protocol import livestate
from orchestrator.store import models as db
from orchestrator.web.deps import ContextDep, SessionDep, WebContext
from orchestrator.web.pages.common import page

router = APIRouter()
WINDOW = timedelta(hours=24)
RECENT_FAILURES = 5


@dataclass
class DeviceLine:
    udid: str
    product_type: str
    chip: str
    name: str | None
    os_version: str | None
    simulated: bool
    agent: str | None
    state: str  # live state, else the database's last word
    live: bool
    reasons: list[str] = field(default_factory=list)
    heartbeat_age_s: float | None = None
    current_run: str | None = None
    busy_s: float = 0.0
    attempts_24h: int = 0
    failures: list[db.RunAttempt] = field(default_factory=list)

    @property
    def utilisation(self) -> float:
        return min(1.0, self.busy_s / WINDOW.total_seconds())


@dataclass
class Fleet:
    devices: list[DeviceLine]
    agents: list[dict[str, Any]]
    live_error: str | None  # why the live state is missing, if it is

    def by_class(self) -> dict[str, dict[str, int]]:
        """Device class → state → count (the overview's fleet at a glance)."""
        out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for d in self.devices:
            out[d.product_type][d.state] += 1
        return {k: dict(v) for k, v in sorted(out.items())}


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def live_state(
    web: WebContext,
) -> tuple[list[livestate.DeviceStatus], list[dict[str, Any]], str | None]:
    """Devices and agents from Redis, or why they are unknown (the page still shows the
    database's devices)."""
    if not web.settings.broker_url:
        return [], [], "no broker configured (ANEFARM_BROKER_URL): live state unknown"
    try:
        client = web.redis()
        return livestate.live_devices(client), livestate.live_agents(client), None
    except (redis.RedisError, OSError) as error:
        return [], [], f"the live state in Redis is unreachable: {type(error).__name__}"


def fleet(session: Session, web: WebContext, *, now: datetime | None = None) -> Fleet:
    now = now or datetime.now(UTC)
    live, agents, error = live_state(web)
    lines: dict[str, DeviceLine] = {}
    for row in session.scalars(select(db.Device)):
        lines[row.udid] = DeviceLine(
            udid=row.udid, product_type=row.product_type, chip=row.chip, name=row.name,
            os_version=row.os_version, simulated=row.simulated, agent=row.agent,
            state="offline", live=False, reasons=list(row.reasons or []),
            heartbeat_age_s=(now - _utc(row.last_seen)).total_seconds() if row.last_seen else None,
        )  # fmt: skip
    wall = time.time()
    for status in live:
        line = lines.get(status.udid) or DeviceLine(
            udid=status.udid, product_type=status.product_type, chip=status.chip,
            name=status.name, os_version=status.os_version, simulated=status.simulated,
            agent=status.agent, state=status.state, live=True,
        )  # fmt: skip
        line.state, line.live, line.reasons = str(status.state), True, list(status.reasons)
        line.os_version, line.agent = status.os_version, status.agent
        line.heartbeat_age_s = wall - status.last_seen if status.last_seen else None
        line.current_run = status.current_run
        lines[status.udid] = line
    agents = [{**a, "heartbeat_age": wall - float(a.get("last_seen") or wall)} for a in agents]
    _attempts(session, lines, now)
    devices = sorted(lines.values(), key=lambda d: (d.product_type, d.udid))
    return Fleet(
        devices=devices, agents=sorted(agents, key=lambda a: str(a.get("name"))), live_error=error
    )


def _attempts(session: Session, lines: dict[str, DeviceLine], now: datetime) -> None:
    """Busy time and attempts per device over the window, and its latest failures."""
    since = now - WINDOW
    for attempt in session.scalars(select(db.RunAttempt).where(db.RunAttempt.finished_at >= since)):
        line = lines.get(attempt.udid)
        if line is None:
            continue
        start = max(_utc(attempt.started_at), since)
        line.busy_s += max(0.0, (_utc(attempt.finished_at) - start).total_seconds())
        line.attempts_24h += 1
    failed = session.scalars(
        select(db.RunAttempt)
        .where(db.RunAttempt.outcome != db.AttemptOutcome.OK)
        .order_by(db.RunAttempt.finished_at.desc())
        .limit(RECENT_FAILURES * max(1, len(lines)))
    )
    for attempt in failed:
        line = lines.get(attempt.udid)
        if line is not None and len(line.failures) < RECENT_FAILURES:
            line.failures.append(attempt)


@router.get("/devices", response_class=HTMLResponse)
def devices_page(request: Request, session: SessionDep, web: ContextDep) -> HTMLResponse:
    found = fleet(session, web)
    names = {d.product_type: d.name for d in catalog.DEVICES.values()}
    return page(request, "devices.html", title="Devices", fleet=found, class_names=names)
