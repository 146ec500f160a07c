"""Fail points: named places where a fault-injection test can make a process die.

The moments that matter most for "every run ends" are the ones a signal cannot hit on
purpose: between a database commit and the publish that follows it. A fail point is
one call, ``hit("submit.after_commit")``, at such a place; it does nothing unless the
environment variable ``ANEFARM_FAILPOINTS`` names it (comma-separated), e.g.
``ANEFARM_FAILPOINTS=submit.after_commit`` — then the process ends at once with status
137, as a SIGKILL would leave it: no cleanup, no finally blocks, no flushed buffers.
``name@/path/token`` fires once across all processes: only for the one that creates the
token file (a coordinator's restarted pool child must not die again on the same point).

For tests (tests/faults/) and for rehearsing an incident; never set in production.
"""

from __future__ import annotations

import os

ENV = "ANEFARM_FAILPOINTS"
KILLED = 137  # 128 + SIGKILL: what a shell reports for a process killed that way

# The places, so a test names one that exists.
SUBMIT_AFTER_COMMIT = "submit.after_commit"
INGEST_AFTER_COMMIT = "ingest.after_commit"
POINTS = frozenset({SUBMIT_AFTER_COMMIT, INGEST_AFTER_COMMIT})


def hit(point: str) -> None:
    """End the process here if ``point`` is armed."""
    assert point in POINTS, point
    for armed in filter(None, (p.strip() for p in os.environ.get(ENV, "").split(","))):
        name, _, token = armed.partition("@")
        if name != point:
            continue
        if token:
            try:
                os.close(os.open(token, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            except FileExistsError:
                continue  # fired already, in this or another process
        os._exit(KILLED)
