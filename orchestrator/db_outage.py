"""Riding out a database outage in the coordinator (issue #12).

A result that reaches ingest while PostgreSQL restarts, fails over or drops its
connections must not be lost. Celery acks a message whose task raised (``acks_late``
acks failures too), so ingest never lets a connection-class error escape: it waits with
a doubling backoff, drops the engine's pooled connections (they all point at the dead
server) and tries again, for a bounded time. Retrying is safe because ingest is one
transaction and idempotent (unique run and attempt; a final run takes no second result).
When the database is still away after the budget, the caller hands the message back to
its queue (``Reject(requeue=True)``) instead of acking it.

Only errors that say "the database cannot be reached right now" are retried; a bug or a
constraint violation raised as an error must still fail loudly at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import exc as sa

log = logging.getLogger("anefarm.coordinator")
T = TypeVar("T")

FIRST_DELAY_S = 0.5
MAX_DELAY_S = 5.0  # a database that comes back is used again within ~5 s
# SQLSTATE classes of PostgreSQL that mean "not now" rather than "never": connection
# exception, operator intervention (admin/crash shutdown, starting up), insufficient
# resources (too many connections), transaction rollback (deadlock, serialization).
TRANSIENT_SQLSTATES = ("08", "57P", "53", "40")


class DatabaseUnavailable(Exception):
    """The database stayed unreachable for the whole budget."""


def budget_s(wanted_s: float, visibility_timeout_s: float) -> float:
    """How long one message may wait for the database: ``wanted_s``
    (``ANEFARM_DB_OUTAGE_BUDGET_S``, default 10 min), but under half the broker's
    visibility timeout, so Redis never hands the message to a second consumer while it
    still waits here."""
    return max(0.0, min(wanted_s, visibility_timeout_s / 2))


def is_connection_error(error: BaseException) -> bool:
    """True when ``error`` (or what it was raised from: ``session_scope`` wraps
    SQLAlchemy's OperationalError in a StoreError) says the database is unreachable."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _transient(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def _transient(error: BaseException) -> bool:
    if isinstance(error, sa.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, sa.InterfaceError | sa.DisconnectionError | sa.TimeoutError):
        return True  # a closed connection, a pre-ping that failed, a pool exhausted
    if isinstance(error, sa.OperationalError):
        return _transient_driver_error(error.orig)
    if type(error).__module__.startswith("psycopg") and type(error).__name__ in (
        "OperationalError",
        "InterfaceError",
    ):
        return _transient_driver_error(error)
    return False


def _transient_driver_error(orig: Any) -> bool:
    module = type(orig).__module__
    if module.startswith("psycopg"):
        state = getattr(orig, "sqlstate", None)
        # No SQLSTATE: the client could not talk to a server at all (refused, reset).
        return state is None or str(state).startswith(TRANSIENT_SQLSTATES)
    if module == "sqlite3":
        text = str(orig).lower()
        return "locked" in text or "busy" in text  # "no such table" is not transient
    return True  # another driver's OperationalError: by DB-API, "not the program's fault"


class DatabaseRetry:
    """Calls a database function again while the database is unreachable, for at most
    ``budget_s`` from the first failure; then raises :class:`DatabaseUnavailable`."""

    def __init__(
        self,
        engine: Any,
        *,
        budget_s: float,
        first_delay_s: float = FIRST_DELAY_S,
        max_delay_s: float = MAX_DELAY_S,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.engine = engine
        self.budget_s = budget_s
        self.first_delay_s = first_delay_s
        self.max_delay_s = max_delay_s
        self.sleep = sleep

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        started: float | None = None
        delay, tries = self.first_delay_s, 0
        while True:
            try:
                result = fn(*args)
            except Exception as error:
                if not is_connection_error(error):
                    raise
                now = time.monotonic()
                started = now if started is None else started
                tries += 1
                left = started + self.budget_s - now
                if left <= 0:
                    raise DatabaseUnavailable(
                        f"database unreachable for {now - started:.0f} s ({tries} tries): {error}"
                    ) from error
                if tries == 1 or tries % 10 == 0:
                    log.warning("database unavailable (try %d, %.0f s left): %s", tries, left,
                                str(error).splitlines()[0] if str(error) else repr(error))  # fmt: skip
                # Every pooled connection points at the server that went away; a fresh
                # pool connects to the one that comes back (pre-ping alone would find
                # them dead one by one).
                self.engine.dispose()
                self.sleep(min(delay, left))
                delay = min(delay * 2, self.max_delay_s)
                continue
            if tries:
                log.warning("database back after %d failed tries", tries)
            return result
