"""The results waiting behind the one being ingested, taken to be stored in one transaction.

The coordinator's Celery worker hands its ingest child one message at a time; when devices
finish faster than one ingest per result (short batches, many devices) the results queue
grows, and each result paid a transaction, a job-status read, a Redis round trip and the
worker's own hand-over on its own (docs/performance.md). So the ingest child, holding one
result, takes up to ``limit`` more single results straight from the ``results`` queue and
stores them all in the same transaction.

Taken messages are delivered exactly as Celery delivers them (kombu's ``basic_get`` with
acks: each waits in kombu's ``unacked`` hash until acknowledged), so every guarantee of a
Celery delivery holds: acknowledged only after the commit; handed back to the queue when
the transaction fails; a coordinator killed while holding them gets them back at its next
start (``recovery.restore_at_startup``) or after the visibility timeout; ingest is
idempotent per (run, attempt), so a result ingested twice is stored once. Only plain
results are taken: a packed launch's message goes back to the queue for Celery.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from celery import Celery

from orchestrator.protocol.transport import INGEST_RESULT_TASK, RESULTS_QUEUE

log = logging.getLogger("anefarm.coordinator")


@dataclass(frozen=True)
class Taken:
    message: Any  # kombu's Message: ack() / reject(requeue=True)
    payload: Any


class ResultDrain:
    def __init__(self, app: Celery, client: Any, *, limit: int) -> None:
        self.app, self.client, self.limit = app, client, limit
        self._connection: Any = None
        self._pid = 0

    def take(self) -> list[Taken]:
        """Up to ``limit`` waiting results (none when the queue is empty: one LLEN)."""
        if self.limit <= 0 or not self.client.llen(RESULTS_QUEUE):
            return []
        channel = self._channel()
        taken: list[Taken] = []
        while len(taken) < self.limit:
            try:
                message = channel.basic_get(RESULTS_QUEUE, no_ack=False)
            except Exception as error:  # noqa: BLE001 - what is taken so far is still ours
                log.warning("stopped taking waiting results: %s", error)
                break
            if message is None:
                break
            payload = _result_payload(message)
            if payload is None:  # a packed launch, or anything else: Celery's to deliver
                message.reject(requeue=True)
                break
            taken.append(Taken(message, payload))
        return taken

    @staticmethod
    def ack(taken: list[Taken]) -> None:
        for item in taken:
            try:
                item.message.ack()
            except Exception as error:  # noqa: BLE001 - stored: a redelivery is a duplicate
                log.warning("a drained result was stored but not acknowledged: %s", error)

    @staticmethod
    def give_back(taken: list[Taken]) -> None:
        for item in taken:
            try:
                item.message.reject(requeue=True)
            except Exception as error:  # noqa: BLE001 - restored at start-up or after the timeout
                log.warning("a drained result could not be handed back yet: %s", error)

    def _channel(self) -> Any:
        # One connection per process: the ingest child is forked from the coordinator.
        if self._connection is None or self._pid != os.getpid():
            self._connection, self._pid = self.app.connection_for_read(), os.getpid()
        return self._connection.default_channel


def _result_payload(message: Any) -> Any:
    """The RunBatchResult of an ``anefarm.ingest_result`` message, else None."""
    try:
        if message.headers.get("task") != INGEST_RESULT_TASK:
            return None
        args = message.decode()[0]
        return args[0] if args else None
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        return None
