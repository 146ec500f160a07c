"""Probe batches never hold up user batches: with both waiting, a device takes the user
batch first, whichever queue of the device (class or pinned) each sits in."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import pytest
import redis

from orchestrator.protocol import ModelFormat, ModelRef, RunBatch, RunPurpose, RunSpec
from orchestrator.protocol.transport import device_class_queue, device_queue
from orchestrator.protocol.transport import publish_batch as publish

XR, UDID = "iPhone11,8", "SIM-iPhone11-8-0"


def batch(purpose: RunPurpose, *, pinned: str | None = None) -> RunBatch:
    return RunBatch(
        run_id=uuid.uuid4(), attempt=1, job_id=uuid.uuid4(),
        model=ModelRef(sha256="ab" * 32, filename="m.mlmodel", format=ModelFormat.MLMODEL,
                       size_bytes=1, location="file:///tmp"),
        device_class=XR, pinned_udid=pinned, spec=RunSpec(compute_units=["all"]),
        purpose=purpose, created_at=datetime.now(UTC),
    )  # fmt: skip


def _text(item: bytes | str) -> str:
    # The client does not decode responses: every item is bytes.
    return item.decode() if isinstance(item, bytes) else item


def delivered(client: redis.Redis, count: int, timeout: float = 20.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items = [_text(i) for i in client.lrange("test:batches", 0, -1)]
        if len(items) >= count:
            return items
        time.sleep(0.1)
    return [_text(i) for i in client.lrange("test:batches", 0, -1)]


@pytest.mark.parametrize("user_pinned", [False, True])
def test_a_user_batch_overtakes_queued_probe_batches(
    celery_app_factory, start_worker, redis_url, user_pinned
) -> None:
    app = celery_app_factory()
    probes = [batch(RunPurpose.PROBE, pinned=UDID if i % 2 else None) for i in range(6)]
    for probe in probes:
        publish(app, probe)
    user = batch(RunPurpose.USER, pinned=UDID if user_pinned else None)
    publish(app, user)  # published last: FIFO would serve it last
    start_worker("tests.broker.tasks:register_batch_recorder",
                 [device_class_queue(XR), device_queue(UDID)])  # fmt: skip
    order = delivered(redis.Redis.from_url(redis_url), 7)
    assert len(order) == 7
    assert order[0] == f"user:{user.run_id}", order
    assert sorted(order[1:]) == sorted(f"probe:{p.run_id}" for p in probes)


def test_without_priority_the_same_queue_is_first_in_first_out(
    celery_app_factory, start_worker, redis_url
) -> None:
    # The control: user batches alone keep their order, so the test above can fail.
    app = celery_app_factory()
    users = [batch(RunPurpose.USER) for _ in range(4)]
    for user in users:
        publish(app, user)
    start_worker("tests.broker.tasks:register_batch_recorder", [device_class_queue(XR)])
    order = delivered(redis.Redis.from_url(redis_url), 4)
    assert order == [f"user:{u.run_id}" for u in users]
