"""Overhead per batch in the coordinator's ingest (issue 21, docs/performance.md): what was
cut keeps its guarantees.

- multi-row writes keep one row per setting and op when a retried run replaces an earlier
  attempt's measurements;
- results waiting behind the one handed over are stored in its transaction and
  acknowledged after the commit (orchestrator/delivery/drain.py), each read once;
- the effects of results stored together are applied together.
"""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from orchestrator.ingest import Ingestor, IngestOutcome
from orchestrator.protocol import livestate
from orchestrator.protocol.transport import (
    INGEST_LAUNCH_TASK,
    INGEST_RESULT_TASK,
    RESULTS_QUEUE,
)
from orchestrator.store import models as db
from orchestrator.store.engine import session_scope
from tests.pipeline.ingesting import run_awaiting_result

NOW = datetime(2026, 11, 27, tzinfo=UTC)


# -- ingest's multi-row writes -------------------------------------------------------------


def _queued_run(ingestor: Ingestor) -> dict[str, Any]:
    spec = {"compute_units": ["all"], "iterations": 5, "warmup": 1}
    return run_awaiting_result(ingestor, db.RunStatus.QUEUED, spec, attempts=1, max_attempts=3)


def _rows(ingestor: Ingestor, run_id: str, table: Any) -> int:
    with ingestor.sessions() as session:
        return int(session.scalar(
            select(func.count()).select_from(table).where(table.run_id == uuid.UUID(run_id))
        ) or 0)  # fmt: skip


def test_a_retried_run_keeps_only_the_rows_of_the_attempt_that_finished_it(ingestor):
    ok = _queued_run(ingestor)
    runner = ok["runner_result"]
    settings, ops = len(runner["settings"]), len(runner["compute_plan"]["ops"])
    # Attempt 1 measured, then the runner app left the foreground: infra, retried.
    interrupted = copy.deepcopy(ok)
    interrupted["runner_result"]["settings"][0]["error"] = {
        "kind": "interrupted", "message": "the screen locked"
    }  # fmt: skip
    interrupted.update(outcome="infra_error", failure={"kind": "interrupted",
                       "message": "the runner app left the foreground", "infra": True})  # fmt: skip
    assert ingestor.ingest(interrupted) is IngestOutcome.RETRY
    assert _rows(ingestor, ok["run_id"], db.Measurement) == settings
    assert _rows(ingestor, ok["run_id"], db.OpPlacement) == ops
    second = copy.deepcopy(ok)
    second["attempt"] = 2
    assert ingestor.ingest(second) is IngestOutcome.STORED
    assert _rows(ingestor, ok["run_id"], db.Measurement) == settings
    assert _rows(ingestor, ok["run_id"], db.OpPlacement) == ops
    with ingestor.sessions() as session:
        errors = session.scalars(
            select(db.Measurement.error_kind).where(
                db.Measurement.run_id == uuid.UUID(ok["run_id"])
            )
        ).all()
    assert errors == [None] * settings  # attempt 2's rows, not attempt 1's
    assert ingestor.ingest(second) is IngestOutcome.DUPLICATE  # and a redelivery adds none
    assert _rows(ingestor, ok["run_id"], db.Measurement) == settings


def test_a_first_attempt_stores_one_row_per_setting_and_per_plan_op(ingestor):
    ok = _queued_run(ingestor)
    assert ingestor.ingest(ok) is IngestOutcome.STORED
    runner = ok["runner_result"]
    with ingestor.sessions() as session:
        rows = session.scalars(
            select(db.Measurement).where(db.Measurement.run_id == uuid.UUID(ok["run_id"]))
        ).all()
        placements = session.scalars(
            select(db.OpPlacement).where(db.OpPlacement.run_id == uuid.UUID(ok["run_id"]))
        ).all()
    assert sorted(str(r.compute_units) for r in rows) == sorted(
        s["compute_units"] for s in runner["settings"]
    )
    by_units = {str(r.compute_units): r for r in rows}
    for setting in runner["settings"]:
        row = by_units[setting["compute_units"]]
        assert row.samples_ms == setting["latencies_ms"]
        assert (row.count, row.p50) == (setting["stats"]["count"], setting["stats"]["p50"])
    assert sorted((p.index, p.name, p.source) for p in placements) == sorted(
        (op["index"], op["name"], "plan") for op in runner["compute_plan"]["ops"]
    )


# -- results waiting on the queue, stored in one transaction -------------------------------


def _as_task(ingestor: Ingestor) -> Any:
    """The coordinator's ingest task, run in this process (Task.apply: a real task context)."""
    app = ingestor.app

    @app.task(name=INGEST_RESULT_TASK)
    def ingest_result(payload: Any) -> str:
        return str(ingestor.ingest(payload))

    return ingest_result


def test_the_results_waiting_behind_one_are_stored_with_it_and_acknowledged(ingestor, redis_client):
    messages = [_queued_run(ingestor) for _ in range(4)]
    for message in messages[1:]:
        ingestor.app.send_task(INGEST_RESULT_TASK, args=[message], queue=RESULTS_QUEUE)
    # A packed launch's results: Celery's to deliver (taken last, given back at once).
    launch = {"results": [_queued_run(ingestor)]}
    ingestor.app.send_task(INGEST_LAUNCH_TASK, args=[launch], queue=RESULTS_QUEUE)
    assert _as_task(ingestor).apply(args=[messages[0]]).get() == "stored"
    for message in messages:
        assert _rows(ingestor, message["run_id"], db.Measurement) == len(
            message["runner_result"]["settings"]
        )
        assert livestate.is_superseded(redis_client, message["run_id"], 1)  # marked final
    assert redis_client.llen(RESULTS_QUEUE) == 1
    assert _rows(ingestor, launch["results"][0]["run_id"], db.Measurement) == 0
    assert redis_client.hlen("unacked") == 0  # every taken message acknowledged


def test_a_taken_result_that_does_not_validate_goes_back_to_the_queue(ingestor, redis_client):
    good, other = _queued_run(ingestor), _queued_run(ingestor)
    bad = copy.deepcopy(other)
    bad["attempt"] = "first"
    ingestor.app.send_task(INGEST_RESULT_TASK, args=[bad], queue=RESULTS_QUEUE)
    ingestor.app.send_task(INGEST_RESULT_TASK, args=[other], queue=RESULTS_QUEUE)
    assert _as_task(ingestor).apply(args=[good]).get() == "stored"
    assert _rows(ingestor, other["run_id"], db.Measurement) > 0  # taken and stored
    assert redis_client.llen(RESULTS_QUEUE) == 1  # the bad one, for Celery to deliver alone
    assert redis_client.hlen("unacked") == 0
    with ingestor.sessions() as session:
        assert session.scalar(select(func.count()).select_from(db.RawResult)) == 0


def test_results_are_taken_along_only_by_the_ingest_task(ingestor, redis_client):
    first, waiting = _queued_run(ingestor), _queued_run(ingestor)
    ingestor.app.send_task(INGEST_RESULT_TASK, args=[waiting], queue=RESULTS_QUEUE)
    assert ingestor.ingest(first) is IngestOutcome.STORED  # called directly: alone
    assert redis_client.llen(RESULTS_QUEUE) == 1


# -- what a transaction of results reads, read once ----------------------------------------


def _runs_of_one_job(ingestor: Ingestor, count: int) -> list[dict[str, Any]]:
    """``count`` queued runs of one job and one model, their results from one new device."""
    first = _queued_run(ingestor)
    messages = [first]
    with session_scope(ingestor.sessions) as session:
        for _ in range(count - 1):
            message = copy.deepcopy(first)
            message["run_id"] = str(uuid.uuid4())
            session.add(db.Run(id=uuid.UUID(message["run_id"]), job_id=uuid.UUID(first["job_id"]),
                               model_sha256=first["runner_result"]["model_sha256"],
                               device_class=first["device"]["product_type"],
                               status=db.RunStatus.QUEUED, attempts=1, max_attempts=3,
                               created_at=NOW))  # fmt: skip
            messages.append(message)
    return messages


def _selects(ingestor: Ingestor) -> list[str]:
    """Every SELECT the ingestor's engine runs from now on."""
    from sqlalchemy import event

    engine = ingestor.sessions.kw["bind"]
    seen: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", before)
    return seen


def test_results_stored_together_read_their_job_model_and_device_once(ingestor, redis_client):
    messages = _runs_of_one_job(ingestor, 6)
    for message in messages[1:]:
        ingestor.app.send_task(INGEST_RESULT_TASK, args=[message], queue=RESULTS_QUEUE)
    selects = _selects(ingestor)
    assert _as_task(ingestor).apply(args=[messages[0]]).get() == "stored"
    for table in ("jobs", "models", "devices", "run_attempts"):
        reads = [s for s in selects if f"FROM {table} " in s + " "]
        assert len(reads) == 1, (table, reads)  # not once per result
    with ingestor.sessions() as session:
        runs = session.scalars(
            select(db.Run).where(db.Run.job_id == uuid.UUID(messages[0]["job_id"]))
        )
        assert {r.status for r in runs} == {db.RunStatus.SUCCEEDED}
        assert session.scalar(select(func.count()).select_from(db.Device)) == 1  # made once
        assert session.scalar(select(func.count()).select_from(db.RunAttempt)) == 6
        assert session.scalar(select(func.count()).select_from(db.Verdict)) == 6
        job = session.get(db.Job, uuid.UUID(messages[0]["job_id"]))
        assert job is not None and job.status == db.JobStatus.DONE
    for message in messages:  # one pipeline of final marks, every run in it
        assert livestate.is_superseded(redis_client, message["run_id"], 1)
    assert redis_client.hlen("unacked") == 0


def test_a_result_taken_twice_in_one_transaction_is_stored_once(ingestor, redis_client):
    message = _queued_run(ingestor)
    ingestor.app.send_task(INGEST_RESULT_TASK, args=[message], queue=RESULTS_QUEUE)
    assert _as_task(ingestor).apply(args=[message]).get() == "stored"
    assert _rows(ingestor, message["run_id"], db.RunAttempt) == 1
    assert _rows(ingestor, message["run_id"], db.Verdict) == 1
    assert _rows(ingestor, message["run_id"], db.Measurement) == len(
        message["runner_result"]["settings"]
    )
    assert redis_client.llen(RESULTS_QUEUE) == 0 and redis_client.hlen("unacked") == 0


def test_effects_of_results_stored_together_are_applied_together_but_quarantines_apart():
    from orchestrator.ingest import _merged
    from orchestrator.runs import Effects

    night = uuid.uuid4()
    plain = [Effects(finished=["r1"], nights=[night]), Effects(finished=["r2"], nights=[night])]
    quarantining = Effects(finished=["r3"], quarantine=("udid-1", "3 infra failures in a row"))
    merged = _merged([plain[0], quarantining, plain[1]])
    assert len(merged) == 2
    assert merged[0].finished == ["r1", "r2"] and merged[0].nights == [night]  # analysed once
    assert merged[1].quarantine == ("udid-1", "3 infra failures in a row")
    assert merged[1].finished == ["r3"]
