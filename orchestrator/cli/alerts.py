"""``anefarm alerts …`` (list, show, triage) and ``anefarm sweep report | baseline``: what a
sweep's nights found, who looked at it, and the night's verdict for CI.

Exit status: 0 ok; 1 error (an unknown alert or sweep); 2 usage; 3 with
``sweep report --fail-on regression|alert`` when the night has what it names (as
``anefarm lint``: something to act on).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from orchestrator.errors import UsageError
from orchestrator.settings import load_settings

alerts_app = typer.Typer(
    help="Regression alerts of the sweeps: list, show, triage (who and when are kept).",
    no_args_is_help=True,
)
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout")]
IdArg = Annotated[int, typer.Argument(help="The alert's id (`anefarm alerts list`)")]
NoteOpt = Annotated[str | None, typer.Option("--note", help="Why (kept in the history)")]
ByOpt = Annotated[str | None, typer.Option("--by", help="Who triages (default: the OS user)")]
FINDINGS_EXIT = 3


def _sessions() -> Any:
    from orchestrator.store.engine import make_engine, session_factory
    from orchestrator.store.migrate import upgrade

    url = load_settings().resolved_database_url
    upgrade(url)
    return session_factory(make_engine(url))


def list_cmd(
    sweep: Annotated[str | None, typer.Option("--sweep", help="Only this sweep's")] = None,
    status: Annotated[
        list[str] | None,
        typer.Option(
            "--status",
            help="open, untriaged, acknowledged, fixed, wontfix, invalid,"
            " infra, accepted, recovered (repeat or comma-separate)",
        ),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Newest N")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Alert summaries newest first: one per (sweep, night, cause), with its status."""
    from orchestrator.alerts.views import list_alerts, parse_statuses

    statuses = parse_statuses(status)
    with _sessions()() as session:
        found = list_alerts(session, sweep=sweep, statuses=statuses, limit=limit)
    if as_json:
        typer.echo(json.dumps({"alerts": found}, indent=2))
        return
    if not found:
        typer.echo("no alerts" + (" with that status" if statuses else ""))
        return
    for a in found:
        sim = " SIMULATED" if a["simulated"] else ""
        since = a["first_night"] if a["nights"] == 1 else \
            f"{a['first_night']} … {a['last_night']} ({a['nights']} nights)"  # fmt: skip
        typer.echo(f"{a['id']:>5}  {a['status']:<12} {a['sweep']}{sim}  {since}  {a['kind']}:"
                   f" {a['cause']}")  # fmt: skip


def show_cmd(alert_id: IdArg, as_json: JsonOpt = False) -> None:
    """One summary: its cause, member findings with figures, triage history, deliveries."""
    from orchestrator.alerts.views import show_alert

    with _sessions()() as session:
        body = show_alert(session, alert_id)
    if as_json:
        typer.echo(json.dumps(body, indent=2))
        return
    sim = " SIMULATED" if body["simulated"] else ""
    typer.echo(f"alert {body['id']} [{body['status']}] sweep {body['sweep']}{sim}")
    typer.echo(f"  {body['kind']}: {body['cause']}")
    typer.echo(f"  nights     {body['first_night']} … {body['last_night']} ({body['nights']}),"
               f" raised {body['raised']}×")  # fmt: skip
    typer.echo(f"  findings   {len(body['findings'])}")
    for f in body["findings"]:
        units = f" [{f['compute_units']}]" if f["compute_units"] != "-" else ""
        typer.echo(f"    {f['night']} {f['status']:<11} {f['series']} on {f['device_class']}"
                   f"{units} {f['check']}: {f['message']}")  # fmt: skip
    typer.echo("  triage" + ("" if body["triage"] else "     none yet"))
    for t in body["triage"]:
        note = f": {t['note']}" if t["note"] else ""
        typer.echo(f"    {t['at'][:19]} {t['by']} {t['from']} → {t['to']}{note}")
    typer.echo("  deliveries" + ("" if body["deliveries"] else " none"))
    for d in body["deliveries"]:
        how = f"HTTP {d['http_status']}" if d["http_status"] else "no answer"
        state = "delivered" if d["ok"] else f"FAILED ({d['error']})"
        typer.echo(f"    {d['at'][:19]} {d['format']} → {d['target']}: {state}, {how},"
                   f" {d['attempts']} attempt(s)")  # fmt: skip


def _triage(verb: str) -> Any:
    def command(alert_id: IdArg, note: NoteOpt = None, by: ByOpt = None) -> None:
        from orchestrator.alerts import triage
        from orchestrator.store.engine import session_scope

        status = triage.VERBS[verb]
        who = by or triage.default_user()
        with session_scope(_sessions()) as session:
            entry = triage.move(session, alert_id, status, by=who, note=note,
                                now=datetime.now(UTC))  # fmt: skip
            line = f"alert {alert_id}: {entry.from_status} → {entry.to_status} by {who}"
        typer.echo(line)
        if status == triage.AlertStatus.ACCEPTED:
            typer.echo("  the new normal: its series' baselines restart at its first night")

    command.__doc__ = {
        "ack": "Acknowledge an alert: someone is looking at it.",
        "fix": "Mark an alert fixed (it comes back as a new alert if it recurs).",
        "wontfix": "Mark an alert won't fix (later nights update it, do not raise it again).",
        "invalid": "Mark an alert invalid: noise, not a real change.",
        "infra": "Mark an alert as caused by the farm (device, network), not the model.",
        "accept": "Accept the change as the new normal: the baselines restart from it.",
    }[verb]
    return command


def _night(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--night {text!r} is not a date", hint="e.g. 2026-11-27") from None


def report_cmd(
    name: Annotated[str, typer.Argument(help="The sweep's name")],
    night: Annotated[
        str | None, typer.Option("--night", help="The night (YYYY-MM-DD); default: the latest")
    ] = None,
    as_json: JsonOpt = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV, one row per check")] = False,
    junit: Annotated[
        Path | None, typer.Option("--junit", help="Also write JUnit XML to this file")
    ] = None,
    fail_on: Annotated[
        str, typer.Option("--fail-on", help="Exit 3 on: regression | alert | none")
    ] = "none",
) -> int:
    """A night's status per series and check against its baseline, and its alerts.

    Exit 3 with --fail-on regression when a check regressed, with --fail-on alert when an open
    alert was raised or updated that night."""
    from orchestrator.alerts.report import FAIL_ON, build, to_csv, to_text, write_junit
    from orchestrator.sweeps.nights import load_sweep

    if fail_on not in FAIL_ON:
        raise UsageError(f"--fail-on {fail_on!r}", hint="one of: " + ", ".join(FAIL_ON))
    if as_json and as_csv:
        raise UsageError("choose one of --json and --csv")
    wanted = _night(night)
    with _sessions()() as session:
        report = build(session, load_sweep(session, name), wanted)
    if fail_on != "none" and report.analysis != "analysed":
        # A gate must not pass a night nobody judged.
        from orchestrator.errors import AnefarmError

        why = {"error": "its analysis failed", "confirming": "confirmation runs are on their way"}
        raise AnefarmError(
            f"night {report.night} of sweep {name} is not analysed:"
            f" {why.get(report.analysis, 'its runs have not all ended')}",
            hint="`anefarm sweep show` lists its nights; the coordinator analyses a night when"
            " it ends (see its log)",
        )
    if junit is not None:
        write_junit(report, junit)
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2))
    elif as_csv:
        typer.echo(to_csv(report), nl=False)
    else:
        typer.echo(to_text(report))
        if junit is not None:
            typer.echo(f"JUnit XML: {junit}")
    return FINDINGS_EXIT if report.fails(fail_on) else 0


def baseline_cmd(
    name: Annotated[str, typer.Argument(help="The sweep's name")],
    night: Annotated[str, typer.Option("--night", help="The night to pin (YYYY-MM-DD)")],
    label: Annotated[str | None, typer.Option("--label", help="A name for it, e.g. v2.3")] = None,
    by: ByOpt = None,
) -> None:
    """Pin the sweep's baseline to a named night: later nights are compared with it."""
    from orchestrator.alerts import triage
    from orchestrator.alerts.report import nights_of
    from orchestrator.store.engine import session_scope
    from orchestrator.sweeps.nights import load_sweep

    when = _night(night)
    assert when is not None
    who = by or triage.default_user()
    with session_scope(_sessions()) as session:
        sweep = load_sweep(session, name)
        triage.pin(session, sweep.id, when, label=label, by=who, now=datetime.now(UTC),
                   nights=nights_of(session, sweep))  # fmt: skip
    shown = f" ({label})" if label else ""
    typer.echo(f"sweep {name}: baseline pinned to the night of {when.isoformat()}{shown} by {who}")


def register(app: typer.Typer) -> None:
    from orchestrator.cli.sweeps import sweep_app

    alerts_app.command("list")(list_cmd)
    alerts_app.command("show")(show_cmd)
    for verb in ("ack", "fix", "wontfix", "invalid", "infra", "accept"):
        alerts_app.command(verb)(_triage(verb))
    app.add_typer(alerts_app, name="alerts")
    sweep_app.command("report")(report_cmd)
    sweep_app.command("baseline")(baseline_cmd)
