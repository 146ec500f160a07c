"""A summary closed as recovered tells the sweep's webhooks, as its opening did: the same
path (one POST per webhook and format, retried, a ``notification_deliveries`` row), through
a real local HTTP server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from orchestrator.store import models as db
from orchestrator.store.engine import make_engine, session_factory
from orchestrator.store.migrate import upgrade
from tests.alerts.nightfarm import CLASSES, Point, make_sweep, summaries
from tests.alerts.test_notify import Hook, hook, settings

__all__ = ["hook"]  # the fixture: a local webhook server

SLOW = CLASSES[1]


def slowed(factor: float) -> Callable[[str, str], Point]:
    return lambda series, cls: Point(median=10.0 * factor if cls == SLOW else 10.0)


def test_a_recovered_alert_is_sent_to_the_webhooks_that_heard_it_open(
    hook: Hook, sqlite_url: str, tmp_path: Any
) -> None:
    upgrade(sqlite_url)
    sessions = session_factory(make_engine(sqlite_url))
    notify_to = [
        {"webhook": hook.at("/json"), "format": "json"},
        {"webhook": hook.at("/slack"), "format": "slack"},
        {"webhook": hook.at("/flaky", 503, 200), "format": "json"},
    ]
    sweep = make_sweep(sessions, tmp_path, notify=notify_to, regress={"recovery_nights": 1})
    sweep.settings = settings(tmp_path, notify_attempts=3)
    for factor in [1.0] * 7 + [1.15]:  # quiet nights, then one class 15 % slower
        sweep.add_night(slowed(factor), noise=0.0)
        sweep.analyse()
    (summary,) = summaries(sessions)
    opened = hook.received["/json"][0]
    assert opened["alert"] == summary.id and opened["event"] == "raised"
    hook.at("/flaky", 503, 200)  # the recovery meets a 503 too
    recovered: list[int] = []
    for _ in range(4):
        sweep.add_night(lambda s, c: Point(), noise=0.0)
        recovered += sweep.analyse().recovered
    assert recovered == [summary.id]
    told = [m for m in hook.received["/json"] if m["event"] == "recovered"]
    assert len(told) == 1
    (message,) = told
    assert (message["alert"], message["status"], message["kind"], message["cause"]) == (
        summary.id, "recovered", opened["kind"], opened["cause"])  # fmt: skip
    assert message["simulated"] is True and message["findings"] == opened["findings"]
    assert message["night"] > opened["night"]
    slack = hook.received["/slack"][-1]["text"]
    assert "recovered*" in slack and "[SIMULATED]" in slack and "back to SAME" in slack
    assert [m["event"] for m in hook.received["/flaky"]] == [
        "raised",
        "raised",
        "recovered",
        "recovered",
    ]  # retried once each
    with sessions() as session:
        rows = session.scalars(
            select(db.NotificationDelivery).where(db.NotificationDelivery.summary_id == summary.id)
        ).all()
    assert sorted((r.format, r.ok, r.attempts) for r in rows) == sorted(
        [("json", True, 1), ("slack", True, 1), ("json", True, 2)] * 2
    )
