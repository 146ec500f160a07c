"""Who may talk to a device right now: the batch, or the heartbeat — never both.

A device worker is two processes: the Celery parent, whose heartbeat checks readiness,
and the pool child that runs batches. Their checks would otherwise overlap a running
batch (an install or a developer-service call in the middle of a measurement). A flock on
a file per device works across fork and spawn alike, and the kernel releases it when its
holder dies, so a crashed child never leaves the device locked.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class DeviceLock:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _open(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Opened per use: a process started later carries no descriptor (and no lock) away.
        return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Wait for the device and keep it for the block (a batch, a restart)."""
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    @contextmanager
    def try_hold(self) -> Iterator[bool]:
        """Take the device if it is free; yields False (without waiting) when a batch has it."""
        fd = self._open()
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)


def device_lock(cache_dir: Path, udid: str) -> DeviceLock:
    return DeviceLock(cache_dir / "devices" / f"{udid}.lock")
