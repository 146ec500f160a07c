"""A wait that cannot end: results pile up in Redis and nobody stores them.

``submit --wait`` and ``sweep run --wait`` only watch the database. With no coordinator
running, agents still run the batches and publish results, but no run ever leaves
"queued", and the progress line says so for ever without a word why (a newcomer's first
farm on one machine: `anefarm redis`, `anefarm agent`, `anefarm submit --wait`, and no
`anefarm coordinator`). ``IngestWatch`` is the wait's ``check``: when results have waited
in Redis for ``stall_s`` without one being taken, it says once that a coordinator is
needed. A coordinator that keeps up takes results within a poll or two, so a queue that
is busy but draining never warns.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rich.console import Console

STALL_S = 20.0  # many ingest passes; a busy coordinator takes one result far sooner
LOOK_EVERY_S = 1.0  # the wait polls every 0.25 s; Redis needs asking less often


def results_waiting(client: Any) -> int:
    """Results on the results queue (Celery's priority lists included)."""
    from orchestrator.protocol.transport import RESULTS_QUEUE

    names = client.scan_iter(match=f"{RESULTS_QUEUE}*", count=100)
    return sum(int(client.llen(name)) for name in names if client.type(name) == "list")


class IngestWatch:
    """Called every poll of a wait; prints one warning when no result is taken."""

    def __init__(
        self,
        client: Any,
        err: Console,
        *,
        stall_s: float = STALL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client, self.err, self.stall_s, self.clock = client, err, stall_s, clock
        self.since: float | None = None  # when results were first seen not being taken
        self.previous: int | None = None
        self.looked_at: float | None = None
        self.warned = False

    def __call__(self) -> None:
        now = self.clock()
        if self.warned or (self.looked_at is not None and now - self.looked_at < LOOK_EVERY_S):
            return
        self.looked_at = now
        import redis

        try:
            waiting = results_waiting(self.client)
        except redis.RedisError:
            return  # the wait reads the database; a broker blip is not this check's to report
        if waiting == 0 or (self.previous is not None and waiting < self.previous):
            self.since = None  # nothing waits, or someone took some: a coordinator runs
        elif self.since is None:
            self.since = now
        elif now - self.since >= self.stall_s:
            self.warned = True
            self.err.print(
                f"warning: {waiting} result(s) have waited in Redis for {now - self.since:.0f} s"
                " and none was stored: is a coordinator running? (`anefarm coordinator` stores"
                " them; `anefarm doctor` checks the farm)",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
        self.previous = waiting
