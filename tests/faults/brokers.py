"""A redis-server the test owns outright: SIGKILLed and restarted on the same port and
directory, with or without its append-only file, as a crashed broker host would be."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import redis

from orchestrator.broker.embedded import find_redis_server


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisProcess:
    def __init__(self, directory: Path, *, aof: bool, password: str | None = None) -> None:
        self.directory = directory
        self.aof = aof
        self.password = password
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> RedisProcess:
        args = [find_redis_server(), "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.directory), "--save", "",
                "--appendonly", "yes" if self.aof else "no", "--appendfsync", "everysec"]  # fmt: skip
        if self.password:
            args += ["--requirepass", self.password]
        with (self.directory / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        client.close()
        return self

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final fsync (AOF everysec may lose its last second)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=5)
            if self.process.poll() is None:
                self.kill()


def where_unfinished_runs_are(farm: Any, job: str) -> str:
    """For a failure message: where Redis holds the batch (or the result) of each run of
    ``job`` that has not ended — a device queue, kombu's ``unacked`` hash, a busy mark, the
    results queue, or nowhere — and the length of every list Redis has. A run stuck in a
    queue nobody consumes reads differently from one whose message is gone."""
    from sqlalchemy import select

    from orchestrator.delivery import inflight
    from orchestrator.store import models as db

    client = farm.redis()
    held = {
        "batch in a device queue or unacked": inflight.batch_ids(client),
        "result waiting for ingest": inflight.result_ids(client),
    }
    busy = inflight.busy_runs(client)
    lines = []
    with farm.sessions()() as session:
        rows = session.execute(
            select(db.Run.id, db.Run.status, db.Run.attempts, db.Run.device_class)
            .where(db.Run.job_id == uuid.UUID(job))
            .where(
                db.Run.status.in_([db.RunStatus.WAITING, db.RunStatus.QUEUED, db.RunStatus.RUNNING])
            )
        ).all()
    for run in rows:
        batch = f"{run.id}-a{run.attempts}"
        places = [name for name, ids in held.items() if batch in ids]
        places += ["busy mark"] if str(run.id) in busy else []
        lines.append(f"run {batch} {run.status} on {run.device_class}: {places or 'nowhere'}")
    for key in sorted(client.scan_iter(count=500)):
        if client.type(key) == "list":
            lines.append(f"list {key!r}: {client.llen(key)}")
    lines.append(f"unacked: {client.hlen('unacked')}")
    return "\n".join(lines)
