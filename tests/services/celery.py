"""Real Celery workers for tests, each a subprocess in its own session.

``start_worker`` runs either a tasks module through this file's entry point
(``python -m tests.services.celery --tasks pkg.mod:register --queue Q ...``: build the
app from Settings, let ``register(app)`` add tasks, consume) or any command line that
ends up in ``run_worker`` — ``python -m agents.worker ...``, ``anefarm coordinator`` —
and waits until the worker answers a remote-control ping, i.e. its consumer loop runs.
Settings reach the child as ``ANEFARM_*`` environment variables, as in production.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from celery.utils.nodenames import host_format

from orchestrator.protocol.transport import create_app, run_worker
from orchestrator.settings import load_settings
from tests.services.common import provides

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 30.0
STOP_GRACE_S = 5.0

Register = Callable[[Celery], None]
Target = str | Register | Sequence[str]


@dataclass
class WorkerProcess:
    """A running worker subprocess (its session also holds the prefork pool child)."""

    name: str
    hostname: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self, sig: signal.Signals = signal.SIGKILL) -> None:
        """Signal the whole worker: parent and pool child, as a crash of the host would."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.kill(signal.SIGTERM)  # warm shutdown
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=STOP_GRACE_S)
        self.kill(signal.SIGKILL)  # also any pool child left behind
        self.process.wait()


def settings_env(broker_url: str, home: Path, settings: Mapping[str, Any]) -> dict[str, str]:
    """The environment a worker child reads its Settings from."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANEFARM_")}
    env["ANEFARM_BROKER_URL"] = broker_url
    env["ANEFARM_HOME"] = str(home)
    env.update({f"ANEFARM_{key.upper()}": str(value) for key, value in settings.items()})
    # The child imports `tests.*` and the project from this checkout.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


def _spec(target: Register | str) -> str:
    if isinstance(target, str):
        return target
    if "<" in target.__qualname__:
        raise ValueError("start_worker needs a module-level function, not a local one")
    return f"{target.__module__}:{target.__qualname__}"


def wait_until_ready(app: Celery, worker: WorkerProcess, timeout: float = READY_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.process.poll() is not None:
            code = worker.process.returncode
            pytest.fail(f"worker {worker.name} exited with {code}:\n{worker.log()[-3000:]}")
        if app.control.ping(destination=[worker.hostname], timeout=0.5):
            return
    pytest.fail(f"worker {worker.name} not ready after {timeout:.0f} s:\n{worker.log()[-3000:]}")


@pytest.fixture
def celery_app_factory(redis_url: str, tmp_path: Path) -> Callable[..., Celery]:
    """``factory(**settings)`` → ``create_app(settings)`` on the test Redis."""

    def factory(**settings: Any) -> Celery:
        values = {"broker_url": redis_url, "home": tmp_path / "home", **settings}
        return create_app(load_settings(**values))

    return factory


@pytest.fixture
@provides("celery")
def start_worker(
    redis_url: str, tmp_path: Path, celery_app_factory: Callable[..., Celery]
) -> Iterator[Callable[..., WorkerProcess]]:
    """``start_worker(target, queues, *, name, hostname, pool, settings, env)``.

    ``target`` is ``"module:register"`` / a module-level ``register(app)`` function (run
    through this module's entry point, consuming ``queues``), or a full command line
    (then ``queues`` is ignored and ``hostname`` must be what that worker calls itself).
    Returns once the worker answers a ping; every worker is stopped at teardown.
    """
    workers: list[WorkerProcess] = []
    control = celery_app_factory()

    def start(
        target: Target,
        queues: Sequence[str] = (),
        *,
        name: str = "w1",
        hostname: str | None = None,
        pool: str = "prefork",
        settings: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> WorkerProcess:
        home = tmp_path / f"worker-{name}"
        home.mkdir(parents=True, exist_ok=True)
        if isinstance(target, str) or callable(target):
            hostname = hostname or f"{name}@test"
            argv = [sys.executable, "-m", "tests.services.celery", "--tasks", _spec(target)]
            argv += ["--hostname", hostname, "--pool", pool]
            for queue in queues:
                argv += ["--queue", queue]
        elif hostname is None:
            raise ValueError("a command-line worker needs the hostname it will answer to")
        else:
            argv = list(target)
        full_env = {**settings_env(redis_url, home, settings or {}), **(env or {})}
        log_path = tmp_path / f"worker-{name}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                argv,
                env=full_env,
                cwd=REPO_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # killpg reaches the pool child too
            )
        worker = WorkerProcess(name, host_format(hostname), process, log_path)
        workers.append(worker)
        wait_until_ready(control, worker)
        return worker

    yield start
    # Teardown asserts nothing about a worker's shutdown: SIGKILL (a warm shutdown costs
    # seconds a worker on the loaded CI machine); tests of the shutdown call stop().
    for worker in workers:
        worker.kill()
    for worker in workers:
        worker.process.wait()
    control.close()


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of a test worker: Settings from the environment, tasks from --tasks."""
    parser = argparse.ArgumentParser(prog="python -m tests.services.celery")
    parser.add_argument("--tasks", required=True, help="module:function(app) registering tasks")
    parser.add_argument("--queue", action="append", required=True, dest="queues")
    parser.add_argument("--hostname", required=True)
    parser.add_argument("--pool", default="prefork", choices=["prefork", "solo"])
    parser.add_argument("--loglevel", default="WARNING")
    args = parser.parse_args(argv)
    module_name, _, function_name = args.tasks.partition(":")
    register: Register = getattr(importlib.import_module(module_name), function_name)
    app = create_app(load_settings())
    register(app)
    run_worker(app, args.queues, hostname=args.hostname, pool=args.pool, loglevel=args.loglevel)


if __name__ == "__main__":
    main()
