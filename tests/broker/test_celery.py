"""The Celery app over a real Redis with real worker processes."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
import redis
from kombu import Connection, Exchange, Producer

from orchestrator.celery_app import create_app, device_class_queue, visibility_timeout_s
from orchestrator.settings import load_settings

pytestmark = [pytest.mark.redis, pytest.mark.celery]


def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_json_round_trip_through_a_device_class_queue(redis_url, start_worker):
    queue = device_class_queue("iPhone11,8")  # a comma in the queue name
    start_worker([queue])
    app = create_app(load_settings(broker_url=redis_url))
    app.send_task("test.echo", args=[{"run": "r1", "ms": [1.5, 2.0]}], queue=queue)
    with app.connection_for_read() as conn:
        message = conn.SimpleQueue("test-results").get(timeout=20)
        body = message.payload
        message.ack()
    args = body[0] if isinstance(body, list) else body["args"]
    assert args == [{"run": "r1", "ms": [1.5, 2.0]}]
    assert message.content_type == "application/json"


def test_work_for_a_class_nobody_serves_waits_in_its_queue(redis_url, start_worker):
    start_worker([device_class_queue("iPhone11,8")])
    app = create_app(load_settings(broker_url=redis_url))
    app.send_task("test.echo", args=[{}], queue=device_class_queue("iPhone13,2"))
    client = redis.Redis.from_url(redis_url)
    time.sleep(1.0)
    assert client.llen("iPhone13,2".join(["device.", ""])) == 1
    assert client.llen("test:delivered") == 0


def test_a_pickled_message_is_refused(redis_url, start_worker):
    queue = device_class_queue("iPhone11,2")
    start_worker([queue])
    # Forge a pickle-serialized task message with kombu directly, as an attacker might.
    with Connection(redis_url) as conn:
        producer = Producer(
            conn, exchange=Exchange(queue, type="direct"), routing_key=queue, serializer="pickle"
        )
        producer.publish(
            [
                [{"evil": True}],
                {},
                {"callbacks": None, "errbacks": None, "chain": None, "chord": None},
            ],
            headers={
                "lang": "py",
                "task": "test.echo",
                "id": "pickled-1",
                "retries": 0,
                "argsrepr": "",
                "kwargsrepr": "",
                "origin": "test",
            },
            declare=[],
        )
    # A JSON message behind it still gets through: the worker survived and moved on.
    app = create_app(load_settings(broker_url=redis_url))
    app.send_task("test.echo", args=[{"ok": True}], queue=queue)
    client = redis.Redis.from_url(redis_url)
    assert wait_for(lambda: client.llen("test:delivered") >= 1)
    time.sleep(0.5)
    assert client.llen("test:delivered") == 1  # only the JSON one ran


def test_sigkill_of_the_process_running_a_task_redelivers_it(redis_url, start_worker):
    queue = device_class_queue("iPad8,1")
    start_worker([queue], name="first")
    app = create_app(load_settings(broker_url=redis_url))
    app.send_task("test.sleep", args=[2, "m1"], queue=queue)
    client = redis.Redis.from_url(redis_url)
    assert wait_for(lambda: client.llen("test:started:m1") == 1)
    os.kill(int(client.get("test:pid:m1")), signal.SIGKILL)
    killed_at = time.monotonic()
    assert wait_for(lambda: client.llen("test:started:m1") == 2, timeout=30)
    redelivered_after = time.monotonic() - killed_at
    assert wait_for(lambda: client.llen("test:finished:m1") == 1, timeout=30)
    assert client.llen("test:finished:m1") == 1  # ran to the end exactly once
    print(f"redelivery after SIGKILL: {redelivered_after:.2f} s")


def test_visibility_timeout_follows_the_longest_run():
    settings = load_settings(broker_url="redis://127.0.0.1:1/0", run_timeout_s=1200)
    app = create_app(settings)
    options = app.conf.broker_transport_options
    assert options["visibility_timeout"] == visibility_timeout_s(settings) > 1200
    assert app.conf.accept_content == ["json"]
    assert app.conf.task_acks_late and app.conf.task_reject_on_worker_lost
    assert app.conf.worker_prefetch_multiplier == 1
    json.dumps(dict(options))
