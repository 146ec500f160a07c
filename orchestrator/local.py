"""One-machine mode: ``anefarm profile`` and ``anefarm demo``.

Runs the very same pipeline as a farm — embedded Redis, a coordinator process and an
agent process with one worker per simulated device — submits, waits with progress on
stderr, prints the report, and stops everything it started, also on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from orchestrator import livestate
from orchestrator.broker.embedded import resolve_broker
from orchestrator.celery_app import create_app
from orchestrator.dispatch import SubmitOptions, prepare, submit
from orchestrator.errors import ServiceError
from orchestrator.report import build_report, job_status
from orchestrator.settings import Settings
from orchestrator.store.engine import make_engine, session_factory
from orchestrator.store.migrate import upgrade

# XR and XS (A12), iPad Pro 2018 (A12X), iPhone 12 (A14), iPhone 15 Pro (A17 Pro). The XR
# stays on iOS 16 (no compute plan): its verdicts come from timing and bisection, the XS's
# from the compute plan, side by side.
DEMO_FARM = "iPhone11,8@16.7.8=1,iPhone11,2=1,iPad8,1=1,iPhone13,2=1,iPhone16,1=1"
STARTUP_TIMEOUT_S = 90.0


@dataclass
class ProfileRequest:
    models: Sequence[Path]
    farm: str
    options: SubmitOptions
    seed: int = 0
    time_mode: str = "instant"
    speed: float = 1.0
    timeout_s: float = 1800.0


def _farm_classes(farm: str, seed: int) -> list[tuple[str, str]]:
    from agents.devices.simulated import build_farm

    devices = build_farm(farm, seed=seed)
    found = [(d.identity.udid, d.identity.product_type) for d in devices]
    for device in devices:
        device.close()
    return found


@contextlib.contextmanager
def _children() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    try:
        yield procs
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for proc in reversed(procs):
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _spawn(args: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "orchestrator", *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def profile(settings: Settings, request: ProfileRequest, *, err: Console) -> dict[str, Any]:
    """Run the whole pipeline on this machine and return the report."""
    devices = _farm_classes(request.farm, request.seed)
    options = request.options
    if options.selector == "live":
        classes = sorted({pt for _, pt in devices})
        options = SubmitOptions(**{**options.__dict__, "selector": ",".join(classes)})
    prepared = prepare(request.models, options, None)  # refuse bad input before starting
    wanted = {pt for _, pt in devices}
    missing = [c.product_type for c in prepared.classes if c.product_type not in wanted]
    if missing:
        err.print(f"[yellow]warning:[/yellow] the farm has no device for {', '.join(missing)}")
        prepared.classes = [c for c in prepared.classes if c.product_type in wanted]
    upgrade(settings.resolved_database_url)
    logs = settings.home / "logs"
    with contextlib.ExitStack() as stack:
        broker_url, redis_server = resolve_broker(settings)
        if redis_server is not None:
            stack.callback(redis_server.stop)
        env = {**os.environ, "ANEFARM_BROKER_URL": broker_url, "ANEFARM_HOME": str(settings.home)}
        if settings.database_url:
            env["ANEFARM_DATABASE_URL"] = settings.database_url
        procs = stack.enter_context(_children())
        procs.append(_spawn(["coordinator"], env, logs / "coordinator.log"))
        agent_args = ["agent", "--simulate", request.farm, "--name", "local"]
        agent_args += ["--seed", str(request.seed), "--time-mode", request.time_mode]
        agent_args += ["--speed", str(request.speed)]
        procs.append(_spawn(agent_args, env, logs / "agent.log"))
        client = livestate.connect(broker_url)
        _wait_for_devices(client, {u for u, _ in devices}, procs, err, logs)
        run_settings = settings.model_copy(update={"broker_url": broker_url})
        sessions = session_factory(make_engine(settings.resolved_database_url))
        outcome = submit(
            prepared, settings=run_settings, sessions=sessions, app=create_app(run_settings)
        )
        err.print(
            f"job {outcome.job_id}: {len(outcome.runs)} run(s) on {len(prepared.classes)} device class(es)"
        )
        wait_for_job(sessions, str(outcome.job_id), request.timeout_s, procs, err, logs)
        with sessions() as session:
            return build_report(session, str(outcome.job_id))


def _check_alive(procs: list[subprocess.Popen[bytes]], logs: Path) -> None:
    for proc in procs:
        if proc.poll() is not None:
            raise ServiceError(
                f"a child process exited early ({' '.join(map(str, proc.args[2:4]))})",  # type: ignore[index]
                hint=f"see the logs in {logs}",
            )


def _wait_for_devices(
    client: Any, udids: set[str], procs: list[subprocess.Popen[bytes]], err: Console, logs: Path
) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    with err.status(f"starting {len(udids)} simulated device worker(s)…"):
        while True:
            live = {d.udid for d in livestate.live_devices(client)}
            if udids <= live:
                return
            _check_alive(procs, logs)
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"only {len(udids & live)} of {len(udids)} device workers came up",
                    hint=f"see the logs in {logs}",
                )
            time.sleep(0.2)


def wait_for_job(
    sessions: Any,
    job_id: str,
    timeout_s: float,
    procs: list[subprocess.Popen[bytes]],
    err: Console,
    logs: Path,
) -> None:
    deadline = time.monotonic() + timeout_s
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=False) as progress:
        task = progress.add_task("runs", total=None)
        while True:
            with sessions() as session:
                status = job_status(session, job_id)
            finished = sum(
                v for k, v in status["by_status"].items() if k not in {"queued", "running"}
            )
            progress.update(
                task,
                total=status["runs"],
                completed=finished,
                description=f"runs ({status['status']})",
            )
            if status["done"]:
                return
            _check_alive(procs, logs)
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"job {job_id} not done after {timeout_s:.0f}s", hint=f"see {logs}"
                )
            time.sleep(0.25)
