"""The Celery app over a real Redis with real worker processes."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis
from celery import Celery
from kombu.connection import Connection
from kombu.entity import Exchange
from kombu.messaging import Producer

from orchestrator.errors import ConfigError, ServiceError
from orchestrator.protocol.transport import (
    INGEST_RESULT_TASK,
    RESULTS_QUEUE,
    UNACKED_RESTORE_INTERVAL_S,
    create_app,
    device_class_queue,
    device_queue,
    publish,
    visibility_timeout_s,
)
from orchestrator.settings import Settings, load_settings
from tests.broker.tasks import ECHO_TASK, HOLD_TASK, register, register_accepting_pickle
from tests.services.common import free_port

TASKS = "tests.broker.tasks:register"


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def next_result(app: Celery, timeout: float = 20) -> tuple[Any, dict[str, Any], str]:
    """Take one raw message off the results queue, as the coordinator's consumer would."""
    with app.connection_for_read() as conn:
        message = conn.SimpleQueue(RESULTS_QUEUE).get(timeout=timeout)
        message.ack()
        return message.payload, message.headers, message.content_type


def test_json_round_trip_through_a_device_class_queue_to_results(
    celery_app_factory, start_worker, redis_client
):
    queue = device_class_queue("iPhone11,8")  # a comma in the queue name
    start_worker(TASKS, [queue])
    app = celery_app_factory()
    payload = {"marker": "r1", "ms": [1.5, 2.0], "name": "résumé"}
    task_id = publish(app, ECHO_TASK, payload, queue, task_id="batch-1")
    assert task_id == "batch-1"
    body, headers, content_type = next_result(app)
    assert content_type == "application/json"
    assert headers["task"] == INGEST_RESULT_TASK
    assert headers["id"] == "answer-batch-1"
    assert body[0] == [{"echo": payload, "worker": "w1@test"}]


def test_work_for_a_class_nobody_serves_waits_until_one_comes(
    celery_app_factory, start_worker, redis_client
):
    start_worker(TASKS, [device_class_queue("iPhone11,8")], name="a12")
    app = celery_app_factory()
    waiting = device_class_queue("iPhone13,2")
    publish(app, ECHO_TASK, {"marker": "for-a14"}, waiting)
    # Published after it, for the class that has a worker: once that one is delivered,
    # the running worker has had its chance to take the A14 work, and left it.
    publish(app, ECHO_TASK, {"marker": "for-a12"}, device_class_queue("iPhone11,8"))
    assert wait_for(lambda: redis_client.llen("test:delivered") == 1)
    assert redis_client.lrange("test:delivered", 0, -1) == [b"for-a12"]
    assert redis_client.llen(waiting) == 1
    start_worker(TASKS, [waiting, device_queue("00008101-000A")], name="a14")
    assert wait_for(lambda: redis_client.llen("test:delivered") == 2)
    assert redis_client.lrange("test:delivered", 1, -1) == [b"for-a14"]
    assert redis_client.llen(waiting) == 0


def _publish_pickled(url: str, queue: str, marker: str) -> None:
    """Forge a complete Celery (protocol 2) task message, pickle-serialized."""
    with Connection(url) as conn:
        producer = Producer(
            conn, exchange=Exchange(queue, type="direct"), routing_key=queue, serializer="pickle"
        )
        producer.publish(
            [[{"marker": marker}], {}, {"callbacks": None, "errbacks": None, "chain": None}],
            headers={
                "lang": "py",
                "task": ECHO_TASK,
                "id": f"pickled-{marker}",
                "retries": 0,
                "argsrepr": "",
                "kwargsrepr": "",
                "origin": "test",
            },
            declare=[Exchange(queue, type="direct")],
        )


def test_a_pickled_message_is_refused(celery_app_factory, start_worker, redis_url, redis_client):
    queue = device_class_queue("iPhone11,2")
    worker = start_worker(TASKS, [queue])
    _publish_pickled(redis_url, queue, "pickled")
    # A JSON message behind it still runs: the worker survived the refusal and moved on.
    publish(celery_app_factory(), ECHO_TASK, {"marker": "json"}, queue)
    # One worker, one queue, first in first out: the JSON message ran after the pickled
    # one was taken, so nothing of the pickled one can still come.
    assert wait_for(lambda: redis_client.llen("test:delivered") >= 1)
    assert redis_client.lrange("test:delivered", 0, -1) == [b"json"]
    assert redis_client.llen(queue) == 0  # refused and dropped, not left to loop
    assert "pickle" in worker.log()  # celery says why it refused


def test_the_forged_pickle_message_would_run_on_an_app_that_trusts_pickle(
    start_worker, redis_url, redis_client
):
    """The control for the test above: the forged message is a valid task message."""
    queue = device_class_queue("iPhone11,2")
    # Celery refuses to run a pickle-accepting worker as root unless forced.
    start_worker(register_accepting_pickle, [queue], env={"C_FORCE_ROOT": "1"})
    _publish_pickled(redis_url, queue, "pickled")
    assert wait_for(lambda: redis_client.lrange("test:delivered", 0, -1) == [b"pickled"])


def test_sigkill_of_the_process_running_a_batch_requeues_it_at_once(
    celery_app_factory, start_worker, redis_client
):
    queue = device_class_queue("iPad8,1")
    start_worker(TASKS, [queue], name="first")
    publish(celery_app_factory(), HOLD_TASK, {"marker": "m1", "seconds": 1.5}, queue)
    assert wait_for(lambda: redis_client.exists("test:pid:m1") == 1)
    os.kill(int(redis_client.get("test:pid:m1") or -1), signal.SIGKILL)  # the pool child
    killed_at = time.monotonic()
    assert wait_for(lambda: redis_client.llen("test:started:m1") == 2, timeout=10)
    requeued_after = time.monotonic() - killed_at
    assert wait_for(lambda: redis_client.llen("test:finished:m1") == 1, timeout=10)
    # A second task behind it: once it has run, a third delivery of m1 would have too.
    publish(celery_app_factory(), HOLD_TASK, {"marker": "m2", "seconds": 0}, queue)
    assert wait_for(lambda: redis_client.llen("test:finished:m2") == 1, timeout=10)
    assert redis_client.llen("test:started:m1") == 2  # killed once, redelivered once
    assert redis_client.llen("test:finished:m1") == 1  # ran to the end exactly once
    print(f"\nredelivery after SIGKILL of the pool child: {requeued_after:.2f} s")
    # Usually ~0.2 s; up to ~5 s when the pool's 5 s maintenance timer notices the death.
    assert requeued_after < 8


@pytest.mark.slow
@pytest.mark.parametrize("pool", ["solo", "prefork"])
def test_a_killed_worker_s_batch_goes_to_another_worker_after_the_visibility_timeout(
    celery_app_factory, start_worker, redis_client, pool
):
    # A short "longest run" so the visibility timeout it controls is a few seconds.
    settings = {"run_timeout_s": 2}
    visibility = visibility_timeout_s(load_settings(broker_url="redis://x", **settings))
    queue = device_class_queue("iPhone12,1")
    first = start_worker(TASKS, [queue], name="first", pool=pool, settings=settings)
    publish(celery_app_factory(**settings), HOLD_TASK, {"marker": "m2", "seconds": 60}, queue)
    assert wait_for(lambda: redis_client.llen("test:started:m2") == 1)
    started_at = time.monotonic()
    first.kill()  # the whole worker, parent and child: nobody is left to requeue it
    # Started after the delivery, so the second worker cannot have received it directly.
    start_worker(TASKS, [queue], name="second", pool=pool, settings=settings)
    bound = visibility + 2 * UNACKED_RESTORE_INTERVAL_S + 5
    assert wait_for(lambda: redis_client.llen("test:started:m2") == 2, timeout=bound)
    redelivered_after = time.monotonic() - started_at
    assert redis_client.lrange("test:started:m2", 0, -1) == [b"first@test", b"second@test"]
    print(
        f"\n{pool}: redelivered {redelivered_after:.2f} s after start (visibility {visibility} s)"
    )
    # Not before the visibility timeout: the settings object controls it.
    assert redelivered_after >= visibility - 1


def test_settings_control_the_broker_transport_options():
    short = create_app(load_settings(broker_url="redis://127.0.0.1:1/0", run_timeout_s=10))
    long = create_app(load_settings(broker_url="redis://127.0.0.1:1/0", run_timeout_s=1200))
    assert short.conf.broker_transport_options["visibility_timeout"] == 31
    assert long.conf.broker_transport_options["visibility_timeout"] == 2461
    options = long.conf.broker_transport_options
    assert 1 <= options["unacked_restore_interval"] <= 5
    assert options["unacked_restore_throttle"] == 1
    assert long.conf.accept_content == ["json"] == long.conf.result_accept_content
    assert long.conf.task_acks_late and long.conf.task_reject_on_worker_lost
    assert long.conf.worker_prefetch_multiplier == 1
    assert long.conf.result_backend is None


@pytest.mark.parametrize(
    "url",
    [
        "redis://:s3cret@10.0.0.5:6380/2",
        "rediss://user:s3cret@broker.example:6380/0?ssl_cert_reqs=required",
        "redis+socket:///run/anefarm/redis.sock",
    ],
)
def test_any_redis_url_is_taken_as_given(url):
    assert create_app(load_settings(broker_url=url)).conf.broker_url == url


@pytest.mark.parametrize("url", [None, "amqp://guest@localhost//", "localhost:6379"])
def test_a_missing_or_non_redis_broker_url_is_a_config_error(url):
    with pytest.raises(ConfigError) as info:
        create_app(Settings(broker_url=url))
    assert "ANEFARM_BROKER_URL" in info.value.one_line() or "redis://" in info.value.one_line()


def test_publishing_to_an_unreachable_broker_is_a_service_error():
    app = create_app(load_settings(broker_url=f"redis://127.0.0.1:{free_port()}/0"))
    app.conf.broker_connection_timeout = 1
    app.conf.task_publish_retry = False
    with pytest.raises(ServiceError) as info:
        publish(app, ECHO_TASK, {"marker": "lost"}, device_class_queue("iPhone11,8"))
    assert "is the broker" in info.value.one_line()


def test_the_tasks_module_registers_on_a_fresh_app():
    app = create_app(load_settings(broker_url="redis://127.0.0.1:1/0"))
    register(app)
    assert {ECHO_TASK, HOLD_TASK} <= set(app.tasks)


def test_start_worker_also_runs_a_full_command_line(celery_app_factory, start_worker, redis_client):
    """How the lead's processes (agent worker, coordinator) are started in tests."""
    queue = device_queue("00008030-001A")
    argv = [sys.executable, "-m", "tests.services.celery", "--tasks", TASKS]
    argv += ["--queue", queue, "--hostname", "cli@test", "--pool", "solo"]
    start_worker(argv, hostname="cli@test", name="cli")
    publish(celery_app_factory(), ECHO_TASK, {"marker": "cli"}, queue)
    assert wait_for(lambda: redis_client.lrange("test:delivered", 0, -1) == [b"cli"])


@pytest.mark.redis
def test_a_password_protected_redis_works_through_the_url(tmp_path):
    from orchestrator.broker.embedded import EmbeddedRedis

    with EmbeddedRedis(tmp_path) as server:
        redis.Redis.from_url(server.url).config_set("requirepass", "s3cret/+x")
        url = f"redis://:s3cret%2F%2Bx@127.0.0.1:{server.port}/3"
        app = create_app(load_settings(broker_url=url, home=tmp_path))
        queue = device_class_queue("iPhone15,2")
        publish(app, ECHO_TASK, {"marker": "pw"}, queue)
        with app.connection_for_read() as conn:
            message = conn.SimpleQueue(queue).get(timeout=5)
            message.ack()
        assert message.payload[0] == [{"marker": "pw"}]
        wrong = create_app(load_settings(broker_url=url.replace("s3cret", "wrong"), home=tmp_path))
        wrong.conf.task_publish_retry = False
        with pytest.raises(ServiceError):
            publish(wrong, ECHO_TASK, {"marker": "nope"}, queue)
