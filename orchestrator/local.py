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

from orchestrator.broker.embedded import resolve_broker
from orchestrator.dispatch import SubmitOptions, cancel, prepare, submit
from orchestrator.errors import ServiceError, UsageError
from orchestrator.progress import wait_for_job
from orchestrator.protocol import livestate
from orchestrator.protocol.privileges import warn_if_root
from orchestrator.protocol.transport import create_app
from orchestrator.report import build_report
from orchestrator.selection import FarmView
from orchestrator.settings import Settings
from orchestrator.store.engine import make_engine, session_factory
from orchestrator.store.migrate import upgrade

# XR and XS (A12), iPad Pro 2018 (A12X), iPhone 12 (A14), iPhone 15 Pro (A17 Pro). The XR
# stays on iOS 16 (no compute plan): its verdicts come from timing and bisection, the XS's
# from the compute plan, side by side.
DEMO_FARM = "iPhone11,8@16.7.8=1,iPhone11,2=1,iPad8,1=1,iPhone13,2=1,iPhone16,1=1"
STARTUP_TIMEOUT_S = 90.0


LOCAL_AGENT = "local"  # the name of the agent `anefarm profile` starts


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

    devices = build_farm(farm, seed=seed, agent=LOCAL_AGENT)  # the UDIDs its agent will have
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
    """Run the whole pipeline on this machine and return the report.

    The farm lives only as long as this call: if it ends before the job is done (Ctrl-C,
    a child process that died, the time limit), the job is cancelled, so no run is left
    waiting for a farm that is gone, and the error (or the interrupt) goes on up.
    """
    devices = _farm_classes(request.farm, request.seed)
    wanted = {pt for _, pt in devices}
    options = request.options
    if options.selector == "live":
        options = SubmitOptions(**{**options.__dict__, "selector": ",".join(sorted(wanted))})
    # The farm is known before it starts: refuse bad input and unmatched selectors now.
    prepared = prepare(request.models, options, FarmView.of(wanted))
    if prepared.waiting:  # a named class the local farm does not have would wait for ever
        err.print(
            f"[yellow]warning:[/yellow] the farm has no device for {', '.join(sorted(prepared.waiting))}"
        )
        prepared.classes = [c for c in prepared.classes if c.product_type in wanted]
        prepared.waiting = set()
        if not prepared.classes:
            raise UsageError(
                f"no device of the farm {request.farm!r} matches {options.selector!r}",
                hint="add such a device to --simulate, or choose other --devices",
            )
    upgrade(settings.resolved_database_url)
    warn_if_root()  # once on this terminal; the coordinator and agent started below inherit it
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
        agent_args = ["agent", "--simulate", request.farm, "--name", LOCAL_AGENT]
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
        job = str(outcome.job_id)
        err.print(
            f"job {job}: {len(outcome.runs)} run(s) on {len(prepared.classes)} device class(es)"
        )
        finished = False
        try:
            finished = wait_for_job(
                sessions, job, request.timeout_s, err, check=lambda: _check_alive(procs, logs)
            )
        finally:
            if not finished:
                _cancel_unfinished(outcome.job_id, sessions, client, err)
        with sessions() as session:
            report = build_report(session, job)
        if not finished:
            raise ServiceError(
                f"job {job} not done after {request.timeout_s:.0f}s; cancelled",
                hint=f"see the logs in {logs}",
            )
        return report


def _cancel_unfinished(job_id: Any, sessions: Any, client: Any, err: Console) -> None:
    try:
        cancelled = cancel(job_id, sessions=sessions, client=client)
    except Exception as error:  # noqa: BLE001 - already on an error path: say it, go on
        err.print(f"job {job_id}: could not be cancelled: {error}")
        return
    err.print(f"job {job_id}: cancelled ({len(cancelled)} unfinished run(s))")


# How a child ends when Ctrl-C reached its process group: killed by SIGINT, or anefarm's
# own exit status for an interrupt.
INTERRUPTED_RETURNCODES = (-signal.SIGINT, 130)


def _check_alive(procs: list[subprocess.Popen[bytes]], logs: Path) -> None:
    for proc in procs:
        returncode = proc.poll()
        if returncode in INTERRUPTED_RETURNCODES:
            # Ctrl-C in a terminal reaches the children too, and one may end before this
            # process sees its own KeyboardInterrupt: that is the person's interrupt (exit
            # 130, job cancelled), not a child that "exited early" (exit 1).
            raise KeyboardInterrupt
        if returncode is not None:
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
