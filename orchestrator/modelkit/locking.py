"""One lock per sha256 shared by every process of a host that fills the same cache.

Several device workers of one agent (or the coordinator's threads) may need the same
model at the same moment: a probe model shared by two device classes, a job sent to a
whole farm. Without a lock they would each download and extract it and race on the
final rename. ``fcntl.flock`` works the same on macOS and Linux, is released by the
kernel when its holder dies (no stale locks to clean up). The lock file is opened for
each use and closed after it, so a process forked or spawned later carries no lock away.

Lock files are never deleted: deleting one while another process waits on it would
let a third process lock a new file of the same name, and two holders would coexist.
They are empty, one per model ever seen, and live beside the cache (``.<name>.locks``),
not in it, so the cache itself holds nothing but complete models.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from orchestrator.errors import ArtifactError

# The longest wait for another process to finish a model: extracting 2 GiB on a slow
# disk takes minutes, and a holder that dies releases at once, so this only bounds a hang.
WAIT_S = 900.0


@contextmanager
def sha_lock(cache: Path, sha256: str, *, wait_s: float = WAIT_S) -> Iterator[None]:
    """Hold the exclusive lock of ``sha256`` in ``cache`` for the block."""
    lock_dir = lock_dir_of(cache)
    lock_dir.mkdir(parents=True, exist_ok=True)
    path = lock_dir / f"{sha256}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        _acquire(fd, path, sha256, wait_s)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def lock_dir_of(cache: Path) -> Path:
    return cache.parent / f".{cache.name}.locks"


def _acquire(fd: int, path: Path, sha256: str, wait_s: float) -> None:
    # Polling rather than a blocking flock: a blocking call cannot time out, and a
    # worker stuck for ever behind a hung holder would hold its batch for ever too.
    deadline = time.monotonic() + wait_s
    pause = 0.005
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError as error:
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise ArtifactError(
                    f"cannot lock model {sha256[:12]} ({error.strerror})",
                    hint=f"check that {path.parent} is on a local disk that supports flock",
                ) from error
        if time.monotonic() >= deadline:
            raise ArtifactError(
                f"model {sha256[:12]} stayed locked by another process for {wait_s:g}s",
                hint=f"a process extracting it seems hung; see who holds {path}",
            )
        time.sleep(pause)
        pause = min(pause * 2, 0.02)  # short: waiters queue behind one another
