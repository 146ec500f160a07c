"""The farm's processes: ``anefarm agent`` and ``anefarm coordinator``, and ``profile`` and
``demo``, which run both (and an embedded Redis) on this machine for one job.

A job on a running farm is submitted and followed with the commands in cli/submit.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from orchestrator.cli.options import (
    ALL_UNITS,
    BisectOpt,
    ColdLoadOpt,
    DevicesOpt,
    FailOnOpt,
    JsonOpt,
    UnitsOpt,
    broker_url,
    checked_fail_on,
    checked_time_mode,
    submit_options,
)
from orchestrator.errors import UsageError
from orchestrator.settings import load_settings


def profile_cmd(
    models: Annotated[list[Path], typer.Argument(help=".mlmodel files or .mlpackage directories")],
    simulate: Annotated[
        str, typer.Option("--simulate", help="Simulated farm, e.g. iPhone11,8=2,iPhone13,2=1")
    ],
    devices: DevicesOpt = "live",
    compute_units: UnitsOpt = ALL_UNITS,
    iterations: Annotated[int, typer.Option(help="Timed predictions per setting")] = 50,
    warmup: Annotated[int, typer.Option(help="Warm-up predictions per setting")] = 5,
    timeout: Annotated[float, typer.Option(help="Seconds a batch may take")] = 600.0,
    seed: Annotated[int, typer.Option(help="Seed of the simulated farm")] = 0,
    time_mode: Annotated[
        str,
        typer.Option(
            help="Simulated time: instant, or realtime (batches take as long as on a device)"
        ),
    ] = "instant",
    speed: Annotated[float, typer.Option(help="Realtime speed factor")] = 1.0,
    bisect: BisectOpt = None,
    cold_load: ColdLoadOpt = "process",
    fail_on: FailOnOpt = "never",
    as_json: JsonOpt = False,
) -> int:
    """Profile on this machine: embedded Redis, coordinator and agent, then the report.

    Exit 0 when every run succeeded, 4 when some failed, 3 on findings with --fail-on
    not-full; Ctrl-C cancels the job and exits 130.
    """
    from orchestrator import render
    from orchestrator.local import ProfileRequest, profile
    from orchestrator.progress import exit_code

    fail_on = checked_fail_on(fail_on)
    request = ProfileRequest(
        models=models,
        farm=simulate,
        options=submit_options(
            devices, compute_units, iterations, warmup, timeout, bisect, cold_load
        ),
        seed=seed,
        time_mode=checked_time_mode(time_mode),
        speed=speed,
    )
    report = profile(
        load_settings(), request, err=Console(stderr=True, highlight=False, soft_wrap=True)
    )
    if as_json:
        typer.echo(render.as_json(report))
    else:
        render.print_table(report)
    return exit_code(report, fail_on=fail_on)


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
    app.command("profile")(profile_cmd)
    app.command("demo")(demo_cmd)
    app.command("agent")(agent_cmd)
    app.command("coordinator")(coordinator_cmd)
