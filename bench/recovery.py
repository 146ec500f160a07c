"""What the coordinator's lost-batch check costs as queues grow.

Every reaper pass (half the heartbeat TTL: 15 s by default) the coordinator reads which batches
Redis holds — every device queue, the unacked hash, the results queue, the busy marks —
to find queued runs whose batch was lost (orchestrator/redelivery.py). This prints how
long that read takes with N batches waiting, on a real redis-server, so the reaper's
share of the coordinator's time can be judged for a large night.

    .venv/bin/python bench/recovery.py
"""

from __future__ import annotations

import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from orchestrator.broker.embedded import EmbeddedRedis
from orchestrator.delivery import inflight
from orchestrator.protocol import ModelFormat, ModelRef, RunBatch, RunSpec, livestate
from orchestrator.protocol.transport import RUN_BATCH_TASK, create_app, device_class_queue
from orchestrator.settings import load_settings

CLASSES = ["iPhone11,8", "iPhone11,2", "iPad8,1", "iPhone13,2", "iPhone16,1"]


def fill(app: object, count: int) -> None:
    model = ModelRef(sha256="0" * 64, filename="m.mlpackage", format=ModelFormat.MLPACKAGE,
                     size_bytes=1, location="file:///tmp")  # fmt: skip
    spec = RunSpec(compute_units=["all"], iterations=10, warmup=1, timeout_s=600)
    for i in range(count):
        batch = RunBatch(run_id=uuid.uuid4(), attempt=1, job_id=uuid.uuid4(), model=model,
                         device_class=CLASSES[i % len(CLASSES)], spec=spec,
                         created_at=datetime.now(UTC))  # fmt: skip
        app.send_task(  # type: ignore[attr-defined]
            RUN_BATCH_TASK, args=[batch.model_dump(mode="json")],
            queue=device_class_queue(batch.device_class), task_id=batch.batch_id,
            priority=9 if i % 3 == 0 else 0,
        )  # fmt: skip


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="anefarm-bench-recovery-"))
    with EmbeddedRedis(work) as server:
        app = create_app(load_settings(broker_url=server.url, home=work))
        client = livestate.connect(server.url)
        total = 0
        print("batches waiting | read all that Redis holds (median of 5) | per reaper pass of 15 s")
        for target in (1_000, 10_000, 50_000):
            fill(app, target - total)
            total = target
            times = []
            for _ in range(5):
                start = time.perf_counter()
                held = inflight.batch_ids(client)
                inflight.result_ids(client)
                inflight.busy_runs(client)
                times.append(time.perf_counter() - start)
            assert len(held) == total, (len(held), total)
            median = statistics.median(times)
            print(f"{total:>15,} | {median * 1000:>8.0f} ms | {median / 15:.1%}")


if __name__ == "__main__":
    main()
