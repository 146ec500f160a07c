"""`submit --wait` with no coordinator running: agents publish results, nobody stores
them, and the progress line said "queued, 0/1" for ever without a word why. The wait now
says once, after results have waited in Redis without one being taken, that a
coordinator is needed; a queue being drained never warns. Real Redis, a fake clock."""

from __future__ import annotations

import io

import redis
from rich.console import Console

from orchestrator.cli.stall import IngestWatch, results_waiting
from orchestrator.protocol.transport import RESULTS_QUEUE


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _watch(url: str) -> tuple[IngestWatch, io.StringIO, Clock, redis.Redis]:
    client = redis.Redis.from_url(url, decode_responses=True)
    out, clock = io.StringIO(), Clock()
    watch = IngestWatch(client, Console(file=out, width=300), stall_s=20, clock=clock)
    return watch, out, clock, client


def _poll(watch: IngestWatch, clock: Clock, seconds: float) -> None:
    for _ in range(int(seconds)):
        clock.now += 1.0
        watch()


def test_results_nobody_takes_are_named_once(redis_url: str) -> None:
    watch, out, clock, client = _watch(redis_url)
    client.lpush(RESULTS_QUEUE, "r1", "r2")
    client.lpush(RESULTS_QUEUE + "\x06\x163", "r3")  # a priority list of the same queue
    assert results_waiting(client) == 3
    _poll(watch, clock, 10)
    assert out.getvalue() == ""  # not yet: a coordinator may be between passes
    _poll(watch, clock, 15)
    text = out.getvalue()
    assert "3 result(s) have waited in Redis" in text and "`anefarm coordinator`" in text
    _poll(watch, clock, 60)
    assert out.getvalue() == text  # once


def test_a_queue_being_drained_never_warns(redis_url: str) -> None:
    watch, out, clock, client = _watch(redis_url)
    client.lpush(RESULTS_QUEUE, *[f"r{i}" for i in range(100)])
    for _ in range(60):  # a coordinator taking one result every 2 s, others arriving
        _poll(watch, clock, 2)
        client.rpop(RESULTS_QUEUE)
    assert out.getvalue() == ""


def test_nothing_waiting_never_warns(redis_url: str) -> None:
    watch, out, clock, _ = _watch(redis_url)
    _poll(watch, clock, 120)
    assert out.getvalue() == ""
