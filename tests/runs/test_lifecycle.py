"""The run lifecycle's policy, on SQLite with a stub publisher: no broker, no worker, no
Redis. Every edge of the run's and of the job's state machine is walked the way the
coordinator walks it (orchestrator/runs/__init__.py draws them)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session, sessionmaker

from orchestrator import runs
from orchestrator.ingest import BISECTION
from orchestrator.protocol.transport import (
    PROBE_PRIORITY,
    USER_PRIORITY,
    StubPublisher,
    device_class_queue,
    device_queue,
)
from orchestrator.runs import FINAL, JOB_TRANSITIONS, TRANSITIONS, Effects, IllegalTransition
from orchestrator.settings import load_settings
from orchestrator.store import models as db
from orchestrator.store.engine import make_engine, session_factory
from orchestrator.store.migrate import upgrade

S = db.RunStatus
J = db.JobStatus
XR, SHA = "iPhone11,8", "ab" * 32
NOW = datetime(2026, 11, 1, tzinfo=UTC)


@dataclass
class Live:  # what retries read of livestate.DeviceStatus
    udid: str
    product_type: str = XR
    state: str = "ready"
    os_version: str = "16.7.8"


@pytest.fixture
def sessions(tmp_path) -> Iterator[sessionmaker[Session]]:
    url = f"sqlite:///{tmp_path / 'anefarm.db'}"
    upgrade(url)
    engine = make_engine(url)
    yield session_factory(engine)
    engine.dispose()


@pytest.fixture
def lifecycle(tmp_path) -> runs.Lifecycle:
    settings = load_settings(home=tmp_path, retry_backoff_s=2.0, quarantine_after=3)
    return runs.Lifecycle(settings, bisection=BISECTION)


def make_run(
    session: Session, status: S = S.QUEUED, *, attempts: int = 1, purpose: str = "user",
    job: db.Job | None = None,
) -> db.Run:  # fmt: skip
    if session.get(db.Model, SHA) is None:
        session.add(db.Model(sha256=SHA, filename="m.mlmodel", format="mlmodel", size_bytes=1,
                             created_at=NOW))  # fmt: skip
    if job is None:
        job = db.Job(id=uuid.uuid4(), created_at=NOW, status=J.QUEUED, selector=XR,
                     spec={"compute_units": ["all"]})  # fmt: skip
        session.add(job)
    run = db.Run(id=uuid.uuid4(), job_id=job.id, model_sha256=SHA, device_class=XR, status=status,
                 attempts=attempts, max_attempts=3, created_at=NOW, purpose=purpose,
                 queued_at=NOW, pinned_udid="GONE" if status == S.QUEUED else None,
                 bisection={"key": {"os_version": "16.7.8"}} if purpose == "probe" else None)  # fmt: skip
    session.add(run)
    session.flush()
    return run


def job_of(session: Session, run: db.Run) -> db.Job:
    job = session.get(db.Job, run.job_id)
    assert job is not None
    return job


# One walk per edge of TRANSITIONS: (session, lifecycle, run in the source state, effects).
Walk = Callable[[Session, runs.Lifecycle, db.Run, Effects], None]


def release(session: Session, lc: runs.Lifecycle, run: db.Run, fx: Effects) -> None:
    lc.release(session, run, fx)  # a device of the class came up
    (batch, countdown), = fx.sends  # fmt: skip
    assert (batch.pinned_udid, batch.attempt, countdown) == (None, 1, None)


def retry(session: Session, lc: runs.Lifecycle, run: db.Run, fx: Effects) -> None:
    live = [Live("GONE"), Live("B"), Live("A", state="quarantined"), Live("C", "iPad8,1")]
    assert lc.retry_or_fail(session, run, "runner_crash", "boom", avoid="GONE", live=live,
                            effects=fx)  # fmt: skip
    assert (run.attempts, run.pinned_udid, run.error_kind) == (2, "B", "runner_crash")
    (batch, countdown), = fx.sends  # fmt: skip
    assert (batch.attempt, batch.pinned_udid, countdown) == (2, "B", 2.0)  # backoff 2 s × 2⁰


def give_up(session: Session, lc: runs.Lifecycle, run: db.Run, fx: Effects) -> None:
    run.attempts = run.max_attempts
    assert not lc.retry_or_fail(session, run, "device_gone", "gone", avoid="GONE", live=[],
                                effects=fx, backoff=False)  # fmt: skip
    assert run.error_message == "gave up after 3 attempt(s): gone"
    assert (run.infra_failure, run.pinned_udid, fx.sends) == (True, None, [])


def finish(status: S, kind: str | None, message: str | None, *, infra: bool) -> Walk:
    """An attempt's end as ingest reports it: the run takes ``status``, failed by the
    infrastructure or not as said."""

    def walk(session: Session, lc: runs.Lifecycle, run: db.Run, fx: Effects) -> None:
        lc.finish(session, run, status, kind, message, infra=infra, effects=fx)
        assert run.infra_failure is infra

    return walk


def cancel(session: Session, lc: runs.Lifecycle, run: db.Run, fx: Effects) -> None:
    assert runs.cancel_job(session, job_of(session, run)) == [str(run.id)]


def start(session: Session, lc: runs.Lifecycle, run: db.Run, fx: Effects) -> None:
    runs.move(run, S.RUNNING)  # reserved: nothing writes it today


no_device = finish(S.FAILED, "no_device", "none came", infra=True)
model_failure = finish(S.FAILED, "model_compile", "bad op", infra=False)
succeed = finish(S.SUCCEEDED, None, None, infra=False)

# Each edge: its walk, and the status its job has after it (None: not the walk's concern).
WALKS: dict[tuple[S, S], tuple[Walk, J | None]] = {
    (S.WAITING, S.QUEUED): (release, None),
    (S.WAITING, S.FAILED): (no_device, J.FAILED),
    (S.WAITING, S.CANCELLED): (cancel, J.CANCELLED),
    (S.QUEUED, S.QUEUED): (retry, None),
    (S.QUEUED, S.RUNNING): (start, None),
    (S.QUEUED, S.SUCCEEDED): (succeed, J.DONE),
    (S.QUEUED, S.FAILED): (give_up, J.FAILED),
    (S.QUEUED, S.CANCELLED): (cancel, J.CANCELLED),
    (S.RUNNING, S.QUEUED): (retry, None),
    (S.RUNNING, S.SUCCEEDED): (succeed, J.DONE),
    (S.RUNNING, S.FAILED): (model_failure, J.FAILED),
    (S.RUNNING, S.CANCELLED): (cancel, J.CANCELLED),
}


def test_every_transition_has_a_walk() -> None:
    assert set(WALKS) == {(a, b) for a, targets in TRANSITIONS.items() for b in targets}


@pytest.mark.parametrize(("source", "target"), list(WALKS), ids=str)
def test_transition(sessions, lifecycle, source: S, target: S) -> None:
    with sessions.begin() as session:
        run = make_run(session, source)
        effects = Effects()
        walk, job_after = WALKS[source, target]
        walk(session, lifecycle, run, effects)
        assert run.status == target
        if job_after is not None:
            assert job_of(session, run).status == job_after
        # (cancel marks its runs final in Redis itself: orchestrator.dispatch.cancel)
        marked = target in FINAL and target != S.CANCELLED
        assert (str(run.id) in effects.finished) == marked
        assert (run.finished_at is not None) == (target in FINAL)


@pytest.mark.parametrize("final", sorted(FINAL))
def test_a_final_run_has_no_way_out(sessions, final: S) -> None:
    with sessions.begin() as session:
        run = make_run(session, final)
        for target in S:
            with pytest.raises(IllegalTransition):
                runs.move(run, target)


def test_a_retry_of_a_cancelled_job_fails_the_run(sessions, lifecycle) -> None:
    with sessions.begin() as session:
        run, effects = make_run(session), Effects()
        assert not lifecycle.retry_or_fail(session, run, "runner_crash", "boom", avoid="GONE",
                                           live=[], effects=effects, cancelled=True)  # fmt: skip
        assert (run.status, run.attempts, effects.sends) == (S.FAILED, 1, [])


def test_a_probe_retry_stays_on_its_os_and_behind_user_work(sessions, lifecycle) -> None:
    publisher = StubPublisher()
    with sessions.begin() as session:
        probe, user, effects = make_run(session, purpose="probe"), make_run(session), Effects()
        live = [Live("A", os_version="17.0"), Live("B")]  # the probe measures 16.7.8
        for run in (probe, user):
            lifecycle.retry_or_fail(session, run, "runner_crash", "boom", avoid="GONE",
                                    live=live, effects=effects)  # fmt: skip
        assert (probe.pinned_udid, user.pinned_udid) == ("B", "A")
    runs.apply(effects, publisher=publisher, client=None, final_ttl_s=60)
    assert [(s.queue, s.priority) for s in publisher.sent] == [
        (device_queue("B"), PROBE_PRIORITY), (device_queue("A"), USER_PRIORITY)
    ]  # fmt: skip
    # Handed back by a quarantined device: to the class, still behind user work.
    for batch in (publisher.sent[0].batch, publisher.sent[1].batch):
        publisher.batch(batch, to_class=True)
    assert [b.purpose for b in publisher.queue(device_class_queue(XR))] == ["user", "probe"]


def test_a_lost_batch_is_published_again_as_the_same_attempt(sessions, lifecycle) -> None:
    with sessions.begin() as session:
        run, effects = make_run(session, attempts=2), Effects()
        lifecycle.republish(session, run, effects)
        (batch, _), = effects.sends  # fmt: skip
        assert (run.status, batch.attempt, batch.pinned_udid) == (S.QUEUED, 2, "GONE")


def test_a_device_is_quarantined_after_infra_failures_in_a_row(lifecycle) -> None:
    device = db.Device(udid="D", product_type=XR, chip="A12", state="ready", reasons=[],
                       infra_failures_in_row=0)  # fmt: skip
    assert lifecycle.count_infra(device, "runner_crash") is None
    lifecycle.count_ok(device)  # a success (or a model failure) breaks the row
    assert [lifecycle.count_infra(device, "runner_crash") for _ in range(3)] == [
        None, None, "3 infra failures in a row (last: runner_crash)"
    ]  # fmt: skip
    assert device.state == "quarantined"


# The job's machine: each edge, from runs whose statuses make it happen.
JOB_WALKS: dict[tuple[J, J], tuple[list[S], list[S] | None]] = {
    # (job from, job to): (run statuses, or None for `anefarm cancel`)
    (J.QUEUED, J.RUNNING): ([S.SUCCEEDED, S.QUEUED], None),
    (J.QUEUED, J.DONE): ([S.SUCCEEDED, S.FAILED], None),
    (J.QUEUED, J.FAILED): ([S.FAILED, S.FAILED], None),
    (J.QUEUED, J.CANCELLED): ([S.QUEUED], []),
    (J.RUNNING, J.DONE): ([S.SUCCEEDED], None),
    (J.RUNNING, J.FAILED): ([S.FAILED], None),
    (J.RUNNING, J.CANCELLED): ([S.QUEUED], []),
    (J.DONE, J.RUNNING): ([S.SUCCEEDED, S.QUEUED, S.RUNNING], None),  # a lifted probe
    (J.DONE, J.CANCELLED): ([S.SUCCEEDED, S.QUEUED], []),  # a probe not yet started
    (J.FAILED, J.RUNNING): ([S.FAILED, S.RUNNING], None),
    (J.FAILED, J.CANCELLED): ([S.FAILED, S.QUEUED], []),
}


def test_every_job_transition_has_a_walk() -> None:
    assert set(JOB_WALKS) == {(a, b) for a, targets in JOB_TRANSITIONS.items() for b in targets}


@pytest.mark.parametrize(("source", "target"), list(JOB_WALKS), ids=str)
def test_job_transition(sessions, source: J, target: J) -> None:
    statuses, cancel_with = JOB_WALKS[source, target]
    with sessions.begin() as session:
        first = make_run(session, statuses[0])
        job = job_of(session, first)
        job.status = source
        for status in statuses[1:]:
            make_run(session, status, job=job)
        if cancel_with is None:
            runs.job_status(session, job.id)
        else:
            runs.cancel_job(session, job)
        assert job.status == target


@pytest.mark.parametrize("finished", [S.SUCCEEDED, S.FAILED])
def test_cancelling_a_finished_job_leaves_it_as_it_is(sessions, finished: S) -> None:
    with sessions.begin() as session:
        run = make_run(session, finished)
        job = job_of(session, run)
        runs.job_status(session, job.id)
        before = job.status
        assert before in (J.DONE, J.FAILED)
        assert runs.cancel_job(session, job) == []
        assert job.status == before


def test_a_cancelled_job_stays_cancelled(sessions, lifecycle) -> None:
    with sessions.begin() as session:
        run = make_run(session)
        job = job_of(session, run)
        runs.cancel_job(session, job)
        runs.job_status(session, job.id)
        assert job.status == J.CANCELLED
        with pytest.raises(IllegalTransition):
            runs.move_job(job, J.RUNNING)
