"""A job: ``anefarm submit`` queues it on the farm, ``profile`` runs it on this machine
(embedded Redis, coordinator and a SIMULATED agent), ``status`` and ``report`` follow it,
``cancel`` stops it.

``submit`` needs a coordinator and agents running elsewhere (``anefarm coordinator``,
``anefarm agent``: cli/pipeline.py). submit and profile take the same job options
(cli/options.py).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

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
    open_sessions,
    submit_options,
)
from orchestrator.errors import UsageError
from orchestrator.settings import Settings, load_settings


def _farm(settings: Settings, broker: str, sessions: Any) -> Any:
    from orchestrator.protocol import livestate
    from orchestrator.selection import farm_view

    return farm_view(livestate.connect(broker), sessions)


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
    broker = broker_url(settings)
    fail_on = checked_fail_on(fail_on)
    options = submit_options(devices, compute_units, iterations, warmup, timeout, bisect, cold_load)
    upgrade(settings.resolved_database_url)
    sessions = open_sessions(settings)
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


def status_cmd(
    job: Annotated[str, typer.Argument(help="Job id (or a unique prefix)")],
    as_json: JsonOpt = False,
) -> None:
    """How far a job has got."""
    from orchestrator.progress import summary
    from orchestrator.report import job_status

    with open_sessions(load_settings())() as session:
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
    fail_on = checked_fail_on(fail_on)
    report = _print_report(
        open_sessions(load_settings()), job, "json" if as_json else "csv" if as_csv else "table"
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


def cancel_cmd(job: Annotated[str, typer.Argument(help="Job id (or a unique prefix)")]) -> None:
    """Cancel a job: its unfinished runs end cancelled.

    Works without a broker (the database is changed first); with one, workers also skip
    the job's queued batches."""
    from orchestrator.dispatch import cancel
    from orchestrator.protocol import livestate
    from orchestrator.report import find_job

    settings = load_settings()
    sessions = open_sessions(settings)
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


def register(app: typer.Typer) -> None:
    # In the order `anefarm --help` lists them: a job's life, then the one-machine run.
    app.command("submit")(submit_cmd)
    app.command("status")(status_cmd)
    app.command("report")(report_cmd)
    app.command("cancel")(cancel_cmd)
    app.command("profile")(profile_cmd)
