"""Real Celery workers for tests, each in its own subprocess, started like production
workers are (``python -c`` building the app from Settings, consuming given queues)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator

import pytest
import redis

WorkerStarter = Callable[..., subprocess.Popen[bytes]]

# A worker with test tasks: "echo" answers on the results queue, "sleep" holds the
# worker (for kill tests), both record deliveries in Redis so tests can count them.
WORKER_SOURCE = textwrap.dedent(
    """
    import os, sys, time, redis
    from orchestrator.celery_app import create_app, run_worker, RESULTS_QUEUE
    from orchestrator.settings import load_settings
    settings = load_settings(broker_url=os.environ["TEST_BROKER"], run_timeout_s=float(os.environ.get("TEST_RUN_TIMEOUT", "900")))
    app = create_app(settings)
    r = redis.Redis.from_url(os.environ["TEST_BROKER"])
    name = os.environ["TEST_WORKER_NAME"]

    @app.task(name="test.echo")
    def echo(payload):
        r.rpush("test:delivered", name)
        app.send_task("test.collect", args=[payload], queue="test-results")

    @app.task(name="test.sleep")
    def sleep(seconds, marker):
        r.rpush("test:started:" + marker, name)
        r.set("test:pid:" + marker, os.getpid())
        time.sleep(seconds)
        r.rpush("test:finished:" + marker, name)

    r.set("test:ready:" + name, "1")
    run_worker(app, sys.argv[1].split("|"), hostname=name + "@test")
    """
)


@pytest.fixture
def start_worker(redis_url: str) -> Iterator[WorkerStarter]:
    procs: list[subprocess.Popen[bytes]] = []
    client = redis.Redis.from_url(redis_url)

    def start(
        queues: list[str], *, name: str = "w1", run_timeout: float = 900
    ) -> subprocess.Popen[bytes]:
        env = {**os.environ, "TEST_BROKER": redis_url, "TEST_WORKER_NAME": name,
               "TEST_RUN_TIMEOUT": str(run_timeout)}  # fmt: skip
        proc = subprocess.Popen([sys.executable, "-c", WORKER_SOURCE, "|".join(queues)], env=env)
        procs.append(proc)
        deadline = time.monotonic() + 30
        while not client.exists(f"test:ready:{name}"):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"worker {name} did not start")
            time.sleep(0.05)
        time.sleep(0.5)  # the consumer attaches just after the ready mark
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
