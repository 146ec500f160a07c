"""``anefarm sweep …``: nightly sweeps — add a definition, list, show, run a night now (or
as the night of a given time), history per series, remove, pause and resume."""

from __future__ import annotations

import csv
import json
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from orchestrator.errors import UsageError
from orchestrator.settings import Settings, load_settings

sweep_app = typer.Typer(
    help="Nightly sweeps: many models on many device generations, history per series.",
    no_args_is_help=True,
)
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout")]
NameArg = Annotated[str, typer.Argument(help="The sweep's name (its `name:`)")]
NIGHTS_SHOWN = 7


def _sessions(settings: Settings, *, migrate: bool = True) -> Any:
    from orchestrator.store.engine import make_engine, session_factory
    from orchestrator.store.migrate import upgrade

    if migrate:
        upgrade(settings.resolved_database_url)
    return session_factory(make_engine(settings.resolved_database_url))


def _err() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


@sweep_app.command("add")
def add_cmd(
    file: Annotated[Path, typer.Argument(help="The sweep's YAML file")],
) -> int:
    """Add a sweep, or update the one of the same name, and say what changed.

    A file that does not validate changes nothing: one line per problem, exit 2.
    """
    from orchestrator.store.engine import session_scope
    from orchestrator.sweeps.definition import InvalidSweep, load_file
    from orchestrator.sweeps.store import add

    try:
        definition = load_file(file)
    except InvalidSweep as error:
        for line in error.lines:
            typer.echo(f"anefarm: error: {file}: {line}", err=True)
        return 2
    with session_scope(_sessions(load_settings())) as session:
        outcome = add(session, definition, source_path=str(file.resolve()))
    typer.echo(outcome.summary())
    for change in outcome.changes:
        typer.echo(f"  {change}")
    return 0


@sweep_app.command("list")
def list_cmd(as_json: JsonOpt = False) -> None:
    """The sweeps: schedule, timezone, next fire time, paused or not."""
    from orchestrator.sweeps.store import describe, list_sweeps

    with _sessions(load_settings())() as session:
        found = [describe(s) for s in list_sweeps(session)]
    if as_json:
        typer.echo(json.dumps({"sweeps": found}, indent=2))
        return
    if not found:
        typer.echo("no sweeps yet (`anefarm sweep add FILE` adds one)")
        return
    for s in found:
        when = "paused" if s["paused"] else f"next {s['next_fire']}"
        typer.echo(
            f"{s['name']}  {s['schedule']} {s['timezone']}  {when}  "
            f"{s['models']} model entr{'y' if s['models'] == 1 else 'ies'} on {s['devices']}"
        )


@sweep_app.command("show")
def show_cmd(name: NameArg, as_json: JsonOpt = False) -> None:
    """A sweep: its definition, next fire time and its last nights."""
    from orchestrator.sweeps.definition import shown
    from orchestrator.sweeps.nights import load_sweep
    from orchestrator.sweeps.store import describe, nights

    with _sessions(load_settings())() as session:
        sweep = load_sweep(session, name)
        body = {
            **describe(sweep),
            "definition": shown(sweep.definition),
            "nights": [n.to_json() for n in nights(session, sweep.id, limit=NIGHTS_SHOWN)],
        }
    if as_json:
        typer.echo(json.dumps(body, indent=2))
        return
    typer.echo(f"sweep {body['name']}" + ("  (paused)" if body["paused"] else ""))
    typer.echo(f"  schedule   {body['schedule']} ({body['timezone']})")
    typer.echo(f"  next fire  {body['next_fire'] or '– (paused: `anefarm sweep resume`)'}")
    typer.echo(f"  devices    {body['definition']['devices']}")
    units = ", ".join(body["definition"]["compute_units"])
    typer.echo(f"  units      {units}; {body['definition']['iterations']} iterations")
    typer.echo(f"  bisect     {body['definition']['bisect']}")
    typer.echo(f"  file       {body['source_path']}")
    for entry in body["definition"]["models"]:
        named = f"{entry['name']} = " if entry.get("name") else ""
        typer.echo(f"  model      {named}{entry['path']}")
    if not body["nights"]:
        typer.echo("no nights yet (`anefarm sweep run NAME` starts one now)")
        return
    typer.echo(f"last {len(body['nights'])} night(s):")
    for n in body["nights"]:
        flags = " late" if n["late"] else ""
        typer.echo(
            f"  {n['scheduled_for']}  {n['status']:<9} {n['runs']} run(s), {n['missing']}"
            f" missing  {n['trigger']}{flags}  job {n['job']}"
        )


def _at(text: str | None, timezone: str) -> datetime:
    if text is None:
        return datetime.now(UTC).replace(microsecond=0)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"--at {text!r} is not an ISO date-time", hint="e.g. 2026-11-27T02:00 or …T02:00+01:00"
        ) from None
    if moment.tzinfo is None:  # a wall-clock time of the sweep's own timezone
        import zoneinfo

        moment = moment.replace(tzinfo=zoneinfo.ZoneInfo(timezone))
    return moment.astimezone(UTC)


@sweep_app.command("run")
def run_cmd(
    name: NameArg,
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            help="Record the night as the one of this logical time (ISO; without an offset"
            " in the sweep's timezone): back-fill and tests",
        ),
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Show progress until done, then the report")
    ] = False,
    wait_timeout: Annotated[
        float, typer.Option("--wait-timeout", help="With --wait: give up after this many s")
    ] = 24 * 3600.0,
    as_json: JsonOpt = False,
) -> int:
    """Run one night of a sweep now (--at: as the night of another time).

    With --wait: exit 0 when every run succeeded, 4 when some failed or never ran, or a
    series is missing tonight.
    """
    from orchestrator.protocol.transport import PipelinedPublisher, create_app
    from orchestrator.sweeps.nights import load_sweep, start_night

    settings = load_settings()
    if not settings.broker_url:
        raise UsageError(
            "no broker configured", hint="set ANEFARM_BROKER_URL=redis://… (the farm's Redis)"
        )
    sessions = _sessions(settings)
    with sessions() as session:
        timezone = load_sweep(session, name).timezone
    scheduled_for = _at(at, timezone)
    app = create_app(settings)
    # One Redis round trip per 500 batches, as the scheduler does (a night may be 1,200).
    with PipelinedPublisher(app) as publisher:
        job_id = start_night(settings=settings, sessions=sessions, app=app, sweep_name=name,
                             scheduled_for=scheduled_for, publisher=publisher)  # fmt: skip
    job = str(job_id)
    err = _err()
    with sessions() as session:
        from orchestrator.sweeps.store import nights

        sweep = load_sweep(session, name)
        night = next(n for n in nights(session, sweep.id, limit=50) if n.job == job_id)
    err.print(
        f"sweep {name}: night of {night.scheduled_for} is job {job}: {night.runs} run(s),"
        f" {night.missing} missing record(s)"
    )
    if not wait:
        body = {"sweep": name, **night.to_json()}
        typer.echo(json.dumps(body) if as_json else job)
        return 0
    from orchestrator import render
    from orchestrator.cli.stall import IngestWatch
    from orchestrator.progress import exit_code, wait_for_job
    from orchestrator.protocol import livestate
    from orchestrator.report import build_report, night_title

    client = livestate.connect(str(settings.broker_url))
    try:
        finished = wait_for_job(sessions, job, wait_timeout, err, check=IngestWatch(client, err))
    finally:
        client.close()
    if not finished:
        err.print(f"job {job}: not done after {wait_timeout:g} s (it goes on)")
    with sessions() as session:
        report = build_report(session, job)
        title = night_title(session, job)
    if as_json:
        typer.echo(render.as_json(report))
    else:
        render.print_table(report, night=title)
    code = exit_code(report)
    if night.missing:
        # Missing series never ran tonight: as for a run that never ran, exit 4.
        import zoneinfo

        when = (night.scheduled_for or datetime.now(UTC)).astimezone(zoneinfo.ZoneInfo(timezone))
        night_of = when.date().isoformat()
        err.print(
            f"{night.missing} series missing tonight, each with its reason:"
            f" `anefarm sweep history {name} --since {night_of}`"
        )
        code = code or 4
    return code


HISTORY_COLUMNS = ("night", "series", "device_class", "compute_units", "simulated", "status",
                   "median_ms", "verdict", "model_sha256", "os_build", "reason")  # fmt: skip


@sweep_app.command("history")
def history_cmd(
    name: NameArg,
    model: Annotated[str | None, typer.Option("--model", help="Only this series")] = None,
    device_class: Annotated[
        str | None, typer.Option("--device-class", help="Only this class, e.g. iPhone11,8")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Only nights from this date (YYYY-MM-DD)")
    ] = None,
    as_json: JsonOpt = False,
    as_csv: Annotated[
        bool, typer.Option("--csv", help="CSV on stdout, one line per point")
    ] = False,
) -> None:
    """Each series night by night: median, verdict, sha256, OS build, or why not.

    A series is a model × device class × compute units × simulated; a night it did not
    run is a point too, missing or failed, with its reason.
    """
    from orchestrator.sweeps.history import FIELDS, points
    from orchestrator.sweeps.nights import load_sweep

    if as_json and as_csv:
        raise UsageError("choose one of --json and --csv")
    try:
        first = date.fromisoformat(since) if since else None
    except ValueError:
        raise UsageError(f"--since {since!r} is not a date", hint="e.g. 2026-11-01") from None
    with _sessions(load_settings())() as session:
        sweep = load_sweep(session, name)
        found = points(session, sweep, series=model, device_class=device_class, since=first)
    if as_json:
        body = {"sweep": name, "points": [p.model_dump(mode="json") for p in found]}
        typer.echo(json.dumps(body, indent=2))
        return
    if as_csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        for p in found:
            writer.writerow(p.model_dump(mode="json"))
        return
    if not found:
        typer.echo(f"no points for sweep {name} (yet)")
        return
    from rich.table import Table

    table = Table(*HISTORY_COLUMNS)
    for p in found:
        row = p.model_dump(mode="json")
        row["simulated"] = {True: "SIMULATED", False: "real", None: "–"}[p.simulated]
        row["median_ms"] = f"{p.median_ms:.3f}" if p.median_ms is not None else "–"
        row["model_sha256"] = (p.model_sha256 or "–")[:12]
        table.add_row(*(str(row[c]) if row[c] is not None else "–" for c in HISTORY_COLUMNS))
    Console(width=max(200, Console().width)).print(table)


@sweep_app.command("remove")
def remove_cmd(name: NameArg) -> None:
    """Remove a sweep's definition; its nights stay as ordinary jobs (`anefarm jobs`)."""
    from orchestrator.store.engine import session_scope
    from orchestrator.sweeps.store import remove

    with session_scope(_sessions(load_settings())) as session:
        released = remove(session, name)
    typer.echo(f"sweep {name}: removed; its {released} night(s) stay as jobs (`anefarm jobs`)")


def _pause(name: str, paused: bool) -> None:
    from orchestrator.store.engine import session_scope
    from orchestrator.sweeps.store import set_paused

    with session_scope(_sessions(load_settings())) as session:
        changed = set_paused(session, name, paused)
    state = "paused" if paused else "resumed"
    typer.echo(f"sweep {name}: {state}" if changed else f"sweep {name}: already {state}")


@sweep_app.command("pause")
def pause_cmd(name: NameArg) -> None:
    """Hold a sweep: no night fires until `sweep resume` (`sweep run` still works)."""
    _pause(name, True)


@sweep_app.command("resume")
def resume_cmd(name: NameArg) -> None:
    """Let a paused sweep fire again (from its next scheduled time)."""
    _pause(name, False)


def register(app: typer.Typer) -> None:
    app.add_typer(sweep_app, name="sweep")
