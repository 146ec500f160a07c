"""The store on SQLite and PostgreSQL alike (one parametrized fixture)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from orchestrator.store import models as db
from orchestrator.store.engine import make_engine, session_factory, session_scope
from orchestrator.store.migrate import current_revision, head_revision, upgrade

NOW = datetime(2026, 11, 25, tzinfo=UTC)


def test_migrations_match_the_orm_exactly(db_url):
    upgrade(db_url)
    engine = make_engine(db_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), db.Base.metadata)
    engine.dispose()
    assert diff == []
    assert current_revision(db_url) == head_revision()


def test_upgrade_is_idempotent(db_url):
    upgrade(db_url)
    upgrade(db_url)
    assert current_revision(db_url) == head_revision()


def test_concurrent_upgrades_of_a_fresh_database_all_succeed(db_url):
    # Seen: `anefarm submit` and a starting coordinator upgrading one SQLite database at
    # once, and the second failing with "duplicate column name".
    code = "import sys; from orchestrator.store.migrate import upgrade; upgrade(sys.argv[1])"
    procs = [
        subprocess.Popen([sys.executable, "-c", code, db_url], stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errors
    assert current_revision(db_url) == head_revision()


def _job_and_run(session):
    session.add(
        db.Model(
            sha256="e" * 64, filename="m.mlmodel", format="mlmodel", size_bytes=3, created_at=NOW
        )
    )
    job = db.Job(id=uuid.uuid4(), created_at=NOW, selector="A12", spec={"compute_units": ["all"]})
    session.add(job)
    session.flush()
    run = db.Run(
        id=uuid.uuid4(),
        job_id=job.id,
        model_sha256="e" * 64,
        device_class="iPhone11,8",
        created_at=NOW,
    )
    session.add(run)
    session.flush()
    return job, run


def test_round_trip_with_uuid_json_and_timestamps(sessions):
    with session_scope(sessions) as session:
        _job, run = _job_and_run(session)
        session.add(
            db.Measurement(
                run_id=run.id, compute_units="all", samples_ms=[1.5, 2.5], count=2, p50=2.0
            )
        )
        run_id = run.id
    with sessions() as session:
        stored = session.get(db.Run, run_id)
        assert stored.status == "queued" and stored.attempts == 1
        m = session.query(db.Measurement).filter_by(run_id=run_id).one()
        assert m.samples_ms == [1.5, 2.5]
        assert session.get(db.Job, stored.job_id).spec == {"compute_units": ["all"]}


def test_one_attempt_row_per_run_and_attempt(sessions):
    with session_scope(sessions) as session:
        _, run = _job_and_run(session)
        run_id = run.id

    def attempt():
        return db.RunAttempt(
            run_id=run_id,
            attempt=1,
            udid="SIM-1",
            agent="a",
            outcome="ok",
            started_at=NOW,
            finished_at=NOW,
        )

    with session_scope(sessions) as session:
        session.add(attempt())
    with pytest.raises(IntegrityError), session_scope(sessions) as session:
        session.add(attempt())
    with sessions() as session:
        assert session.query(db.RunAttempt).count() == 1


def test_foreign_keys_are_enforced(sessions):
    with pytest.raises(IntegrityError), session_scope(sessions) as session:
        session.add(
            db.Run(
                id=uuid.uuid4(),
                job_id=uuid.uuid4(),
                model_sha256="f" * 64,
                device_class="iPhone11,8",
                created_at=NOW,
            )
        )


def test_two_sqlite_writer_processes_do_not_lock(sqlite_url):
    upgrade(sqlite_url)
    code = (
        "import sys, uuid, datetime\n"
        "from orchestrator.store import models as db\n"
        "from orchestrator.store.engine import make_engine, session_factory, session_scope\n"
        "s = session_factory(make_engine(sys.argv[1]))\n"
        "for i in range(150):\n"
        "    with session_scope(s) as x:\n"
        "        x.add(db.Device(udid=f'{sys.argv[2]}-{i}', product_type='iPhone11,8', chip='A12', last_seen=datetime.datetime.now(datetime.UTC)))\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, sqlite_url, tag], stderr=subprocess.PIPE)
        for tag in "ab"
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    engine = make_engine(sqlite_url)
    with session_factory(engine)() as session:
        assert session.scalar(select(func.count()).select_from(db.Device)) == 300
    engine.dispose()


def test_cli_db_upgrade_on_a_path_and_a_url(tmp_path, pg_url):
    for target in (str(tmp_path / "x" / "farm.db"), pg_url):
        out = subprocess.run(
            [sys.executable, "-m", "orchestrator", "db", "upgrade", "--url", target],
            capture_output=True,
            text=True,
        )
        assert out.returncode == 0, out.stderr
        assert head_revision() in out.stdout


def test_cli_db_bad_url_is_one_line(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "orchestrator",
            "db",
            "upgrade",
            "--url",
            "postgresql+psycopg://nobody@127.0.0.1:1/none",
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1
    assert "Traceback" not in out.stderr and out.stderr.count("\n") == 1
