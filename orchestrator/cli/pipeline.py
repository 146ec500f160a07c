"""The farm's processes: ``anefarm agent`` (one worker per device of this host) and
``anefarm coordinator``; ``anefarm demo`` runs both, with an embedded Redis, on this machine
for the sample models.

Jobs are submitted, profiled on one machine, followed and cancelled with the commands in
cli/submit.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from orchestrator.cli.options import broker_url, checked_time_mode
from orchestrator.errors import UsageError
from orchestrator.settings import load_settings


def demo_cmd(
    out: Annotated[Path | None, typer.Option(help="Where to write samples and the report")] = None,
) -> None:
    """Write the sample models and profile them on a simulated A12–A17 farm."""
    from orchestrator.demo import run_demo

    run_demo(load_settings(), out=out)


def agent_cmd(
    simulate: Annotated[
        str | None,
        typer.Option("--simulate", help="Simulated farm: iPhone11,8=2,iPad8,1=1 or a YAML file"),
    ] = None,
    ios: Annotated[
        bool,
        typer.Option("--ios", help="Drive this Mac's USB iPhones/iPads (docs/real-devices.md)"),
    ] = False,
    name: Annotated[str | None, typer.Option(help="Agent name (default: host name)")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the simulated farm")] = 0,
    time_mode: Annotated[str, typer.Option(help="Simulated time: instant or realtime")] = "instant",
    speed: Annotated[float, typer.Option(help="Realtime speed factor")] = 1.0,
    loglevel: Annotated[str, typer.Option(help="Log level of the workers")] = "WARNING",
) -> None:
    """Run an agent: one worker process per device of this host."""
    from agents.supervisor import FarmPlan, run_agent

    if not simulate and not ios:
        raise UsageError(
            "no devices to drive",
            hint="use --simulate FARM (USB devices: --ios, see docs/real-devices.md)",
        )
    checked_time_mode(time_mode)
    settings = load_settings()
    plan = FarmPlan(farm=simulate, ios=ios, seed=seed, time_mode=time_mode, speed=speed)
    run_agent(settings, broker_url=broker_url(settings), name=name, plan=plan, loglevel=loglevel)


def coordinator_cmd(
    serve: Annotated[
        str | None,
        typer.Option(
            "--serve",
            "--serve-artifacts",
            help="Also serve the web app (API, dashboard, model downloads) at HOST:PORT",
        ),
    ] = None,
    loglevel: Annotated[str, typer.Option(help="Log level")] = "WARNING",
) -> None:
    """Run the coordinator: ingest results, decide verdicts, retry infra failures."""
    from orchestrator.coordinator import run_coordinator

    settings = load_settings()
    run_coordinator(settings, broker_url=broker_url(settings), serve=serve, loglevel=loglevel)


def register(app: typer.Typer) -> None:
    # In the order `anefarm --help` lists them, after the job commands (cli/submit.py).
    app.command("demo")(demo_cmd)
    app.command("agent")(agent_cmd)
    app.command("coordinator")(coordinator_cmd)
