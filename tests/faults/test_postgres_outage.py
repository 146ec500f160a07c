"""PostgreSQL stopped for 20 s while results come in: the coordinator's ingest waits for
the database and loses nothing (orchestrator/db_outage.py), and every run ends with
exactly one result."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from orchestrator.db_outage import (
    DatabaseRetry,
    DatabaseUnavailable,
    is_connection_error,
)
from orchestrator.errors import StoreError
from orchestrator.protocol.transport import INGEST_RESULT_TASK, RESULTS_QUEUE
from orchestrator.store.engine import make_engine, session_factory, session_scope
from tests.faults.invariants import (
    BUSY_MODELS,
    assert_exactly_once,
    final_runs,
    queued,
    start_busy_job,
    unacked,
    wait_for,
)
from tests.pipeline.farm import Farm
from tests.services.common import free_port, missing_service, provides
from tests.services.databases import _pg_bin

OUTAGE_S = 20.0


@dataclass
class Postgres:
    """A throwaway cluster driven by pg_ctl, so it can be stopped and started again on the
    same port and data directory (the session's pg_server cannot)."""

    pg_ctl: str
    base: Path
    port: int
    run_as: dict[str, Any]

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        subprocess.run([self.pg_ctl, "-D", str(self.base / "data"), *args],
                       check=True, capture_output=True, timeout=90, **self.run_as)  # fmt: skip

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.base / 'sock'} -c listen_addresses=127.0.0.1"
                   " -c fsync=off -c synchronous_commit=off -c full_page_writes=off")  # fmt: skip
        self._ctl("-l", str(self.base / "server.log"), "-w", "-t", "60", "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        # fast: the server ends every session (clients see "terminating connection due
        # to administrator command"), as in a restart or failover.
        self._ctl("-m", mode, "-w", "-t", "60", "stop")


@pytest.fixture
@provides("postgres")
def postgres() -> Iterator[Postgres]:
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        missing_service("PostgreSQL binaries not found (apt-get install postgresql)")
    run_as: dict[str, Any] = {}
    # Not under pytest's tmp dir: that one is 0700 root and the postgres user must enter.
    base = Path(tempfile.mkdtemp(prefix="anefarm-pg-outage-"))
    (base / "sock").mkdir()
    if os.getuid() == 0:  # initdb and postgres refuse to run as root
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            missing_service("no 'postgres' system user (apt-get install postgresql)")
        for path in (base, base / "sock"):
            os.chown(path, user.pw_uid, user.pw_gid)
        run_as = {"user": "postgres", "group": "postgres", "extra_groups": []}
    subprocess.run([initdb, "-D", str(base / "data"), "-A", "trust", "-U", "postgres",
                    "--no-sync"], check=True, capture_output=True, **run_as)  # fmt: skip
    server = Postgres(pg_ctl=pg_ctl, base=base, port=free_port(), run_as=run_as)
    server.start()
    yield server
    # A failed test may leave it stopped already.
    with contextlib.suppress(subprocess.CalledProcessError):
        server.stop("immediate")
    shutil.rmtree(base, ignore_errors=True)


# Farm.at starts the agent's Celery workers in the test body
@pytest.mark.celery
@pytest.mark.slow
@pytest.mark.parametrize(
    "budget",
    [
        None,  # the default (10 min): ingest waits the outage out
        "6",  # shorter than the outage: the held result goes back to the queue, and again
    ],
    ids=["waits", "requeues"],
)
def test_postgres_stopped_for_20_s_mid_job(tmp_path, redis_url, samples, postgres, budget):
    home = tmp_path / "home"
    home.mkdir()
    farm = Farm(home=home, broker_url=redis_url, database_url=postgres.url)
    if budget is not None:
        farm.extra_env["ANEFARM_DB_OUTAGE_BUDGET_S"] = budget
    try:
        job = start_busy_job(farm, samples)
        client = farm.redis()
        done_before = final_runs(farm, job)
        assert done_before < len(BUSY_MODELS), "the job ended before the outage: make runs longer"
        postgres.stop()
        stopped = time.monotonic()
        # Results keep coming; the coordinator holds one and waits for the database.
        wait_for("a result during the outage", lambda: _results_pending(client),
                 timeout=OUTAGE_S, farm=farm)  # fmt: skip
        time.sleep(max(0.0, stopped + OUTAGE_S - time.monotonic()))
        farm._check()  # the coordinator is still up
        pending = _results_pending(client)
        assert pending, "no result waited for the database: the outage hit nothing"
        postgres.start()
        back = time.monotonic()
        farm.wait_job(job, timeout=120)
        took = time.monotonic() - back
        summary = assert_exactly_once(farm, job)
        assert len(summary) == len(BUSY_MODELS)
        assert all(row["status"] == "succeeded" for row in summary), summary
        assert all(len(row["attempts"]) == 1 for row in summary), summary  # nothing retried
        log = (farm.home / "coordinator.log").read_text(errors="replace")
        assert "database unavailable" in log and "database back after" in log, log[-3000:]
        requeued = log.count(f"goes back to the {RESULTS_QUEUE} queue")
        assert (requeued > 0) == (budget is not None), log[-3000:]
        kind = f"{budget} s" if budget else "default"
        print(f"FIGURE postgres stopped {OUTAGE_S:.0f} s mid-job ({kind} budget,"
              f" {requeued} requeue(s)): recovered in {took:.1f} s"
              f" (database back → job done; {len(BUSY_MODELS) - done_before} of {len(BUSY_MODELS)} results"
              f" came during or after the outage, {pending} waiting when it ended)")  # fmt: skip
    finally:
        farm.kill()  # a teardown: no warm shutdown to wait for


def _results_pending(client: Any) -> int:
    """Results not yet ingested: waiting in the queue or in the coordinator's hands."""
    entries = [e for e in unacked(client) if e["queue"] == RESULTS_QUEUE]
    entries += queued(client, RESULTS_QUEUE)
    return sum(e["task"] == INGEST_RESULT_TASK for e in entries)


def test_connection_errors_are_told_from_other_database_errors(tmp_path, postgres):
    """Real errors only: what ingest may wait out, and what must fail at once."""
    down = make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/postgres")
    with pytest.raises(OperationalError) as refused:
        down.connect()
    assert is_connection_error(refused.value)
    # session_scope wraps it in a StoreError raised from it.
    with pytest.raises(StoreError) as wrapped, session_scope(session_factory(down)) as session:
        session.execute(text("SELECT 1"))
    assert is_connection_error(wrapped.value)

    # A session the server ends (an operator, a failover): PostgreSQL's 57P01.
    engine = make_engine(postgres.url)
    with engine.connect() as victim, engine.connect() as killer:
        pid = victim.execute(text("SELECT pg_backend_pid()")).scalar_one()
        killer.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with pytest.raises(DBAPIError) as ended:
            victim.execute(text("SELECT 1"))
    assert is_connection_error(ended.value)
    with engine.connect() as conn, pytest.raises(DBAPIError) as undefined:
        conn.execute(text("SELECT * FROM no_such_table"))
    assert not is_connection_error(undefined.value)  # a bug, not an outage
    engine.dispose()

    lite = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with lite.connect() as conn:
        with pytest.raises(OperationalError) as missing:
            conn.execute(text("SELECT * FROM no_such_table"))
        assert not is_connection_error(missing.value)
        conn.execute(text("CREATE TABLE t (k INTEGER PRIMARY KEY)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
        with pytest.raises(IntegrityError) as twice:
            conn.execute(text("INSERT INTO t VALUES (1)"))
        assert not is_connection_error(twice.value)
    lite.dispose()
    assert not is_connection_error(ValueError("not a database error"))


def test_retry_gives_up_after_its_budget_and_passes_other_errors_at_once():
    down = make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/postgres")
    retry = DatabaseRetry(down, budget_s=1.5, first_delay_s=0.1, max_delay_s=0.5)
    tries = []

    def query() -> None:
        tries.append(time.monotonic())
        with down.connect() as conn:
            conn.execute(text("SELECT 1"))

    with pytest.raises(DatabaseUnavailable):
        retry.call(query)
    assert len(tries) >= 3 and tries[-1] - tries[0] >= 1.0
    calls = []

    def broken() -> None:
        calls.append(1)
        raise ValueError("a bug")

    with pytest.raises(ValueError, match="a bug"):
        retry.call(broken)
    assert calls == [1]  # not retried
