"""``anefarm jobs`` and finding a job, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from orchestrator.errors import UsageError
from orchestrator.jobs import list_jobs
from orchestrator.report import UnknownJob, find_job
from orchestrator.store import models as db
from orchestrator.store.engine import make_engine, session_factory, session_scope
from tests.cli.conftest import anefarm, assert_one_line_error

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
SHA = "a" * 64


def seed(sessions, runs_per_job):
    """Jobs one minute apart, oldest first; each item is [(purpose, status), …]."""
    ids = []
    with session_scope(sessions) as session:
        session.add(db.Model(sha256=SHA, filename="m.mlpackage", format="mlprogram",
                             size_bytes=1, created_at=T0))  # fmt: skip
        for n, runs in enumerate(runs_per_job):
            job = db.Job(id=uuid.uuid4(), created_at=T0 + timedelta(minutes=n),
                         status="done" if runs else "queued", selector=f"A1{n}",
                         spec={"compute_units": ["all"]})  # fmt: skip
            session.add(job)
            session.flush()
            for purpose, status in runs:
                session.add(db.Run(id=uuid.uuid4(), job_id=job.id, model_sha256=SHA,
                                   device_class="iPhone11,8", created_at=T0, status=status,
                                   purpose=purpose))  # fmt: skip
            ids.append(str(job.id))
    return ids


def test_jobs_newest_first_with_runs_by_status_and_purpose(sessions):
    oldest, middle, newest = seed(
        sessions,
        [
            [("user", "succeeded")],
            [],
            [("user", "succeeded"), ("user", "succeeded"), ("user", "failed"),
             ("probe", "succeeded"), ("probe", "queued")],
        ],
    )  # fmt: skip
    with sessions() as session:
        found = list_jobs(session)
    assert [j["job"] for j in found.jobs] == [newest, middle, oldest] and found.total == 3
    top = found.jobs[0]
    assert top["created_at"] == (T0 + timedelta(minutes=2)).isoformat()
    assert (top["status"], top["selector"], top["purpose"]) == ("done", "A12", "user")
    assert top["runs"] == 3 and top["by_status"] == {"failed": 1, "succeeded": 2}
    assert top["probe_runs"] == 2 and top["probe_by_status"] == {"queued": 1, "succeeded": 1}
    assert found.jobs[1]["runs"] == 0 and found.jobs[1]["by_status"] == {}
    with sessions() as session:
        page = list_jobs(session, limit=1)
    assert [j["job"] for j in page.jobs] == [newest] and page.total == 3


def test_a_database_without_tables_has_no_jobs(db_url):
    engine = make_engine(db_url)  # never migrated: a fresh home
    try:
        with session_factory(engine)() as session:
            assert list_jobs(session).to_json() == {"jobs": [], "total": 0}
            with pytest.raises(UnknownJob, match="no jobs yet") as caught:
                find_job(session, "abc")
    finally:
        engine.dispose()
    assert "`anefarm jobs`" in (caught.value.hint or "")


def test_find_job_by_id_prefix_unknown_and_ambiguous(sessions):
    ids = seed(sessions, [[]] * 40)  # 40 ids: some first hex digit is shared
    shared = next(p for p in "0123456789abcdef" if sum(i.startswith(p) for i in ids) > 1)
    with sessions() as session:
        assert str(find_job(session, ids[5]).id) == ids[5]
        assert str(find_job(session, ids[5][:13].upper()).id) == ids[5]
        with pytest.raises(UnknownJob) as unknown:
            find_job(session, str(uuid.uuid4()))
        with pytest.raises(UsageError, match="ambiguous"):
            find_job(session, shared)
    assert "`anefarm jobs`" in (unknown.value.hint or "")


def test_cli_jobs_table_json_and_limit(sessions, db_url, home):
    ids = seed(sessions, [[("user", "succeeded")], [("user", "failed"), ("probe", "succeeded")]])
    out = anefarm("jobs", home=home, ANEFARM_DATABASE_URL=db_url)
    assert out.returncode == 0, out.stderr
    assert out.stdout.index(ids[1]) < out.stdout.index(ids[0])  # full ids, newest first
    assert "1: 1 failed" in out.stdout and "1: 1 succeeded" in out.stdout
    out = anefarm("jobs", "--json", "--limit", "1", home=home, ANEFARM_DATABASE_URL=db_url)
    body = json.loads(out.stdout)
    assert body["total"] == 2 and [j["job"] for j in body["jobs"]] == [ids[1]]
    out = anefarm("jobs", "--limit", "0", home=home, ANEFARM_DATABASE_URL=db_url)
    assert out.returncode == 2  # usage


def test_cli_status_of_an_unknown_job_is_exit_1_naming_jobs(sessions, db_url, home):
    seed(sessions, [[]])
    out = anefarm("status", str(uuid.uuid4()), home=home, ANEFARM_DATABASE_URL=db_url)
    assert_one_line_error(out, "no job", "`anefarm jobs`")
