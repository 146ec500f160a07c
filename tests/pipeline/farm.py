"""A whole anefarm on this machine for pipeline tests: real Redis (from the service
fixtures), a real coordinator process and a real agent with one Celery worker process
per simulated device, all started through the ``anefarm`` CLI as a user would."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from orchestrator.protocol import livestate
from orchestrator.report import build_report, job_status
from orchestrator.settings import Settings, load_settings
from orchestrator.store.engine import make_engine, session_factory
from orchestrator.store.migrate import upgrade
from tests.services.common import provides
from tests.services.databases import migrate_to_head


@dataclass
class Farm:
    home: Path
    broker_url: str
    database_url: str
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)
    _engine: Any = None

    @classmethod
    def at(cls, tmp_path: Path, broker_url: str) -> Farm:
        """A farm whose home (and SQLite database) is ``tmp_path/home``."""
        home = tmp_path / "home"
        home.mkdir(exist_ok=True)
        database_url = f"sqlite:///{home / 'anefarm.db'}"
        if not (home / "anefarm.db").exists():
            # A copy of the session's migrated schema: the coordinator's start-up migration
            # then finds it at head (tests/store runs the migrations themselves).
            migrate_to_head(database_url)
        return cls(home=home, broker_url=broker_url, database_url=database_url)

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "ANEFARM_HOME": str(self.home),
            "ANEFARM_BROKER_URL": self.broker_url,
            "ANEFARM_DATABASE_URL": self.database_url,
            "ANEFARM_RETRY_BACKOFF_S": "0.2",
            "ANEFARM_HEARTBEAT_TTL_S": "6",
            **self.extra_env,
        }

    def settings(self) -> Settings:
        return load_settings(
            home=self.home,
            broker_url=self.broker_url,
            database_url=self.database_url,
            retry_backoff_s=0.2,
            heartbeat_ttl_s=6,
        )

    def sessions(self) -> Any:
        # One engine per farm, disposed in stop(): no connection outlives the test.
        if self._engine is None:
            upgrade(self.database_url)
            self._engine = make_engine(self.database_url)
        return session_factory(self._engine)

    def redis(self) -> Any:
        return livestate.connect(self.broker_url)

    def cli(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(
            [sys.executable, "-m", "orchestrator", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and out.returncode != 0:
            raise AssertionError(
                f"anefarm {' '.join(args)} failed ({out.returncode}):\n{out.stderr}"
            )
        return out

    def _spawn(self, name: str, *args: str) -> None:
        with (self.home / f"{name}.log").open("ab") as log:
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "orchestrator", *args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: teardown reaches the workers
            )

    def start_coordinator(self, *args: str) -> None:
        self._spawn("coordinator", "coordinator", *args)

    def start_agent(
        self,
        farm: str,
        *,
        name: str = "agent-1",
        time_mode: str = "instant",
        speed: float = 1.0,
        wait_for: int | None = None,
    ) -> None:
        self._spawn(
            name,
            "agent",
            "--simulate",
            farm,
            "--name",
            name,
            "--time-mode",
            time_mode,
            "--speed",
            str(speed),
        )
        if wait_for:
            self.wait_devices(wait_for)

    def start_ios_agent(self, *, name: str = "agent-1") -> None:
        """`anefarm agent --ios`: one worker per device usbmuxd lists (set
        USBMUXD_SOCKET_ADDRESS in ``extra_env`` to point it at a fake)."""
        self._spawn(name, "agent", "--ios", "--name", name)

    def wait_devices(self, count: int, timeout: float = 60) -> list[livestate.DeviceStatus]:
        deadline = time.monotonic() + timeout
        client = self.redis()  # one client for the whole wait, polled every 50 ms
        try:
            while time.monotonic() < deadline:
                live = livestate.live_devices(client)
                if len(live) >= count and all(d.pid for d in live):
                    return live
                self._check()
                time.sleep(0.05)
            up = len(livestate.live_devices(client))
        finally:
            client.close()
        raise AssertionError(f"only {up} of {count} devices came up\n{self.logs()}")

    def wait_job(self, job: str, timeout: float = 120) -> dict[str, Any]:
        sessions = self.sessions()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with sessions() as session:
                status = job_status(session, job)
            if status["done"]:
                with sessions() as session:
                    return build_report(session, job)
            self._check()
            time.sleep(0.1)
        raise AssertionError(f"job {job} not done: {status}\n{self.logs()}")

    def attempts(self, run_id: str) -> list[Any]:
        """A run's attempts (``RunAttempt`` rows), in order."""
        from sqlalchemy import select

        from orchestrator.store import models as db

        with self.sessions()() as session:
            query = select(db.RunAttempt).where(db.RunAttempt.run_id == uuid.UUID(run_id))
            return list(session.execute(query.order_by(db.RunAttempt.attempt)).scalars())

    def _check(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise AssertionError(f"{name} exited with {proc.returncode}\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name} ---\n{p.read_text(errors='replace')[-4000:]}"
            for p in sorted(self.home.glob("*.log"))
        )

    def stop(self) -> None:
        """The farm's warm shutdown (SIGTERM), as Ctrl-C or systemd stops it (a fixture's
        teardown, where nothing is asserted about it, calls :meth:`kill`)."""
        stop_processes(self.procs)
        self._dispose()

    def kill(self) -> None:
        """SIGKILL every process group at once: a teardown's stop, where nothing is asserted
        about the shutdown. A warm one costs 3-6 s per farm on the loaded CI machine (the
        Celery pools' stop, then each interpreter's exit); tests of the shutdown itself, or
        of what a stopped farm left behind, call :meth:`stop` in the test."""
        kill_processes(self.procs)
        self._dispose()

    def _dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


def stop_processes(procs: dict[str, subprocess.Popen[bytes]]) -> None:
    """SIGTERM every process (each the leader of its own session), wait up to 30 s for each
    before SIGKILL, then kill what is left of its group (a worker whose supervisor died
    first); ``procs`` ends empty."""
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs.values():
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    procs.clear()


def kill_processes(procs: dict[str, subprocess.Popen[bytes]]) -> None:
    """SIGKILL each process's whole group (each the leader of its own session) and reap
    the leaders; ``procs`` ends empty."""
    for proc in procs.values():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    for proc in procs.values():
        proc.wait()
    procs.clear()


@pytest.fixture
@provides("celery")  # Farm.at starts the agent's Celery workers
def farm(tmp_path: Path, redis_url: str) -> Iterator[Farm]:
    """A farm whose coordinator runs; each test starts the agents it needs. Import it by
    name into a test module (and list it in ``__all__``) to use it."""
    farm = Farm.at(tmp_path, redis_url)
    try:
        farm.start_coordinator()
        yield farm
    finally:
        farm.kill()
