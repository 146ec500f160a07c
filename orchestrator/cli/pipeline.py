"""Pipeline commands: submit, agent, coordinator, status, report, cancel, profile, demo."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from orchestrator.errors import UsageError
from orchestrator.protocol import ComputeUnits
from orchestrator.settings import Settings, load_settings

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout")]
DevicesOpt = Annotated[
    str,
    typer.Option(
        "--devices",
        help="Device classes: all, A12, iPhone11,8, iPad8,*, chip>=A14 (default: those live now)",
    ),
]
UnitsOpt = Annotated[
    str,
    typer.Option(
        "--compute-units", help="Comma-separated: all,cpuAndNeuralEngine,cpuAndGPU,cpuOnly"
    ),
]
ALL_UNITS = ",".join(u.value for u in ComputeUnits)
ColdLoadOpt = Annotated[
    str,
    typer.Option(
        "--cold-load",
        help="process (first load in the runner's process) or fresh_compile (compile to a"
        " fresh path before every setting's cold load: truly cold, one compile per setting)",
    ),
]
BisectOpt = Annotated[
    bool | None,
    typer.Option(
        "--bisect/--no-bisect",
        help="Probe every op on the device (default: only when the verdict needs it)",
    ),
]


# The top-level commands this module adds, in the order `anefarm --help` lists them (the
# order they are defined in): each is named where it is defined, as in the sub-apps.
_COMMANDS: list[tuple[str, Callable[..., Any]]] = []
Command = TypeVar("Command", bound=Callable[..., Any])


def _command(name: str) -> Callable[[Command], Command]:
    def named(command: Command) -> Command:
        _COMMANDS.append((name, command))
        return command

    return named


def _time_mode(value: str) -> str:
    if value not in {"instant", "realtime"}:
        raise UsageError(f"unknown time mode {value!r}", hint="instant or realtime")
    return value


def _broker(settings: Settings) -> str:
    if settings.broker_url:
        return settings.broker_url
    raise UsageError(
        "no broker configured",
        hint="set ANEFARM_BROKER_URL=redis://… (or use `anefarm profile` for one machine)",
    )


def _sessions(settings: Settings) -> Any:
    from orchestrator.store.engine import make_engine, session_factory

    return session_factory(make_engine(settings.resolved_database_url))


def _options(
    devices: str,
    compute_units: str,
    iterations: int,
    warmup: int,
    timeout: float,
    bisect: bool | None = None,
    cold_load: str = "process",
) -> Any:
    from orchestrator.dispatch import SubmitOptions, parse_compute_units

    return SubmitOptions(
        selector=devices,
        compute_units=parse_compute_units(compute_units),
        iterations=iterations,
        warmup=warmup,
        timeout_s=timeout,
        bisect="auto" if bisect is None else "always" if bisect else "never",
        cold_load=cold_load,
    )


FailOnOpt = Annotated[
    str,
    typer.Option(
        "--fail-on",
        help="Exit 3 on findings: never, or not-full (a verdict other than FULL)",
    ),
]


def _fail_on(value: str) -> str:
    from orchestrator.progress import FAIL_ON

    if value not in FAIL_ON:
        raise UsageError(f"unknown --fail-on {value!r}", hint=f"choose {' or '.join(FAIL_ON)}")
    return value


def _farm(settings: Settings, broker: str, sessions: Any) -> Any:
    from orchestrator.protocol import livestate
    from orchestrator.selection import farm_view

    return farm_view(livestate.connect(broker), sessions)


@_command("submit")
def submit_cmd(
    models: Annotated[list[Path], typer.Argument(help=".mlmodel files or .mlpackage directories")],
    devices: DevicesOpt = "live",
    compute_units: UnitsOpt = ALL_UNITS,
    iterations: Annotated[int, typer.Option(help="Timed predictions per setting")] = 50,
    warmup: Annotated[int, typer.Option(help="Untimed warm-up predictions per setting")] = 5,
    timeout: Annotated[float, typer.Option(help="Seconds a batch may take on a device")] = 600.0,
    wait: Annotated[
        bool, typer.Option("--wait", help="Show progress until done, then the report")
    ] = False,
    wait_timeout: Annotated[
        float,
        typer.Option("--wait-timeout", help="With --wait: give up waiting after this many s"),
    ] = 24 * 3600.0,
    fail_on: FailOnOpt = "never",
    bisect: BisectOpt = None,
    cold_load: ColdLoadOpt = "process",
    as_json: JsonOpt = False,
) -> int:
    """Profile models on the farm: validate, store, and queue one batch per device class.

    With --wait: exit 0 when every run succeeded, 4 when some failed or never ran (also
    when --wait-timeout passes), 3 on findings with --fail-on not-full.
    """
    from orchestrator.dispatch import prepare, submit
    from orchestrator.protocol.transport import create_app
    from orchestrator.store.migrate import upgrade

    settings = load_settings()
    broker = _broker(settings)
    fail_on = _fail_on(fail_on)
    options = _options(devices, compute_units, iterations, warmup, timeout, bisect, cold_load)
    upgrade(settings.resolved_database_url)
    sessions = _sessions(settings)
    prepared = prepare(
        models, options, _farm(settings, broker, sessions), device_wait_s=settings.device_wait_s
    )
    outcome = submit(prepared, settings=settings, sessions=sessions, app=create_app(settings))
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    job = str(outcome.job_id)
    waiting = sum(1 for r in outcome.runs if r.waiting)
    err.print(
        f"job {job}: {len(outcome.runs)} run(s) on {len(prepared.classes)} device class(es)"
        + (f", {waiting} waiting for a device" if waiting else "")
    )
    for warning in outcome.warnings:
        err.print(f"[yellow]warning:[/yellow] {warning}")
    if not wait:
        body = {"job": job, "runs": len(outcome.runs), "waiting": waiting,
                "warnings": outcome.warnings}  # fmt: skip
        typer.echo(json.dumps(body) if as_json else job)
        return 0
    from orchestrator.cli.stall import IngestWatch
    from orchestrator.progress import exit_code, wait_for_job
    from orchestrator.protocol import livestate

    client = livestate.connect(broker)
    try:
        done = wait_for_job(sessions, job, wait_timeout, err, check=IngestWatch(client, err))
    except KeyboardInterrupt:
        # The farm goes on with the job: say how to follow or stop it.
        err.print(f"job {job} goes on: `anefarm status {job}`, or `anefarm cancel {job}`")
        raise
    finally:
        client.close()
    if not done:
        err.print(f"job {job}: not done after {wait_timeout:g} s (it goes on)")
    report = _print_report(sessions, job, "json" if as_json else "table")
    return exit_code(report, fail_on=fail_on)


@_command("status")
def status_cmd(
    job: Annotated[str, typer.Argument(help="Job id (or a unique prefix)")],
    as_json: JsonOpt = False,
) -> None:
    """How far a job has got."""
    from orchestrator.progress import summary
    from orchestrator.report import job_status

    with _sessions(load_settings())() as session:
        status = job_status(session, job)
    typer.echo(json.dumps(status) if as_json else summary(status))


def _print_report(sessions: Any, job: str, form: str) -> dict[str, Any]:
    from orchestrator import render
    from orchestrator.report import build_report, night_title

    with sessions() as session:
        report = build_report(session, job)
        night = night_title(session, job) if form == "table" else None
    if form == "json":
        typer.echo(render.as_json(report))
    elif form == "csv":
        sys.stdout.write(render.as_csv(report))
    else:
        render.print_table(report, night=night)
    return report


@_command("report")
def report_cmd(
    job: Annotated[str, typer.Argument(help="Job id (or a unique prefix)")],
    as_json: JsonOpt = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV on stdout")] = False,
    fail_on: FailOnOpt = "never",
) -> int:
    """Per model × device class: verdict, ANE share, latencies, load times, ops off the ANE.

    Exit 0 when every run succeeded, 4 when some failed or have not run (yet), 3 on
    findings with --fail-on not-full.
    """
    from orchestrator.progress import exit_code

    if as_json and as_csv:
        raise UsageError("choose one of --json and --csv")
    fail_on = _fail_on(fail_on)
    report = _print_report(
        _sessions(load_settings()), job, "json" if as_json else "csv" if as_csv else "table"
    )
    return exit_code(report, fail_on=fail_on)


def _nothing_to_cancel(session: Any, job: Any) -> bool:
    """A finished job whose every run (probes too) is final and no bisection pends."""
    from sqlalchemy import select

    from orchestrator.store import models as db

    if str(job.status) not in {"done", "failed", "cancelled"}:
        return False
    runs = session.scalars(select(db.Run).where(db.Run.job_id == job.id)).all()
    final = {"succeeded", "failed", "cancelled"}
    return all(str(r.status) in final and r.bisect_state != "pending" for r in runs)


@_command("cancel")
def cancel_cmd(job: Annotated[str, typer.Argument(help="Job id (or a unique prefix)")]) -> None:
    """Cancel a job: its unfinished runs end cancelled.

    Works without a broker (the database is changed first); with one, workers also skip
    the job's queued batches."""
    from orchestrator.dispatch import cancel
    from orchestrator.protocol import livestate
    from orchestrator.report import find_job

    settings = load_settings()
    sessions = _sessions(settings)
    with sessions() as session:
        found = find_job(session, job)
        job_id = found.id
        if _nothing_to_cancel(session, found):
            # Cancelling would only relabel a finished job "cancelled" (and its report's
            # exit code with it): say so and leave it.
            typer.echo(f"job {job_id}: already {found.status}, nothing to cancel")
            return
    client, note = None, ""
    if settings.broker_url:
        client = livestate.connect(settings.broker_url)
        try:
            client.ping()
        except Exception as error:  # noqa: BLE001 - any failure: the database still knows
            client, note = None, f"; broker unreachable ({type(error).__name__}), database only"
    else:
        note = "; no broker configured, database only"
    cancelled = cancel(job_id, sessions=sessions, client=client)
    typer.echo(f"job {job_id}: {len(cancelled)} unfinished run(s) cancelled{note}")


@_command("profile")
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

    fail_on = _fail_on(fail_on)
    request = ProfileRequest(
        models=models,
        farm=simulate,
        options=_options(devices, compute_units, iterations, warmup, timeout, bisect, cold_load),
        seed=seed,
        time_mode=_time_mode(time_mode),
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


@_command("demo")
def demo_cmd(
    out: Annotated[Path | None, typer.Option(help="Where to write samples and the report")] = None,
) -> None:
    """Write the sample models and profile them on a simulated A12–A17 farm."""
    from orchestrator.demo import run_demo

    run_demo(load_settings(), out=out)


@_command("agent")
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
    _time_mode(time_mode)
    settings = load_settings()
    plan = FarmPlan(farm=simulate, ios=ios, seed=seed, time_mode=time_mode, speed=speed)
    run_agent(settings, broker_url=_broker(settings), name=name, plan=plan, loglevel=loglevel)


@_command("coordinator")
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
    run_coordinator(settings, broker_url=_broker(settings), serve=serve, loglevel=loglevel)


def register(app: typer.Typer) -> None:
    for name, command in _COMMANDS:
        app.command(name)(command)
