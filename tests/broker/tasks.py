"""Tasks run by the test workers: they record what happened in Redis so tests can count."""

from __future__ import annotations

import os
import time
from typing import Any

import redis
from celery import Celery

from orchestrator.broker.embedded import client_url
from orchestrator.protocol.transport import INGEST_RESULT_TASK, RESULTS_QUEUE, publish

ECHO_TASK = "test.echo"
HOLD_TASK = "test.hold"


def register(app: Celery) -> None:
    """``test.echo`` answers on the results queue; ``test.hold`` keeps the worker busy."""
    store = redis.Redis.from_url(client_url(str(app.conf.broker_url)))

    @app.task(name=ECHO_TASK, bind=True)  # type: ignore[untyped-decorator,unused-ignore]
    def echo(task: Any, payload: dict[str, Any]) -> None:
        store.rpush("test:delivered", str(payload.get("marker", "")))
        answer = {"echo": payload, "worker": task.request.hostname}
        publish(app, INGEST_RESULT_TASK, answer, RESULTS_QUEUE, task_id=f"answer-{task.request.id}")

    @app.task(name=HOLD_TASK, bind=True)  # type: ignore[untyped-decorator,unused-ignore]
    def hold(task: Any, payload: dict[str, Any]) -> None:
        marker = payload["marker"]
        store.rpush(f"test:started:{marker}", task.request.hostname)
        store.set(f"test:pid:{marker}", os.getpid())
        time.sleep(float(payload["seconds"]))
        store.rpush(f"test:finished:{marker}", task.request.hostname)


def register_accepting_pickle(app: Celery) -> None:
    """The control for the pickle test: the same tasks on an app that trusts pickle."""
    app.conf.accept_content = ["json", "pickle"]
    register(app)


def register_batch_recorder(app: Celery) -> None:
    """``anefarm.run_batch`` that only records the order batches arrive in (purpose:run)."""
    from orchestrator.protocol.transport import RUN_BATCH_TASK

    store = redis.Redis.from_url(client_url(str(app.conf.broker_url)))

    @app.task(name=RUN_BATCH_TASK, bind=True)  # type: ignore[untyped-decorator,unused-ignore]
    def run_batch(task: Any, payload: dict[str, Any]) -> None:
        store.rpush("test:batches", f"{payload['purpose']}:{payload['run_id']}")
