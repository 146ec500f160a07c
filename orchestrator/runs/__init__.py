"""The life of a run and of its job: one state machine, used by everyone who moves one.

Ingest (a result), the reaper (a device or worker that went away), redelivery (a lost
batch, a waiting run) and cancel all change statuses through this package, never by
hand::

    submit ─┬─ no device of the class live ─▶ waiting ── release ──▶ queued ◀──┐ retry: an infra
            │                                                        ▲  │  │  │ failure within the
            └─ a device of the class is live ────────────────────────┘  │  └──┘ budget (next attempt);
                                                                         │       re-publish: a lost
                                                        start (reserved) ▼  ▲    batch (same attempt)
                                                                     running ┘ retry

    waiting         ──▶ failed (no device within device_wait_s) | cancelled
    queued, running ──▶ succeeded   result OK (a verdict is stored)
                    ──▶ failed      model failure (final at once); infra failure, or a device
                                    gone, past ``max_attempts`` ("gave up after N attempt(s)");
                                    an invalid result; no device within device_wait_s
                    ──▶ cancelled   ``anefarm cancel`` (the job with it)
    succeeded, failed, cancelled: final, no way out (a second result of the run is dropped)

``running`` is in the machine but not written today: the database says ``queued`` while
a device runs the batch (its busy mark in Redis says so). A job follows its runs::

    queued ──(a run left the queue)──▶ running ──(all final, one succeeded)──▶ done
       │                                  │  ◀──(a probe run reopens it)──    │
       │                                  └──(all final, none succeeded)──▶ failed
       └──────────────── cancel (from any state but cancelled) ──────────▶ cancelled

Policy lives in :class:`Lifecycle`: retry-or-fail (another live device of the class, the
same OS for a probe, with exponential backoff), quarantine after ``quarantine_after``
infra failures in a row, what a job's status is. It decides in the database session and
returns :class:`Effects`; :func:`apply` tells Redis and the broker after the commit,
through a :class:`orchestrator.protocol.transport.Publisher` (Celery in a farm, the in-memory
``StubPublisher`` in policy tests).
"""

from __future__ import annotations

from orchestrator.runs.effects import apply, final_mark_ttl_s
from orchestrator.runs.lifecycle import (
    FINAL,
    JOB_TRANSITIONS,
    TRANSITIONS,
    Bisection,
    Effects,
    IllegalTransition,
    Lifecycle,
    cancel_job,
    job_status,
    model_ref,
    move,
    move_job,
    pick_device,
)

__all__ = [
    "FINAL",
    "JOB_TRANSITIONS",
    "TRANSITIONS",
    "Bisection",
    "Effects",
    "IllegalTransition",
    "Lifecycle",
    "apply",
    "cancel_job",
    "final_mark_ttl_s",
    "job_status",
    "model_ref",
    "move",
    "move_job",
    "pick_device",
]
