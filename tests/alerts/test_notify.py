"""Webhooks through a real socket: a local HTTP server records what it is sent and answers
as told (200, 500, …)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import select

from orchestrator.alerts import notify
from orchestrator.errors import shown_url
from orchestrator.settings import load_settings
from orchestrator.store import models as db
from tests.alerts.nightfarm import CLASSES, Point, make_sweep, summaries

SLOW = CLASSES[1]


@dataclass
class Hook:
    """What the server received per path, and the status codes it answers in turn."""

    url: str
    received: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    answers: dict[str, list[int]] = field(default_factory=dict)
    # Cleared: the server holds every answer until it is set again.
    go: threading.Event = field(default_factory=threading.Event)

    def at(self, path: str, *answers: int) -> str:
        self.answers[path] = list(answers)
        return self.url + path


@pytest.fixture
def hook() -> Iterator[Hook]:
    state = Hook(url="")
    state.go.set()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.go.wait(timeout=20)
            with lock:
                state.received.setdefault(self.path, []).append(body)
                queue = state.answers.get(self.path, [])
                code = queue.pop(0) if len(queue) > 1 else (queue[0] if queue else 200)
            self.send_response(code)
            self.end_headers()
            self.wfile.write(b"ok" if code < 300 else b"down")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def settings(tmp_path, **kw):
    return load_settings(home=tmp_path, notify_backoff_s=0.01, notify_timeout_s=2.0, **kw)


def test_a_failing_webhook_is_retried_with_backoff_until_it_answers(
    hook: Hook, tmp_path: Any
) -> None:
    url = hook.at("/flaky", 500, 503, 200)
    waits: list[float] = []
    done = notify.post(url, {"x": 1}, fmt="json", settings=settings(tmp_path), sleep=waits.append)
    assert done.ok and done.attempts == 3 and done.http_status == 200
    assert len(hook.received["/flaky"]) == 3
    assert waits == [0.01, 0.02]  # doubling


def test_a_client_error_is_not_retried_and_a_dead_host_ends_failed(hook, tmp_path):
    done = notify.post(hook.at("/gone", 404), {}, fmt="json", settings=settings(tmp_path))
    assert not done.ok and done.attempts == 1 and done.http_status == 404
    dead = notify.post("http://127.0.0.1:9/x", {}, fmt="json",
                       settings=settings(tmp_path, notify_attempts=2))  # fmt: skip
    assert not dead.ok and dead.attempts == 2 and "ConnectError" in (dead.error or "")


def test_the_stored_target_hides_a_slack_token():
    shown = shown_url("https://hooks.slack.com/services/T000/B000/XXXXsecret")
    assert shown == "https://hooks.slack.com/services/…" and "secret" not in shown


def test_one_message_per_summary_and_a_failing_webhook_never_fails_the_night(
    hook, sqlite_url, tmp_path
):
    from orchestrator.store.engine import make_engine, session_factory
    from orchestrator.store.migrate import upgrade

    upgrade(sqlite_url)
    sessions = session_factory(make_engine(sqlite_url))
    notify_to = [
        {"webhook": hook.at("/json"), "format": "json"},
        {"webhook": hook.at("/slack"), "format": "slack"},
        {"webhook": hook.at("/down", 500), "format": "json"},
    ]
    sweep = make_sweep(sessions, tmp_path, notify=notify_to)
    sweep.settings = settings(tmp_path, notify_attempts=3)
    for _ in range(7):
        sweep.add_night(lambda s, c: Point())
        sweep.analyse()
    assert hook.received == {}  # quiet nights: nothing to say
    # Two causes tonight: a slowed class, and a model that stops compiling on the other.
    job = sweep.add_night(lambda s, c: Point(median=11.5) if c == SLOW else
                          Point(failed="compile failed" if s == "tagger" else None))  # fmt: skip
    outcome = sweep.analyse()
    assert outcome.state == "analysed"
    found = summaries(sessions)
    assert len(found) == 2
    assert sorted(m["alert"] for m in hook.received["/json"]) == [s.id for s in found]
    assert len(hook.received["/slack"]) == 2
    assert all(set(m) == {"text"} and "anefarm [SIMULATED]" in m["text"]
               for m in hook.received["/slack"])  # fmt: skip
    assert len(hook.received["/down"]) == 2 * 3  # each message retried up to 3 attempts
    with sessions() as session:
        assert session.get(db.Job, job).status == db.JobStatus.DONE
        rows = session.scalars(select(db.NotificationDelivery)).all()
    assert sorted((r.format, r.ok, r.attempts) for r in rows) == sorted(
        [("json", True, 1)] * 2 + [("slack", True, 1)] * 2 + [("json", False, 3)] * 2
    )
    # The next night updates the open alerts: nobody is told again.
    sweep.add_night(lambda s, c: Point(median=11.5) if c == SLOW else
                    Point(failed="compile failed" if s == "tagger" else None))  # fmt: skip
    sweep.analyse()
    assert len(hook.received["/json"]) == 2


def test_the_coordinator_sends_in_the_background_so_a_slow_webhook_holds_up_nothing(
    hook, sqlite_url, tmp_path
):
    from orchestrator.alerts.night import analyse_night
    from orchestrator.store.engine import make_engine, session_factory
    from orchestrator.store.migrate import upgrade

    upgrade(sqlite_url)
    sessions = session_factory(make_engine(sqlite_url))
    sweep = make_sweep(sessions, tmp_path, notify=[{"webhook": hook.at("/slow")}])
    for _ in range(7):
        sweep.add_night(lambda s, c: Point())
        sweep.analyse()
    sweep.add_night(lambda s, c: Point(median=11.5 if c == SLOW else 10.0))
    sweep.analyse(confirm=True)  # the night's confirmation first, as in the farm
    hook.go.clear()  # the webhook answers nothing until told
    job = sweep.nights[-1]
    with sessions() as session:
        session.query(db.AlertSummary).delete()  # analysed again: the summary is new again
        session.commit()
    outcome = analyse_night(job, settings=sweep.settings, sessions=sessions, background=True)
    assert outcome.state == "analysed" and outcome.sender is not None
    assert outcome.sender.is_alive()  # returned while the webhook still holds the message
    hook.go.set()
    outcome.sender.join(timeout=20)
    with sessions() as session:
        (delivery,) = session.scalars(select(db.NotificationDelivery)).all()
    assert delivery.ok and len(hook.received["/slow"]) == 2  # the first night's and now
